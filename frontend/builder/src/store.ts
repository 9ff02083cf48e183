import { applyEdgeChanges, applyNodeChanges } from '@xyflow/react';
import type { Connection, EdgeChange, NodeChange } from '@xyflow/react';
import { History } from './history';
import { canConnect, classifyEdges, makeEdgeId, nextNodeId } from './graphRules';
import type { EdgeClasses } from './graphRules';
import { layoutPositions } from './layout';
import { copySelection, remapClip } from './paste';
import type { Clip } from './paste';
import { deserialize, fromFlowNode, serialize, toFlowEdge, toFlowNode } from './serialize';
import type { Agent, Catalog, Config, Graph, GraphNode, Issue, Mark, Status, WfEdge, WfNode } from './types';

export const DEFAULT_SIZE = { width: 220, height: 72 };
const PASTE_STEP = 40;

export interface Viewport {
  fitView(): void;
  centerOn(x: number, y: number): void;
  /** The flow coordinates at the middle of the visible canvas. */
  center(): { x: number; y: number };
}

export interface StoreState {
  nodes: WfNode[];
  edges: WfEdge[];
  catalog: Catalog;
  readonly: boolean;
  statuses: Record<string, Status>;
  nodeIssues: Record<string, Issue[]>;
  edgeIssues: Record<string, Issue[]>;
  nodeMarks: Record<string, Mark>;
  edgeMarks: Record<string, Mark>;
  hoveredEdge: string | null;
  connectFor: string | null;
  canUndo: boolean;
  canRedo: boolean;
}

export interface StoreEvents {
  change?(graph: Graph): void;
  select?(nodeId: string | null, node: GraphNode | null): void;
  /** Asks the view to move keyboard focus onto a node once it is on screen. */
  focus?(nodeId: string): void;
}

export interface AddNodeOptions {
  agentId?: string;
  position?: { x: number; y: number };
  label?: string;
}

// One clipboard per page, so a copy in one builder can be pasted into another.
let clipboard: { clip: Clip; pastes: number } | null = null;

export function emptyCatalog(): Catalog {
  return { node_types: [], agents: [], can_edit: true };
}

/**
 * The builder's document and view state outside React, so the custom element's methods work
 * synchronously (even before React has mounted) and the logic is testable without a DOM.
 */
export class BuilderStore {
  state: StoreState;
  events: StoreEvents = {};
  viewport: Viewport | null = null;
  private meta: Record<string, unknown>;
  private history: History;
  private listeners = new Set<() => void>();
  private dragging = false;
  private pendingCommit: { group: string | null } | null = null;
  private pendingFit = true;
  private lastSelect = '';
  private classesCache: { state: StoreState; edges: WfEdge[]; data: unknown[]; catalog: Catalog; value: EdgeClasses } | null = null;

  constructor(graph: unknown, catalog: Catalog | null, { readonly = false } = {}) {
    const doc = deserialize(graph);
    this.meta = doc.meta;
    const safeCatalog = normaliseCatalog(catalog);
    this.state = {
      nodes: doc.nodes,
      edges: doc.edges,
      catalog: safeCatalog,
      readonly: readonly || safeCatalog.can_edit === false,
      statuses: {},
      nodeIssues: {},
      edgeIssues: {},
      nodeMarks: {},
      edgeMarks: {},
      hoveredEdge: null,
      connectFor: null,
      canUndo: false,
      canRedo: false,
    };
    this.history = new History(this.graph());
  }

  // --- subscription (useSyncExternalStore) ---------------------------------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): StoreState => this.state;

