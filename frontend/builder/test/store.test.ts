import { describe, expect, it, vi } from 'vitest';
import { BuilderStore } from '../src/store';
import { catalog, loopGraph, richGraph } from './fixtures';

function make(graph = richGraph()) {
  const store = new BuilderStore(graph, catalog);
  const changes: unknown[] = [];
  const selects: (string | null)[] = [];
  store.events = { change: (g) => changes.push(g), select: (id) => selects.push(id) };
  return { store, changes, selects };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('BuilderStore', () => {
  it('getGraph returns the loaded graph as a copy', () => {
    const { store } = make();
    expect(store.getGraph()).toEqual(richGraph());
    store.getGraph().nodes[0].label = 'x';
    expect(store.getGraph().nodes[0].label).toBe('Start');
  });

  it('addNode clones default_config, sets the agent, selects the node, and is one entry', () => {
    const { store, changes, selects } = make();
    const id = store.addNode('agent', { agentId: 'a-1', position: { x: 5, y: 6 } });
    expect(id).toBe('agent-2');
    const node = store.getGraph().nodes.find((n) => n.id === id)!;
    expect(node).toEqual({ id, type: 'agent', label: 'Researcher', position: { x: 5, y: 6 }, config: { agent_id: 'a-1', input_template: '{{ input }}' } });
    expect(catalog.node_types[2].default_config).toEqual({ agent_id: '', input_template: '{{ input }}' });
    expect(changes).toHaveLength(1);
    expect(selects).toEqual([id]);
    store.undo();
    expect(store.getGraph()).toEqual(richGraph());
  });

  it('addNode without a position puts the node where it covers no other', () => {
    const graph = { schema_version: 1, nodes: [{ id: 'start', type: 'start', label: 'Start', position: { x: -110, y: -36 }, config: {} }], edges: [] };
    const { store } = make(graph);
    // No viewport yet: the centre is (0, 0), exactly where the start node sits.
    const ids = [store.addNode('agent'), store.addNode('agent'), store.addNode('agent')];
    const boxes = store.getGraph().nodes.map((n) => n.position);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const apart = Math.abs(boxes[i].x - boxes[j].x) >= 220 || Math.abs(boxes[i].y - boxes[j].y) >= 72;
        expect(apart, `${i} and ${j} overlap`).toBe(true);
      }
    }
    expect(new Set(ids).size).toBe(3);
  });

  it('connect refuses cycles and returns the edge id otherwise', () => {
    const { store } = make();
    expect(store.connect('router-1', 'agent-1', 'bad')).toBeNull();
    expect(store.connect('router-1', 'end', 'bad')).toBe('e-router-1-end-bad');
    expect(store.getGraph().edges.at(-1)).toEqual({ id: 'e-router-1-end-bad', source: 'router-1', target: 'end', source_handle: 'bad' });
  });

  it('groups a burst of updateNode calls on one node into one entry and replaces config', () => {
    vi.useFakeTimers();
    try {
      const { store, changes } = make();
      for (const text of ['R', 'Re', 'Res']) {
        store.updateNode('agent-1', { label: text, config: { agent_id: 'a-1', instructions: text } });
        vi.advanceTimersByTime(300);
      }
      expect(changes).toHaveLength(3);
      expect(store.getGraph().nodes[1].config).toEqual({ agent_id: 'a-1', instructions: 'Res' });
      store.undo();
      expect(store.getGraph()).toEqual(richGraph());
      expect(store.canUndo()).toBe(false);
      store.updateNode('agent-1', { label: 'later' });
      vi.advanceTimersByTime(1500);
      store.updateNode('agent-1', { label: 'much later' });
      store.updateNode('router-1', { label: 'other node' });
      store.undo();
      expect(store.getGraph().nodes[1].label).toBe('much later');
      store.undo();
      expect(store.getGraph().nodes[1].label).toBe('later');
    } finally {
      vi.useRealTimers();
    }
  });

  it('updateInterface sets inputs, variables and start configs as one undo step', () => {
    const { store, changes } = make();
    const before = store.getGraph();
    store.updateInterface({
      inputs: { fields: [{ name: 'topic', type: 'string' }] },
      variables: [{ name: 'topic', type: 'string' }],
      configs: { start: { input_mapping: { topic: 'topic' } } },
    });
    expect(changes).toHaveLength(1);
    const graph = store.getGraph();
    expect(graph.inputs).toEqual({ fields: [{ name: 'topic', type: 'string' }] });
    expect(graph.variables).toEqual([{ name: 'topic', type: 'string' }]);
    expect(graph.nodes[0].config).toEqual({ input_mapping: { topic: 'topic' } });
    store.undo();
    expect(store.getGraph()).toEqual(before);
  });

  it('a drag of several nodes is one entry, committed at drag stop only', async () => {
    const { store, changes } = make();
    store.onDragStart();
    for (let step = 1; step <= 5; step++) {
      store.onNodesChange([
        { type: 'position', id: 'start', position: { x: step, y: step }, dragging: true },
        { type: 'position', id: 'end', position: { x: step, y: 360 + step }, dragging: true },
      ]);
    }
    store.onNodesChange([{ type: 'position', id: 'start', position: { x: 5, y: 5 }, dragging: false }]);
    await tick();
    expect(changes).toHaveLength(0);
    store.onDragStop();
    await tick();
    expect(changes).toHaveLength(1);
    store.undo();
    expect(store.getGraph()).toEqual(richGraph());
  });

  it('a delete from React Flow (node plus its edges) is one entry', async () => {
    const { store, changes } = make();
    store.onNodesChange([{ type: 'remove', id: 'router-1' }]);
    store.onEdgesChange([
      { type: 'remove', id: 'e-agent-1-router-1' },
      { type: 'remove', id: 'e-router-1-end-good' },
    ]);
    await tick();
    expect(changes).toHaveLength(1);
    expect(store.getGraph().edges.map((edge) => edge.id)).toEqual(['e-start-agent-1', 'e-agent-1-end-error']);
    store.undo();
    expect(store.getGraph()).toEqual(richGraph());
  });

  it('removeElements drops nodes with their edges in one entry', () => {
    const { store, changes } = make();
    store.removeElements({ nodes: ['agent-1'], edges: ['e-router-1-end-good'] });
    expect(store.getGraph().edges).toEqual([]);
    expect(changes).toHaveLength(1);
  });

  it('auto-layout is one entry, moves nodes and keeps everything else', () => {
    const { store, changes } = make(loopGraph());
    const before = store.getGraph();
    store.autoLayout();
    const after = store.getGraph();
    expect(changes).toHaveLength(1);
    expect(after.edges).toEqual(before.edges);
    expect(after.nodes.map(({ position, ...rest }) => rest)).toEqual(before.nodes.map(({ position, ...rest }) => rest));
    expect(after.nodes.find((n) => n.id === 'start')!.position.y).toBeLessThan(after.nodes.find((n) => n.id === 'end')!.position.y);
    store.undo();
    expect(store.getGraph()).toEqual(before);
    expect(store.canUndo()).toBe(false);
  });

  it('setGraph records one entry by default and none with record false', () => {
    const { store, changes } = make();
    store.setGraph(loopGraph());
    expect(store.getGraph()).toEqual(loopGraph());
    expect(changes).toHaveLength(1);
    store.undo();
    expect(store.getGraph()).toEqual(richGraph());
    store.setGraph(loopGraph(), { record: false });
    expect(store.canUndo()).toBe(false);
    expect(changes).toHaveLength(2);
  });

  it('copy and paste adds renamed, selected copies in one entry', () => {
    const { store, changes } = make();
    store.selectNode('agent-1');
    store.onNodesChange([{ type: 'select', id: 'router-1', selected: true }]);
    expect(store.copy()).toBe(2);
    const ids = store.paste();
    expect(ids).toEqual(['agent-2', 'router-2']);
    expect(changes).toHaveLength(1);
    const graph = store.getGraph();
    expect(graph.edges.at(-1)).toEqual({ id: 'e-agent-2-router-2', source: 'agent-2', target: 'router-2' });
    expect(store.selectedNodeIds()).toEqual(ids);
  });

  it('decorations never enter history nor fire changes', () => {
    const { store, changes } = make();
    store.setStatus('agent-1', 'running');
    store.setIssues({ 'agent-1': [{ level: 'error', message: 'x' }] });
    store.setMarks({ nodes: { end: 'added' } });
    expect(changes).toHaveLength(0);
    expect(store.canUndo()).toBe(false);
    expect(store.state.statuses).toEqual({ 'agent-1': 'running' });
    store.clearStatuses();
    expect(store.state.statuses).toEqual({});
  });

  it('selection events: one node gives its id, none or several give null', () => {
    const { store, selects } = make();
    store.selectNode('agent-1');
    store.selectNode('agent-1');
    store.onNodesChange([{ type: 'select', id: 'end', selected: true }]);
    store.onNodesChange([
      { type: 'select', id: 'end', selected: false },
      { type: 'select', id: 'agent-1', selected: false },
    ]);
    expect(selects).toEqual(['agent-1', null]);
  });

  it('undo re-sends the selection so the page reloads the form', () => {
    const { store, selects } = make();
    store.selectNode('agent-1');
    store.updateNode('agent-1', { label: 'new' });
    store.undo();
    expect(selects).toEqual(['agent-1', 'agent-1']);
  });

  it('unknown node types load, render data and round-trip', () => {
    const { store } = make();
    const id = store.addNode('mcp_tool', { position: { x: 0, y: 0 } });
    expect(id).toBe('mcp_tool-1');
    expect(store.getGraph().nodes.at(-1)!.config).toEqual({});
  });
});

