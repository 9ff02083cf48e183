import { describe, expect, it } from 'vitest';
import { canConnect, classifyEdges, connectionRefusal, hasInput, makeEdgeId, nextNodeId, outputHandles } from '../src/graphRules';
import { deserialize } from '../src/serialize';
import { catalog, loopGraph, richGraph } from './fixtures';

const ids = (handles: { id: string | null }[]) => handles.map((handle) => handle.id);

describe('handles', () => {
  it('gives each node type its outputs', () => {
    expect(ids(outputHandles('router', { routes: ['a', 'b', 'c'] }))).toEqual(['a', 'b', 'c']);
    expect(outputHandles('router', { routes: ['a'] })[0].label).toBe('a');
    expect(ids(outputHandles('loop', { max_iterations: 2 }))).toEqual(['loop', 'done']);
    expect(ids(outputHandles('human', { kind: 'approval' }))).toEqual(['approved', 'rejected']);
    expect(ids(outputHandles('human', { kind: 'input' }))).toEqual([null]);
    expect(ids(outputHandles('end', {}))).toEqual([]);
    expect(ids(outputHandles('agent', {}))).toEqual([null]);
    expect(ids(outputHandles('never_seen_before', {}))).toEqual([null]);
    expect(ids(outputHandles('router', {}))).toEqual([]);
  });

  it('adds an error handle for the error_branch policy', () => {
    expect(ids(outputHandles('agent', { error_policy: { action: 'error_branch' } }))).toEqual([null, 'error']);
    expect(ids(outputHandles('router', { routes: ['x'], error_policy: { action: 'error_branch' } }))).toEqual(['x', 'error']);
    expect(ids(outputHandles('agent', { error_policy: { action: 'retry', retries: 2 } }))).toEqual([null]);
  });

  it('start has no input; everything else has one; the catalog can say max_in 0', () => {
    expect(hasInput('start')).toBe(false);
    expect(hasInput('agent')).toBe(true);
    expect(hasInput('mystery')).toBe(true);
    expect(hasInput('start', catalog)).toBe(false);
    expect(hasInput('x', { ...catalog, node_types: [{ type: 'x', label: 'X', group: 'Flow', max_in: 0 }] })).toBe(false);
  });
});

describe('connections', () => {
  const doc = deserialize(loopGraph());

  it('refuses self-connections, missing nodes, the start input and unknown handles', () => {
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'body', target: 'body' })).toBe('self');
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'body', target: 'ghost' })).toBe('missing');
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'body', target: 'start' })).toBe('no-input');
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'loop-1', target: 'end', sourceHandle: null })).toBe('no-such-handle');
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'end', target: 'body' })).toBe('no-such-handle');
    expect(connectionRefusal(doc.nodes, doc.edges, { source: 'start', target: 'loop-1' })).toBe('duplicate');
  });

  it('refuses a cycle that does not pass through a loop branch', () => {
    const straight = deserialize({
      schema_version: 1,
      nodes: ['a', 'b', 'c'].map((id) => ({ id, type: 'agent', label: id, position: { x: 0, y: 0 }, config: {} })),
      edges: [
        { id: 'ab', source: 'a', target: 'b' },
        { id: 'bc', source: 'b', target: 'c' },
      ],
    });
    expect(canConnect(straight.nodes, straight.edges, { source: 'c', target: 'a' })).toBe(false);
    expect(connectionRefusal(straight.nodes, straight.edges, { source: 'c', target: 'a' })).toBe('cycle');
    expect(canConnect(straight.nodes, straight.edges, { source: 'a', target: 'c' })).toBe(true);
  });

  it('allows the back-edge from a loop body into the loop node', () => {
    const withoutBack = { ...doc, edges: doc.edges.filter((edge) => edge.id !== 'e3') };
    expect(canConnect(withoutBack.nodes, withoutBack.edges, { source: 'body', target: 'loop-1' })).toBe(true);
  });

  it("allows the loop's loop branch to close a cycle, but not its done branch", () => {
    const withoutBranch = { ...doc, edges: doc.edges.filter((edge) => edge.id !== 'e2' && edge.id !== 'e4') };
    expect(canConnect(withoutBranch.nodes, withoutBranch.edges, { source: 'loop-1', target: 'body', sourceHandle: 'loop' })).toBe(true);
    expect(canConnect(withoutBranch.nodes, withoutBranch.edges, { source: 'loop-1', target: 'body', sourceHandle: 'done' })).toBe(false);
  });

  it('refuses a second cycle that skips the loop, even when one through the loop exists', () => {
    // body → extra is fine; extra → body would close extra↔body without any loop branch.
    const graph = loopGraph();
    graph.nodes.push({ id: 'extra', type: 'agent', label: 'x', position: { x: 0, y: 0 }, config: {} });
    graph.edges.push({ id: 'e5', source: 'body', target: 'extra' });
    const d = deserialize(graph);
    expect(canConnect(d.nodes, d.edges, { source: 'extra', target: 'body' })).toBe(false);
    expect(canConnect(d.nodes, d.edges, { source: 'extra', target: 'loop-1' })).toBe(true);
  });
});