  private set(patch: Partial<StoreState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  // --- document ------------------------------------------------------------------------------

  graph(): Graph {
    return serialize({ meta: this.meta, nodes: this.state.nodes, edges: this.state.edges });
  }

  nodeCount(): number {
    return this.state.nodes.length;
  }

  canUndo(): boolean {
    return this.history.canUndo();
  }

  canRedo(): boolean {
    return this.history.canRedo();
  }

  /** Edge kinds derived from the structure; recomputed only when an edge or some node's data changed. */
  classes(): EdgeClasses {
    const cached = this.classesCache;
    // Every node and edge component asks during one render; answer them from one check.
    if (cached && cached.state === this.state) return cached.value;
    const { nodes, edges, catalog } = this.state;
    const data = nodes.map((node) => node.data);
    if (cached && cached.edges === edges && cached.catalog === catalog && sameItems(cached.data, data)) {
      cached.state = this.state;
      return cached.value;
    }
    const value = classifyEdges(nodes, edges, catalog);
    this.classesCache = { state: this.state, edges, data, catalog, value };
    return value;
  }

  private commit(group: string | null = null): void {
    this.pendingCommit = null;
    const graph = this.graph();
    if (this.history.push(graph, { group })) {
      this.syncHistoryFlags();
      this.events.change?.(graph);
    }
  }

  /** Commits once after a batch of React Flow changes (a delete arrives as node and edge changes). */
  private scheduleCommit(group: string | null = null): void {
    if (this.pendingCommit) return;
    this.pendingCommit = { group };
    queueMicrotask(() => {
      if (this.pendingCommit) this.commit(this.pendingCommit.group);
    });
  }

  private syncHistoryFlags(): void {
    const canUndo = this.history.canUndo();
    const canRedo = this.history.canRedo();
    if (canUndo !== this.state.canUndo || canRedo !== this.state.canRedo) this.set({ canUndo, canRedo });
  }

  /** Replaces the document, keeping React Flow's measurements and the selection of surviving nodes. */
  private restore(graph: Graph, { keepSelection = true } = {}): void {
    const doc = deserialize(graph);
    const previous = new Map(this.state.nodes.map((node) => [node.id, node]));
    const selectedEdges = new Set(
      keepSelection ? this.state.edges.filter((edge) => edge.selected).map((edge) => edge.id) : [],
    );
    this.meta = doc.meta;
    const nodes = doc.nodes.map((node) => {
      const old = previous.get(node.id);
      // Without `measured` React Flow would hide a node until it happened to be resized.
      return old ? { ...node, measured: old.measured, selected: keepSelection && old.selected } : node;
    });
    const edges = doc.edges.map((edge) => (selectedEdges.has(edge.id) ? { ...edge, selected: true } : edge));
    this.set({ nodes, edges, connectFor: null });
    this.emitSelection(true);
  }

  getGraph(): Graph {
    return this.graph();
  }

  setGraph(graph: unknown, { record = true }: { record?: boolean } = {}): void {
    // A new document (import, template, version) starts with nothing selected.
    this.restore(serialize(deserialize(graph)), { keepSelection: false });
    if (record) {
      this.commit();
    } else {
      this.history.reset(this.graph());
      this.syncHistoryFlags();
    }
    this.fitView();
  }

  undo(): boolean {
    const graph = this.history.undo();
    if (!graph) return false;
    this.restore(graph);
    this.syncHistoryFlags();
    this.events.change?.(this.graph());
    return true;
  }

  redo(): boolean {
    const graph = this.history.redo();
    if (!graph) return false;
    this.restore(graph);
    this.syncHistoryFlags();
    this.events.change?.(this.graph());
    return true;
  }

  // --- React Flow callbacks ------------------------------------------------------------------

  onNodesChange = (changes: NodeChange<WfNode>[]): void => {
    const nodes = applyNodeChanges(changes, this.state.nodes);
    this.set({ nodes });
    let structural = false;
    let keyboardMove = false;
    for (const change of changes) {
      if (change.type === 'remove' || change.type === 'add' || change.type === 'replace') structural = true;
      // Arrow keys move nodes without a drag; a mouse drag commits once, on drag stop.
      if (change.type === 'position' && !change.dragging && !this.dragging && change.position) keyboardMove = true;
    }
    if (structural) this.scheduleCommit();
    else if (keyboardMove) this.scheduleCommit('keyboard-move');
    if (changes.some((change) => change.type === 'select' || change.type === 'remove')) this.emitSelection();
  };

  onEdgesChange = (changes: EdgeChange<WfEdge>[]): void => {
    this.set({ edges: applyEdgeChanges(changes, this.state.edges) });
    if (changes.some((change) => change.type === 'remove' || change.type === 'add' || change.type === 'replace')) {
      this.scheduleCommit();
    }
    if (changes.some((change) => change.type === 'select')) this.emitSelection();
  };

  onDragStart = (): void => {
    this.dragging = true;
  };

  onDragStop = (): void => {
    this.dragging = false;
    this.scheduleCommit();
  };

  isValidConnection = (connection: Connection | WfEdge): boolean =>
    !this.state.readonly &&
    canConnect(this.state.nodes, this.state.edges, {
      source: connection.source,
      target: connection.target,
      sourceHandle: connection.sourceHandle ?? null,
    }, this.state.catalog);

  onConnect = (connection: Connection): void => {
    this.connect(connection.source, connection.target, connection.sourceHandle ?? null);
  };

  // --- edits ---------------------------------------------------------------------------------

  connect(source: string, target: string, sourceHandle: string | null = null): string | null {
    const candidate = { source, target, sourceHandle };
    if (!canConnect(this.state.nodes, this.state.edges, candidate, this.state.catalog)) return null;
    const id = makeEdgeId(source, target, sourceHandle, this.state.edges.map((edge) => edge.id));
    const edge = toFlowEdge({ id, source, target, ...(sourceHandle ? { source_handle: sourceHandle } : {}) });
    this.set({ edges: [...this.state.edges, edge], connectFor: null });
    this.commit();
    return id;
  }

  nodeTypeInfo(type: string) {
    return this.state.catalog.node_types.find((info) => info.type === type);
  }

  addNode(type: string, { agentId, position, label }: AddNodeOptions = {}): string {
    const info = this.nodeTypeInfo(type);
    const config: Config = structuredClone(info?.default_config ?? {});
    let name = label ?? info?.label ?? type;
    if (agentId) {
      config.agent_id = agentId;
      const agent = this.state.catalog.agents.find((item) => item.id === agentId);
      if (agent && label === undefined) name = agent.name;
    }
    const id = nextNodeId(type, this.state.nodes.map((node) => node.id));
    const at = position ?? this.freeSpotNearCentre();
    const node: WfNode = {
      ...toFlowNode({ id, type, label: name.slice(0, 120), position: at, config }),
      selected: true,
    };
    this.set({
      nodes: [...this.state.nodes.map(deselect), node],
      edges: this.state.edges.map(deselect),
    });
    this.commit();
    this.emitSelection();
    // Placed away from the centre to keep clear of others: bring it into view.
    if (!position) this.viewport?.centerOn(at.x + DEFAULT_SIZE.width / 2, at.y + DEFAULT_SIZE.height / 2);
    return id;
  }

  private freeSpotNearCentre(): { x: number; y: number } {
    const centre = this.viewport?.center() ?? { x: 0, y: 0 };
    const spot = { x: Math.round(centre.x - DEFAULT_SIZE.width / 2), y: Math.round(centre.y - DEFAULT_SIZE.height / 2) };
    // A new node must not hide another: step down the flow past whatever it would cover, then,
    // if a column is full, try the next column to the right.
    const gap = 24;
    const covers = (x: number, y: number) =>
      this.state.nodes.some((node) => {
        const width = node.measured?.width ?? DEFAULT_SIZE.width;
        const height = node.measured?.height ?? DEFAULT_SIZE.height;
        return (
          x < node.position.x + width + gap &&
          node.position.x < x + DEFAULT_SIZE.width + gap &&
          y < node.position.y + height + gap &&
          node.position.y < y + DEFAULT_SIZE.height + gap
        );
      });
    for (let column = 0; column < 8; column++) {
      const x = spot.x + column * (DEFAULT_SIZE.width + gap * 2);
      for (let row = 0; row < 12; row++) {
        const y = spot.y + row * (DEFAULT_SIZE.height + gap);
        if (!covers(x, y)) return { x, y };
      }
    }
    return spot;
  }

  removeElements({ nodes = [], edges = [] }: { nodes?: string[]; edges?: string[] } = {}): void {
    const nodeIds = new Set(nodes);
    const edgeIds = new Set(edges);
    const keptNodes = this.state.nodes.filter((node) => !nodeIds.has(node.id));
    const keptEdges = this.state.edges.filter(
      (edge) => !edgeIds.has(edge.id) && !nodeIds.has(edge.source) && !nodeIds.has(edge.target),
    );
    if (keptNodes.length === this.state.nodes.length && keptEdges.length === this.state.edges.length) return;
    this.set({ nodes: keptNodes, edges: keptEdges, connectFor: null });
    this.commit();
    this.emitSelection();
  }

  /** Merges `label`; replaces `config` when given. Keystroke bursts on one node are one undo step. */
  updateNode(id: string, { label, config }: { label?: string; config?: Config } = {}): boolean {
    const index = this.state.nodes.findIndex((node) => node.id === id);
    if (index < 0) return false;
    const node = this.state.nodes[index];
    const data = { ...node.data };
    if (typeof label === 'string') data.label = label.slice(0, 120);
    if (config && typeof config === 'object') data.config = structuredClone(config);
    const nodes = [...this.state.nodes];
    nodes[index] = { ...node, data };
    this.set({ nodes });
    this.commit(`update:${id}`);
    return true;
  }

  /** The workflow's inputs and variables, with the start nodes' configs that follow them: one
   * undo step. */
  updateInterface({ inputs, variables, configs = {} }: { inputs?: unknown; variables?: unknown; configs?: Record<string, Config> }): void {
    const meta = { ...this.meta };
    if (inputs !== undefined) meta.inputs = structuredClone(inputs);
    if (variables !== undefined) meta.variables = structuredClone(variables);
    this.meta = meta;
    const nodes = this.state.nodes.map((node) =>
      configs[node.id] ? { ...node, data: { ...node.data, config: structuredClone(configs[node.id]) } } : node,
    );
    this.set({ nodes });
    this.commit();
  }

  autoLayout(): void {
    const sized = this.state.nodes.map((node) => ({
      id: node.id,
      width: node.measured?.width ?? DEFAULT_SIZE.width,
      height: node.measured?.height ?? DEFAULT_SIZE.height,
    }));
    const positions = layoutPositions(sized, this.state.edges);
    this.set({ nodes: this.state.nodes.map((node) => ({ ...node, position: positions.get(node.id) ?? node.position })) });
    this.commit();
    this.fitView();
  }

  copy(): number {
    const selected = new Set(this.state.nodes.filter((node) => node.selected).map((node) => node.id));
    if (selected.size === 0) return 0;
    const graph = this.graph();
    clipboard = { clip: copySelection(graph.nodes, graph.edges, selected), pastes: 0 };
    return selected.size;
  }

  paste(): string[] {
    if (!clipboard || clipboard.clip.nodes.length === 0) return [];
    clipboard.pastes += 1;
    const step = PASTE_STEP * clipboard.pastes;
    const clip = remapClip(
      clipboard.clip,
      this.state.nodes.map((node) => node.id),
      this.state.edges.map((edge) => edge.id),
      { x: step, y: step },
    );
    const nodes = clip.nodes.map((node) => ({ ...toFlowNode(node), selected: true }));
    this.set({
      nodes: [...this.state.nodes.map(deselect), ...nodes],
      edges: [...this.state.edges.map(deselect), ...clip.edges.map(toFlowEdge)],
    });
    this.commit();
    this.emitSelection();
    return nodes.map((node) => node.id);
  }

  // --- selection and viewport ----------------------------------------------------------------

  selectNode(id: string): boolean {
    if (!this.state.nodes.some((node) => node.id === id)) return false;
    this.set({
      nodes: this.state.nodes.map((node) => (node.id === id ? (node.selected ? node : { ...node, selected: true }) : deselect(node))),
      edges: this.state.edges.map(deselect),
    });
    this.emitSelection();
    return true;
  }

  focusNode(id: string): boolean {
    if (!this.selectNode(id)) return false;
    const node = this.state.nodes.find((item) => item.id === id)!;
    const width = node.measured?.width ?? DEFAULT_SIZE.width;
    const height = node.measured?.height ?? DEFAULT_SIZE.height;
    this.viewport?.centerOn(node.position.x + width / 2, node.position.y + height / 2);
    this.events.focus?.(id);
    return true;
  }

  selectedNodeIds(): string[] {
    return this.state.nodes.filter((node) => node.selected).map((node) => node.id);
  }

  /**
   * Tells the page which node's form to show. `force` (after undo, redo or a new graph) re-sends
   * even for the same node, because its config may differ from the form the page is showing.
   */
  private emitSelection(force = false): void {
    const selected = this.state.nodes.filter((node) => node.selected);
    const node = selected.length === 1 ? fromFlowNode(selected[0]) : null;
    const id = node ? node.id : '';
    if (id === this.lastSelect && !(force && node)) return;
    this.lastSelect = id;
    this.events.select?.(node ? node.id : null, node);
  }

  openConnectMenu(id: string | null): void {
    if (id && (this.state.readonly || !this.state.nodes.some((node) => node.id === id))) return;
    this.set({ connectFor: id });
  }

  setHoveredEdge(id: string | null): void {
    if (this.state.hoveredEdge !== id) this.set({ hoveredEdge: id });
  }

  attachViewport(viewport: Viewport | null): void {
    this.viewport = viewport;
    if (viewport && this.pendingFit) this.fitView();
  }

  fitView(): void {
    if (!this.viewport) {
      this.pendingFit = true;
      return;
    }
    this.pendingFit = false;
    this.viewport.fitView();
  }

  // --- decorations (never recorded, never a change) -------------------------------------------

  setStatus(nodeId: string, status: Status | null): void {
    const statuses = { ...this.state.statuses };
    if (status) statuses[nodeId] = status;
    else delete statuses[nodeId];
    this.set({ statuses });
  }

  setStatuses(byNode: Record<string, Status>): void {
    this.set({ statuses: { ...this.state.statuses, ...byNode } });
  }

  clearStatuses(): void {
    this.set({ statuses: {} });
  }

  setIssues(byNode: Record<string, Issue[]> = {}, byEdge: Record<string, Issue[]> = {}): void {
    this.set({ nodeIssues: { ...(byNode ?? {}) }, edgeIssues: { ...(byEdge ?? {}) } });
  }

  setMarks({ nodes = {}, edges = {} }: { nodes?: Record<string, Mark>; edges?: Record<string, Mark> } = {}): void {
    this.set({ nodeMarks: { ...nodes }, edgeMarks: { ...edges } });
  }

  setCatalog(catalog: Catalog): void {
    const safe = normaliseCatalog(catalog);
    this.set({ catalog: safe, readonly: this.state.readonly || safe.can_edit === false });
  }

  addAgent(agent: Agent): void {
    if (!agent || typeof agent.id !== 'string') return;
    const agents = this.state.catalog.agents.filter((item) => item.id !== agent.id);
    this.set({ catalog: { ...this.state.catalog, agents: [...agents, agent] } });
  }
}

function deselect<T extends { selected?: boolean }>(item: T): T {
  return item.selected ? { ...item, selected: false } : item;
}

function sameItems(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

function normaliseCatalog(catalog: Catalog | null | undefined): Catalog {
  const source = (catalog && typeof catalog === 'object' ? catalog : {}) as Partial<Catalog>;
  return {
    ...source,
    node_types: Array.isArray(source.node_types) ? source.node_types.filter((t) => t && typeof t.type === 'string') : [],
    agents: Array.isArray(source.agents) ? source.agents.filter((a) => a && typeof a.id === 'string') : [],
    can_edit: source.can_edit !== false,
  };
}