describe('BuilderStore keyboard moves and catalog', () => {
  it('arrow-key moves outside a drag commit, and a quick run of them is one entry', async () => {
    const { store, changes } = make();
    for (let step = 1; step <= 3; step++) {
      store.onNodesChange([{ type: 'position', id: 'end', position: { x: step * 5, y: 360 }, dragging: false }]);
      await tick();
    }
    expect(changes).toHaveLength(3);
    expect(store.getGraph().nodes[3].position).toEqual({ x: 15, y: 360 });
    store.undo();
    expect(store.getGraph()).toEqual(richGraph());
  });

  it('selection and measurement changes are never changes', async () => {
    const { store, changes } = make();
    store.onNodesChange([
      { type: 'dimensions', id: 'end', dimensions: { width: 200, height: 60 } },
      { type: 'select', id: 'end', selected: true },
    ]);
    store.onEdgesChange([{ type: 'select', id: 'e-start-agent-1', selected: true }]);
    await tick();
    expect(changes).toHaveLength(0);
    expect(store.canUndo()).toBe(false);
  });

  it('readonly refuses connections from the canvas; can_edit false means readonly', () => {
    const readonly = new BuilderStore(richGraph(), { ...catalog, can_edit: false });
    expect(readonly.state.readonly).toBe(true);
    expect(readonly.isValidConnection({ source: 'router-1', target: 'end', sourceHandle: 'bad', targetHandle: null })).toBe(false);
  });

  it('addAgent adds or replaces an agent by id', () => {
    const { store } = make();
    store.addAgent({ id: 'a-1', name: 'Renamed' });
    store.addAgent({ id: 'a-2', name: 'New' });
    expect(store.state.catalog.agents.map((agent) => agent.name)).toEqual(['Renamed', 'New']);
  });

  it('survives a missing or malformed catalog', () => {
    const store = new BuilderStore(richGraph(), null);
    expect(store.addNode('agent', { position: { x: 0, y: 0 } })).toBe('agent-2');
    expect(store.state.catalog.node_types).toEqual([]);
  });
});
