import type { Catalog, Config, NodeTypeInfo, OutputHandle } from './types';

/** The minimum the rules need from a node or edge, so they run on graph JSON and canvas items. */
export interface RuleNode {
  id: string;
  data: { type: string; config: Config };
}
export interface RuleEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle?: string | null;
}

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ID = 64;

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function typeInfo(type: string, catalog?: Catalog | null): NodeTypeInfo | undefined {
  return catalog?.node_types?.find((info) => info.type === type);
}

/** The branches a node's outgoing edges may carry; mirrors NodeConfig.branches() on the server. */
export function outputHandles(type: string, config: Config, catalog?: Catalog | null): OutputHandle[] {
  if (type === 'end' || typeInfo(type, catalog)?.max_out === 0) return [];
  let handles: OutputHandle[];
  if (type === 'router') {
    handles = [...new Set(strings(config.routes))].map((route) => ({ id: route, label: route }));
  } else if (type === 'loop') {
    handles = [
      { id: 'loop', label: 'loop' },
      { id: 'done', label: 'done' },
    ];
  } else if (type === 'human' && config.kind === 'approval') {
    handles = [
      { id: 'approved', label: 'approved' },
      { id: 'rejected', label: 'rejected' },
    ];
  } else {
    handles = [{ id: null, label: '' }];
  }
  const policy = config.error_policy as { action?: unknown } | undefined;
  if (policy?.action === 'error_branch' && !handles.some((handle) => handle.id === 'error')) {
    handles.push({ id: 'error', label: 'error' });
  }
  return handles;
}

export function hasInput(type: string, catalog?: Catalog | null): boolean {
  return type !== 'start' && typeInfo(type, catalog)?.max_in !== 0;
}

function isLoopBranch(edge: RuleEdge, types: Map<string, string>): boolean {
  return types.get(edge.source) === 'loop' && edge.sourceHandle === 'loop';
}

function reaches(from: string, to: string, edges: RuleEdge[], skip: (edge: RuleEdge) => boolean): boolean {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    if (skip(edge)) continue;
    const list = next.get(edge.source);
    if (list) list.push(edge.target);
    else next.set(edge.source, [edge.target]);
  }
  const seen = new Set([from]);
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    for (const target of next.get(id) ?? []) {
      if (!seen.has(target)) {
        seen.add(target);
        stack.push(target);
      }
    }
  }
  return false;
}

export interface Candidate {
  source: string;
  target: string;
  sourceHandle?: string | null;
}

export type Refusal = 'self' | 'missing' | 'no-input' | 'no-such-handle' | 'duplicate' | 'cycle';

/** Why `connection` may not be drawn, or null when it may. */
export function connectionRefusal(
  nodes: RuleNode[],
  edges: RuleEdge[],
  connection: Candidate,
  catalog?: Catalog | null,
): Refusal | null {
  const { source, target } = connection;
  const handle = connection.sourceHandle ?? null;
  if (source === target) return 'self';
  const from = nodes.find((node) => node.id === source);
  const to = nodes.find((node) => node.id === target);
  if (!from || !to) return 'missing';
  if (!hasInput(to.data.type, catalog)) return 'no-input';
  if (!outputHandles(from.data.type, from.data.config, catalog).some((h) => h.id === handle)) {
    return 'no-such-handle';
  }
  if (edges.some((e) => e.source === source && e.target === target && (e.sourceHandle ?? null) === handle)) {
    return 'duplicate';
  }
  // The new edge closes a cycle when the target already reaches the source. That is only allowed
  // when every such cycle runs through a loop's "loop" branch, i.e. the new edge is that branch,
  // or the target cannot reach the source once loop branches are taken out.
  const types = new Map(nodes.map((node) => [node.id, node.data.type]));
  if (from.data.type === 'loop' && handle === 'loop') return null;
  if (reaches(target, source, edges, (edge) => isLoopBranch(edge, types))) return 'cycle';
  return null;
}

export function canConnect(
  nodes: RuleNode[],
  edges: RuleEdge[],
  connection: Candidate,
  catalog?: Catalog | null,
): boolean {
  return connectionRefusal(nodes, edges, connection, catalog) === null;
}

export interface EdgeClasses {
  /** Loop branches and the edges that close a cycle through one: drawn dashed. */
  loop: Set<string>;
  /** Edges that close a cycle with no loop in it: the server rejects these. */
  cycle: Set<string>;
  /** Edges whose source handle, source or target no longer exists. */
  dangling: Set<string>;
  /** Per node, output handles that edges still use although the config no longer has them. */
  ghostOutputs: Map<string, (string | null)[]>;
  /** Nodes without an input that edges still point at. */
  ghostInputs: Set<string>;
}

