import { makeEdgeId, nextNodeId } from './graphRules';
import type { GraphEdge, GraphNode } from './types';

export interface Clip {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** The copied nodes plus only the edges running between two of them. */
export function copySelection(nodes: GraphNode[], edges: GraphEdge[], selected: Set<string>): Clip {
  const chosen = nodes.filter((node) => selected.has(node.id));
  const ids = new Set(chosen.map((node) => node.id));
  return structuredClone({
    nodes: chosen,
    edges: edges.filter((edge) => ids.has(edge.source) && ids.has(edge.target)),
  });
}

/**
 * The clip with fresh node and edge ids (never colliding with `existingNodeIds`/`existingEdgeIds`)
 * and positions shifted by `offset`, so a paste lands beside the original rather than on it.
 */
export function remapClip(
  clip: Clip,
  existingNodeIds: Iterable<string>,
  existingEdgeIds: Iterable<string>,
  offset: { x: number; y: number },
): Clip {
  const nodeIds = new Set(existingNodeIds);
  const edgeIds = new Set(existingEdgeIds);
  const renamed = new Map<string, string>();
  const nodes = clip.nodes.map((node) => {
    const id = nextNodeId(node.type, nodeIds);
    nodeIds.add(id);
    renamed.set(node.id, id);
    return {
      ...structuredClone(node),
      id,
      position: { x: node.position.x + offset.x, y: node.position.y + offset.y },
    };
  });
  const edges = clip.edges.map((edge) => {
    const source = renamed.get(edge.source)!;
    const target = renamed.get(edge.target)!;
    const id = makeEdgeId(source, target, edge.source_handle, edgeIds);
    edgeIds.add(id);
    return { ...structuredClone(edge), id, source, target };
  });
  return { nodes, edges };
}
