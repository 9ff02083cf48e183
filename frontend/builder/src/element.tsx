import '@xyflow/react/dist/style.css';
import './styles.css';
import { createRoot } from 'react-dom/client';
import type { Root } from 'react-dom/client';
import { flushSync } from 'react-dom';
import { Builder, focusNodeElement } from './Builder';
import { BuilderStore } from './store';
import type { AddNodeOptions } from './store';
import type { Agent, Catalog, Config, Graph, Issue, Mark, Status } from './types';

function readJson(host: HTMLElement, name: string): unknown {
  const script = host.querySelector(`:scope > script[type="application/json"][data-builder="${name}"]`);
  if (!script?.textContent?.trim()) return null;
  try {
    return JSON.parse(script.textContent);
  } catch (error) {
    console.error(`workflow-builder: the ${name} JSON does not parse`, error);
    return null;
  }
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return Boolean(target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]'));
}

type Call = (store: BuilderStore) => void;

/**
 * `<workflow-builder>`: the canvas island. Light DOM on purpose, so the page's stylesheet and
 * design tokens reach it; the graph and catalog arrive as child JSON scripts.
 */
export class WorkflowBuilderElement extends HTMLElement {
  private store: BuilderStore | null = null;
  private root: Root | null = null;
  private mountPoint: HTMLDivElement | null = null;
  private queued: Call[] = [];
  private lastPointerInside = false;
  private cleanups: (() => void)[] = [];

  connectedCallback(): void {
    if (this.root) return;
    // A page restored from htmx's history cache carries a dead copy of the old canvas.
    for (const child of [...this.children]) {
      if (!(child instanceof HTMLScriptElement)) child.remove();
    }
    const store = this.store ?? new BuilderStore(readJson(this, 'graph'), readJson(this, 'catalog') as Catalog | null, {
      readonly: this.hasAttribute('readonly'),
    });
    this.store = store;
    store.events = {
      change: (graph) => {
        this.writeInput(graph);
        this.emit('wf:change', { graph });
      },
      select: (nodeId, node) => this.emit('wf:select', { nodeId, node }),
      focus: (nodeId) => focusNodeElement(this, nodeId),
    };
    for (const call of this.queued.splice(0)) call(store);

    this.mountPoint = document.createElement('div');
    this.mountPoint.className = 'wf-mount';
    this.appendChild(this.mountPoint);
    this.root = createRoot(this.mountPoint);
    // Synchronous first render, so callers can use the element as soon as it is connected.
    flushSync(() => this.root!.render(<Builder store={store} host={this} onNewAgent={() => this.emit('wf:new-agent', {})} />));

    this.listen();
    this.writeInput(store.getGraph());
    this.setAttribute('data-ready', 'true');
    this.emit('wf:ready', {});
  }

