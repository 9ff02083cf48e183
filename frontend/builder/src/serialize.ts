import type { Graph, GraphEdge, GraphNode, WfEdge, WfNode } from './types';

const NODE_KEYS = new Set(['id', 'type', 'label', 'position', 'config']);
const EDGE_KEYS = new Set(['id', 'source', 'target', 'source_handle', 'target_handle']);

export interface Doc {
  /** Every top-level key except nodes and edges (variables, inputs, output, settings, ...). */
  meta: Record<string, unknown>;
  nodes: WfNode[];
  edges: WfEdge[];
}

function rest(item: Record<string, unknown>, known: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(item)) if (!known.has(key)) out[key] = item[key];
  return out;
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function toFlowNode(node: GraphNode): WfNode {
  const position = (node.position ?? {}) as { x?: unknown; y?: unknown };
  return {
    id: String(node.id),
    type: 'wf',
    position: { x: num(position.x), y: num(position.y) },
    data: {
      type: String(node.type ?? ''),
      label: typeof node.label === 'string' ? node.label : '',
      config: node.config && typeof node.config === 'object' ? structuredClone(node.config) : {},
      extra: structuredClone(rest(node, NODE_KEYS)),
    },
  };
}

export function toFlowEdge(edge: GraphEdge): WfEdge {
  const sourceHandle = edge.source_handle ?? null;
  return {
    id: String(edge.id),
    type: 'wf',
    source: String(edge.source),
    target: String(edge.target),
    // Every node has a single input, so the drawn edge always uses it; the stored
    // target_handle survives in data untouched.
    sourceHandle,
    targetHandle: null,
    data: {
      source_handle: sourceHandle,
      target_handle: edge.target_handle ?? null,
      extra: structuredClone(rest(edge, EDGE_KEYS)),
    },
  };
}

export function deserialize(graph: unknown): Doc {
  const source = (graph && typeof graph === 'object' ? graph : {}) as Record<string, unknown>;
  const meta = structuredClone(rest(source, new Set(['nodes', 'edges'])));
  if (meta.schema_version === undefined) meta.schema_version = 1;
  const nodes = Array.isArray(source.nodes) ? (source.nodes as GraphNode[]) : [];
  const edges = Array.isArray(source.edges) ? (source.edges as GraphEdge[]) : [];
  return {
    meta,
    nodes: nodes.filter((n) => n && typeof n === 'object').map(toFlowNode),
    edges: edges.filter((e) => e && typeof e === 'object').map(toFlowEdge),
  };
}

export function fromFlowNode(node: WfNode): GraphNode {
  return {
    id: node.id,
    type: node.data.type,
    label: node.data.label,
    position: { x: node.position.x, y: node.position.y },
    config: structuredClone(node.data.config),
    ...structuredClone(node.data.extra),
  };
}

export function fromFlowEdge(edge: WfEdge): GraphEdge {
  const data = edge.data ?? { source_handle: edge.sourceHandle ?? null, target_handle: null, extra: {} };
  const out: GraphEdge = { id: edge.id, source: edge.source, target: edge.target };
  if (data.source_handle != null) out.source_handle = data.source_handle;
  if (data.target_handle != null) out.target_handle = data.target_handle;
  return Object.assign(out, structuredClone(data.extra));
}

export function serialize(doc: Doc): Graph {
  const { schema_version = 1, ...meta } = structuredClone(doc.meta);
  return {
    schema_version: schema_version as number,
    nodes: doc.nodes.map(fromFlowNode),
    edges: doc.edges.map(fromFlowEdge),
    ...meta,
  };
}
