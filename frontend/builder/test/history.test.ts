import { describe, expect, it } from 'vitest';
import { GROUP_WINDOW_MS, History } from '../src/history';
import type { Graph } from '../src/types';

const g = (label: string): Graph => ({ schema_version: 1, nodes: [{ id: 'n', type: 't', label, position: { x: 0, y: 0 }, config: {} }], edges: [] });

describe('History', () => {
  it('undoes and redoes snapshots in order', () => {
    const history = new History(g('a'));
    expect(history.canUndo()).toBe(false);
    history.push(g('b'), { now: 1 });
    history.push(g('c'), { now: 2 });
    expect(history.undo()!.nodes[0].label).toBe('b');
    expect(history.undo()!.nodes[0].label).toBe('a');
    expect(history.undo()).toBeNull();
    expect(history.canRedo()).toBe(true);
    expect(history.redo()!.nodes[0].label).toBe('b');
    expect(history.redo()!.nodes[0].label).toBe('c');
    expect(history.redo()).toBeNull();
  });

  it('ignores a push equal to the present', () => {
    const history = new History(g('a'));
    expect(history.push(g('a'))).toBe(false);
    expect(history.canUndo()).toBe(false);
  });

  it('a new edit after undo drops the redo branch', () => {
    const history = new History(g('a'));
    history.push(g('b'), { now: 1 });
    history.undo();
    history.push(g('x'), { now: 2 });
    expect(history.canRedo()).toBe(false);
    expect(history.undo()!.nodes[0].label).toBe('a');
  });

  it('groups a burst with one key inside the window into one entry', () => {
    const history = new History(g(''));
    let now = 1000;
    for (const label of ['H', 'He', 'Hel', 'Hell', 'Hello']) {
      history.push(g(label), { group: 'update:n', now });
      now += GROUP_WINDOW_MS - 100;
    }
    expect(history.sizes.past).toBe(1);
    expect(history.undo()!.nodes[0].label).toBe('');
  });

  it('starts a new entry after a pause, another key, or an undo', () => {
    const history = new History(g(''));
    history.push(g('a'), { group: 'k', now: 0 });
    history.push(g('b'), { group: 'k', now: GROUP_WINDOW_MS + 1 });
    expect(history.sizes.past).toBe(2);
    history.push(g('c'), { group: 'other', now: GROUP_WINDOW_MS + 2 });
    expect(history.sizes.past).toBe(3);
    history.undo();
    history.push(g('d'), { group: 'other', now: GROUP_WINDOW_MS + 3 });
    expect(history.sizes.past).toBe(3);
    expect(history.undo()!.nodes[0].label).toBe('b');
  });

  it('snapshots are copies', () => {
    const graph = g('a');
    const history = new History(graph);
    graph.nodes[0].label = 'mutated';
    expect(history.present.nodes[0].label).toBe('a');
  });

  it('reset forgets everything', () => {
    const history = new History(g('a'));
    history.push(g('b'));
    history.reset(g('z'));
    expect(history.canUndo()).toBe(false);
    expect(history.present.nodes[0].label).toBe('z');
  });
});