export function classifyEdges(nodes: RuleNode[], edges: RuleEdge[], catalog?: Catalog | null): EdgeClasses {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const types = new Map(nodes.map((node) => [node.id, node.data.type]));
  const result: EdgeClasses = {
    loop: new Set(),
    cycle: new Set(),
    dangling: new Set(),
    ghostOutputs: new Map(),
    ghostInputs: new Set(),
  };
  const handleIds = new Map<string, Set<string | null>>();
  for (const node of nodes) {
    handleIds.set(node.id, new Set(outputHandles(node.data.type, node.data.config, catalog).map((h) => h.id)));
  }
  const outgoing = new Map<string, RuleEdge[]>();
  for (const edge of edges) {
    const handle = edge.sourceHandle ?? null;
    const from = byId.get(edge.source);
    const to = byId.get(edge.target);
    if (!from || !to) {
      result.dangling.add(edge.id);
      continue;
    }
    if (!handleIds.get(edge.source)!.has(handle)) {
      result.dangling.add(edge.id);
      const ghosts = result.ghostOutputs.get(edge.source) ?? [];
      if (!ghosts.includes(handle)) ghosts.push(handle);
      result.ghostOutputs.set(edge.source, ghosts);
    }
    if (!hasInput(to.data.type, catalog)) {
      result.dangling.add(edge.id);
      result.ghostInputs.add(edge.target);
    }
    if (isLoopBranch(edge, types)) result.loop.add(edge.id);
    const list = outgoing.get(edge.source);
    if (list) list.push(edge);
    else outgoing.set(edge.source, [edge]);
  }

  // Depth-first from the start nodes, then the rest in document order, so "which edge closes the
  // cycle" is stable and matches how people read a flow: the edge pointing back up is the back-edge.
  const state = new Map<string, 'open' | 'done'>();
  const via = new Map<string, RuleEdge>();
  const roots = [...nodes.filter((n) => n.data.type === 'start'), ...nodes.filter((n) => n.data.type !== 'start')];
  for (const root of roots) {
    if (state.has(root.id)) continue;
    const stack: { id: string; index: number }[] = [{ id: root.id, index: 0 }];
    state.set(root.id, 'open');
    while (stack.length) {
      const frame = stack[stack.length - 1];
      const list = outgoing.get(frame.id) ?? [];
      if (frame.index >= list.length) {
        state.set(frame.id, 'done');
        stack.pop();
        continue;
      }
      const edge = list[frame.index++];
      const seen = state.get(edge.target);
      if (seen === undefined) {
        state.set(edge.target, 'open');
        via.set(edge.target, edge);
        stack.push({ id: edge.target, index: 0 });
      } else if (seen === 'open') {
        let throughLoop = isLoopBranch(edge, types);
        for (let at = edge.source; at !== edge.target && !throughLoop; ) {
          const entered = via.get(at);
          if (!entered) break;
          throughLoop = isLoopBranch(entered, types);
          at = entered.source;
        }
        (throughLoop ? result.loop : result.cycle).add(edge.id);
      }
    }
  }
  return result;
}

function slug(text: string, fallback: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '');
  return cleaned || fallback;
}

/** A readable id like `agent-3`: one past the highest number already used for that prefix. */
export function nextNodeId(type: string, existing: Iterable<string>): string {
  const prefix = slug(type, 'node').slice(0, MAX_ID - 6);
  const pattern = new RegExp(`^${prefix.replace(/[-]/g, '\\-')}-(\\d+)$`);
  const taken = new Set(existing);
  let highest = 0;
  for (const id of taken) {
    const match = pattern.exec(id);
    if (match) highest = Math.max(highest, Number(match[1]));
  }
  let n = highest + 1;
  while (taken.has(`${prefix}-${n}`)) n += 1;
  return `${prefix}-${n}`;
}

/** `e-<source>-<target>[-<handle>]`, shortened to the id limit and made unique. */
export function makeEdgeId(source: string, target: string, handle: string | null | undefined, existing: Iterable<string>): string {
  const taken = new Set(existing);
  const base = `e-${source}-${target}${handle ? `-${slug(handle, 'h')}` : ''}`.slice(0, MAX_ID);
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) {
    const suffix = `-${n}`;
    const id = base.slice(0, MAX_ID - suffix.length) + suffix;
    if (!taken.has(id)) return id;
  }
}