  disconnectedCallback(): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.root?.unmount();
    this.root = null;
    this.mountPoint?.remove();
    this.mountPoint = null;
    this.removeAttribute('data-ready');
  }

  private emit(name: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }

  private writeInput(graph: Graph): void {
    const id = this.dataset.input;
    const input = id ? document.getElementById(id) : null;
    if (input instanceof HTMLInputElement || input instanceof HTMLTextAreaElement) input.value = JSON.stringify(graph);
  }

  private on<K extends keyof DocumentEventMap>(type: K | string, handler: (event: Event) => void): void {
    document.addEventListener(type, handler);
    this.cleanups.push(() => document.removeEventListener(type, handler));
  }

  private listen(): void {
    const editable = () => this.store && !this.store.state.readonly;
    this.on('wf:node-updated', (event) => {
      const detail = (event as CustomEvent).detail ?? {};
      if (editable() && typeof detail.id === 'string') this.updateNode(detail.id, { label: detail.label, config: detail.config });
    });
    this.on('wf:agent-created', (event) => {
      const agent = (event as CustomEvent).detail?.agent as Agent | undefined;
      if (!editable() || !agent || typeof agent.id !== 'string') return;
      this.addAgent(agent);
      const id = this.addNode('agent', { agentId: agent.id });
      if (id) focusNodeElement(this, id);
    });
    this.on('wf:set-graph', (event) => {
      const detail = (event as CustomEvent).detail ?? {};
      // With several builders on a page (a version diff), `target` names the one meant.
      if (detail.target && detail.target !== this.id) return;
      if (detail.graph) this.setGraph(detail.graph);
    });
    this.on('pointerdown', (event) => {
      this.lastPointerInside = this.contains(event.target as Node);
    });
    this.on('keydown', (event) => this.onKeyDown(event as KeyboardEvent));
  }

  /** Shortcuts apply while focus is in the builder, or nowhere after a click on the canvas. A
   * focusable container around the builder (the page's <main tabindex="-1">) takes the focus
   * when the canvas background is clicked; that counts as nowhere. */
  private onKeyDown(event: KeyboardEvent): void {
    const store = this.store;
    if (!store || event.defaultPrevented || isTyping(event.target)) return;
    const focus = document.activeElement;
    const nowhere = !focus || focus === document.body || focus.contains(this);
    const inside = this.contains(focus) || (nowhere && this.lastPointerInside);
    if (!inside || store.state.readonly || store.state.connectFor) return;
    const mod = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    let handled = true;
    if (mod && key === 'z' && !event.shiftKey) store.undo();
    else if ((mod && key === 'z' && event.shiftKey) || (event.ctrlKey && key === 'y')) store.redo();
    else if (mod && key === 'c' && !event.shiftKey && !event.altKey) handled = store.copy() > 0;
    else if (mod && key === 'v' && !event.shiftKey && !event.altKey) handled = store.paste().length > 0;
    else if (!mod && !event.altKey && key === 'c') {
      const selected = store.selectedNodeIds();
      handled = selected.length === 1;
      if (handled) store.openConnectMenu(selected[0]);
    } else handled = false;
    if (handled) event.preventDefault();
  }

  /** Runs now when mounted, or once the element connects; returns `fallback` until then. */
  private use<T>(run: (store: BuilderStore) => T, fallback: T): T {
    if (this.store) return run(this.store);
    this.queued.push((store) => void run(store));
    return fallback;
  }

  getGraph(): Graph | null {
    return this.store ? this.store.getGraph() : null;
  }
  setGraph(graph: Graph, options: { record?: boolean } = {}): void {
    this.use((store) => {
      store.setGraph(graph, options);
      // A load without an undo step fires no wf:change, but the form must still submit it.
      if (options.record === false) this.writeInput(store.getGraph());
    }, undefined);
  }
  addNode(type: string, options: AddNodeOptions = {}): string | null {
    return this.use((store) => store.addNode(type, options), null);
  }
  connect(source: string, target: string, sourceHandle: string | null = null): string | null {
    return this.use((store) => store.connect(source, target, sourceHandle), null);
  }
  removeElements(ids: { nodes?: string[]; edges?: string[] } = {}): void {
    this.use((store) => store.removeElements(ids), undefined);
  }
  updateNode(id: string, change: { label?: string; config?: Config } = {}): boolean {
    return this.use((store) => store.updateNode(id, change), false);
  }
  undo(): boolean {
    return this.use((store) => store.undo(), false);
  }
  redo(): boolean {
    return this.use((store) => store.redo(), false);
  }
  canUndo(): boolean {
    return this.store?.canUndo() ?? false;
  }
  canRedo(): boolean {
    return this.store?.canRedo() ?? false;
  }
  updateInterface(change: { inputs?: unknown; variables?: unknown; configs?: Record<string, Config> }): void {
    this.use((store) => store.updateInterface(change), undefined);
  }
  autoLayout(): void {
    this.use((store) => store.autoLayout(), undefined);
  }
  fitView(): void {
    this.use((store) => store.fitView(), undefined);
  }
  selectNode(id: string): boolean {
    return this.use((store) => store.selectNode(id), false);
  }
  focusNode(id: string): boolean {
    return this.use((store) => store.focusNode(id), false);
  }
  setStatus(nodeId: string, status: Status | null): void {
    this.use((store) => store.setStatus(nodeId, status), undefined);
  }
  setStatuses(byNode: Record<string, Status>): void {
    this.use((store) => store.setStatuses(byNode), undefined);
  }
  clearStatuses(): void {
    this.use((store) => store.clearStatuses(), undefined);
  }
  setIssues(byNode: Record<string, Issue[]> = {}, byEdge: Record<string, Issue[]> = {}): void {
    this.use((store) => store.setIssues(byNode, byEdge), undefined);
  }
  setMarks(marks: { nodes?: Record<string, Mark>; edges?: Record<string, Mark> } = {}): void {
    this.use((store) => store.setMarks(marks), undefined);
  }
  setCatalog(catalog: Catalog): void {
    this.use((store) => store.setCatalog(catalog), undefined);
  }
  addAgent(agent: Agent): void {
    this.use((store) => store.addAgent(agent), undefined);
  }
  nodeCount(): number {
    return this.store?.nodeCount() ?? 0;
  }
}

if (!customElements.get('workflow-builder')) customElements.define('workflow-builder', WorkflowBuilderElement);
