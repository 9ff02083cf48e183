import { describe, expect, it } from 'vitest';
import { deserialize, serialize } from '../src/serialize';
import { richGraph } from './fixtures';

describe('serialize / deserialize', () => {
  it('round-trips every field of a rich graph', () => {
    const graph = richGraph();
    expect(serialize(deserialize(graph))).toEqual(graph);
  });

  it('maps nodes and edges to canvas items with handles and data', () => {
    const doc = deserialize(richGraph());
    const agent = doc.nodes.find((node) => node.id === 'agent-1')!;
    expect(agent.type).toBe('wf');
    expect(agent.position).toEqual({ x: 10.5, y: 120 });
    expect(agent.data.type).toBe('agent');
    expect(agent.data.config).toEqual({ agent_id: 'a-1', error_policy: { action: 'error_branch', retries: 0 } });
    const routed = doc.edges.find((edge) => edge.id === 'e-router-1-end-good')!;
    expect(routed.sourceHandle).toBe('good');
    expect(routed.targetHandle).toBeNull();
    expect(routed.data!.target_handle).toBe('in');
    expect(doc.meta.settings).toEqual(richGraph().settings);
  });

  it('omits a null source_handle and keeps unknown keys on nodes, edges and the graph', () => {
    const graph = {
      schema_version: 1,
      nodes: [{ id: 'n', type: 'x', label: '', position: { x: 1, y: 2 }, config: {}, note: 'kept' }],
      edges: [{ id: 'e', source: 'n', target: 'n', source_handle: null, weight: 3 }],
      future_key: { a: 1 },
    };
    const out = serialize(deserialize(graph));
    expect(out.edges[0]).toEqual({ id: 'e', source: 'n', target: 'n', weight: 3 });
    expect('source_handle' in out.edges[0]).toBe(false);
    expect(out.nodes[0].note).toBe('kept');
    expect(out.future_key).toEqual({ a: 1 });
  });

  it('does not share objects with the input', () => {
    const graph = richGraph();
    const doc = deserialize(graph);
    (graph.nodes[1].config as { agent_id: string }).agent_id = 'changed';
    expect(doc.nodes[1].data.config.agent_id).toBe('a-1');
    const out = serialize(doc);
    (out.nodes[1].config as { agent_id: string }).agent_id = 'again';
    expect(doc.nodes[1].data.config.agent_id).toBe('a-1');
  });

  it('tolerates missing or broken parts', () => {
    expect(serialize(deserialize(null))).toEqual({ schema_version: 1, nodes: [], edges: [] });
    const out = serialize(deserialize({ schema_version: 1, nodes: [{ id: 'a', type: 't' }], edges: 'nope' }));
    expect(out.nodes[0]).toEqual({ id: 'a', type: 't', label: '', position: { x: 0, y: 0 }, config: {} });
    expect(out.edges).toEqual([]);
  });
});
