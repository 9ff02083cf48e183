import { describe, expect, it } from 'vitest';
import { copySelection, remapClip } from '../src/paste';
import { richGraph } from './fixtures';

describe('copy and paste', () => {
  it('copies the chosen nodes and only the edges between them', () => {
    const graph = richGraph();
    const clip = copySelection(graph.nodes, graph.edges, new Set(['agent-1', 'router-1']));
    expect(clip.nodes.map((node) => node.id)).toEqual(['agent-1', 'router-1']);
    expect(clip.edges.map((edge) => edge.id)).toEqual(['e-agent-1-router-1']);
  });

  it('gives pasted nodes and edges fresh ids, offset positions and rewired endpoints', () => {
    const graph = richGraph();
    const clip = copySelection(graph.nodes, graph.edges, new Set(['agent-1', 'router-1', 'end']));
    const pasted = remapClip(clip, graph.nodes.map((n) => n.id), graph.edges.map((e) => e.id), { x: 40, y: 40 });
    expect(pasted.nodes.map((node) => node.id)).toEqual(['agent-2', 'router-2', 'end-1']);
    expect(pasted.nodes[0].position).toEqual({ x: 50.5, y: 160 });
    expect(pasted.nodes[0].config).toEqual(graph.nodes[1].config);
    expect(pasted.nodes[0].config).not.toBe(graph.nodes[1].config);
    expect(pasted.edges).toEqual([
      { id: 'e-agent-2-router-2', source: 'agent-2', target: 'router-2' },
      { id: 'e-agent-2-end-1-error', source: 'agent-2', target: 'end-1', source_handle: 'error' },
      { id: 'e-router-2-end-1-good', source: 'router-2', target: 'end-1', source_handle: 'good', target_handle: 'in' },
    ]);
  });

  it('pasting twice never collides', () => {
    const graph = richGraph();
    const clip = copySelection(graph.nodes, graph.edges, new Set(['agent-1']));
    const first = remapClip(clip, graph.nodes.map((n) => n.id), [], { x: 40, y: 40 });
    const second = remapClip(clip, [...graph.nodes, ...first.nodes].map((n) => n.id), [], { x: 80, y: 80 });
    expect(second.nodes[0].id).toBe('agent-3');
  });
});