describe('classifyEdges', () => {
  it('marks the loop branch and the back-edge into the loop as loop edges', () => {
    const doc = deserialize(loopGraph());
    const classes = classifyEdges(doc.nodes, doc.edges);
    expect([...classes.loop].sort()).toEqual(['e2', 'e3']);
    expect(classes.cycle.size).toBe(0);
    expect(classes.dangling.size).toBe(0);
  });

  it('marks a cycle without a loop and edges whose handle vanished', () => {
    const graph = richGraph();
    graph.edges.push({ id: 'back', source: 'router-1', target: 'agent-1', source_handle: 'bad' });
    const doc = deserialize(graph);
    expect(classifyEdges(doc.nodes, doc.edges).cycle).toEqual(new Set(['back']));
    // The router loses its "good" route and the agent its error branch.
    doc.nodes[2].data = { ...doc.nodes[2].data, config: { routes: ['bad'] } };
    doc.nodes[1].data = { ...doc.nodes[1].data, config: { agent_id: 'a-1' } };
    const classes = classifyEdges(doc.nodes, doc.edges);
    expect([...classes.dangling].sort()).toEqual(['e-agent-1-end-error', 'e-router-1-end-good']);
    expect(classes.ghostOutputs.get('router-1')).toEqual(['good']);
    expect(classes.ghostOutputs.get('agent-1')).toEqual(['error']);
  });

  it('flags edges into a node without input and to missing nodes', () => {
    const doc = deserialize({
      schema_version: 1,
      nodes: [
        { id: 's', type: 'start', label: '', position: { x: 0, y: 0 }, config: {} },
        { id: 'a', type: 'agent', label: '', position: { x: 0, y: 0 }, config: {} },
      ],
      edges: [
        { id: 'x', source: 'a', target: 's' },
        { id: 'y', source: 'a', target: 'gone' },
      ],
    });
    const classes = classifyEdges(doc.nodes, doc.edges);
    expect(classes.dangling).toEqual(new Set(['x', 'y']));
    expect(classes.ghostInputs).toEqual(new Set(['s']));
  });
});

describe('ids', () => {
  it('generates readable unique node ids', () => {
    expect(nextNodeId('agent', [])).toBe('agent-1');
    expect(nextNodeId('agent', ['agent-1', 'agent-7', 'router-9'])).toBe('agent-8');
    expect(nextNodeId('group_chat', ['group_chat-1'])).toBe('group_chat-2');
    expect(nextNodeId('odd type!', [])).toBe('odd_type-1');
    expect(nextNodeId('x'.repeat(100), [])).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  it('makes edge ids from the endpoints and the handle, unique and within the id pattern', () => {
    expect(makeEdgeId('a', 'b', null, [])).toBe('e-a-b');
    expect(makeEdgeId('a', 'b', 'yes', [])).toBe('e-a-b-yes');
    expect(makeEdgeId('a', 'b', null, ['e-a-b'])).toBe('e-a-b-2');
    expect(makeEdgeId('a', 'b', null, ['e-a-b', 'e-a-b-2'])).toBe('e-a-b-3');
    const long = makeEdgeId('s'.repeat(64), 't'.repeat(64), 'h', []);
    expect(long).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(makeEdgeId('s'.repeat(64), 't'.repeat(64), 'h', [long])).toMatch(/^[A-Za-z0-9_-]{1,62}-2$/);
  });
});
