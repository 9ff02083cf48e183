import { Background, Controls, MarkerType, MiniMap, Panel, ReactFlow, ReactFlowProvider, useReactFlow } from '@xyflow/react';
import type { FitViewOptions } from '@xyflow/react';
import type { DragEvent } from 'react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ConnectMenu } from './connectMenu';
import { StoreContext, useSlice } from './context';
import { typeLabel } from './describe';
import { edgeTypes, hoverEdge } from './edges';
import type { EdgeLook } from './edges';
import { nodeTypes } from './nodes';
import { DRAG_MIME, Palette } from './palette';
import type { PaletteItem } from './palette';
import { DEFAULT_SIZE } from './store';
import type { BuilderStore } from './store';
import type { Catalog, WfEdge, WfNode } from './types';

export interface BuilderProps {
  store: BuilderStore;
  host: HTMLElement;
  onNewAgent(): void;
}

const FIT: FitViewOptions<WfNode> = { padding: 0.2, maxZoom: 1.25 };
/** Below this width the palette becomes a drawer and the overview map starts folded away. */
export const NARROW_PX = 640;
// The overview map sits bottom-right (200 × 150); a fit leaves it that corner's column.
const FIT_BESIDE_MAP: FitViewOptions<WfNode> = { padding: { top: '56px', right: '224px', bottom: '24px', left: '24px' }, maxZoom: 1.25 };
// On a phone the canvas toolbar wraps to two rows above the graph.
const FIT_NARROW: FitViewOptions<WfNode> = { padding: { top: '96px', right: '16px', bottom: '24px', left: '16px' }, maxZoom: 1.25 };

const MARKER = { type: MarkerType.ArrowClosed, width: 18, height: 18, color: 'var(--muted)' };

/** Moves keyboard focus onto a node once React Flow has measured and shown it. */
export function focusNodeElement(host: HTMLElement, id: string, tries = 20): void {
  requestAnimationFrame(() => {
    const element = host.querySelector<HTMLElement>(`.react-flow__node[data-id="${CSS.escape(id)}"]`);
    if (element && getComputedStyle(element).visibility !== 'hidden') element.focus({ preventScroll: true });
    else if (tries > 0) focusNodeElement(host, id, tries - 1);
  });
}

function useDisplayNodes(nodes: WfNode[], catalog: Catalog): WfNode[] {
  // Per-node cache: during a drag only the moved node gets a new object, so memoised nodes stay put.
  const cache = useRef({ catalog, map: new WeakMap<WfNode, WfNode>() });
  if (cache.current.catalog !== catalog) cache.current = { catalog, map: new WeakMap() };
  return useMemo(() => {
    const { map } = cache.current;
    return nodes.map((node) => {
      let shown = map.get(node);
      if (!shown) {
        shown = { ...node, ariaLabel: `${typeLabel(node.data.type, catalog)}: ${node.data.label || node.id}` };
        map.set(node, shown);
      }
      return shown;
    });
  }, [nodes, catalog]);
}

function useDisplayEdges(edges: WfEdge[]): WfEdge[] {
  const classes = useSlice((_, s) => s.classes());
  const statuses = useSlice((state) => state.statuses);
  const marks = useSlice((state) => state.edgeMarks);
  const issues = useSlice((state) => state.edgeIssues);
  const cache = useRef(new WeakMap<WfEdge, { key: string; edge: WfEdge }>());
  return useMemo(() => {
    return edges.map((edge) => {
      const level = issues[edge.id]?.length ? (issues[edge.id].some((issue) => issue.level === 'error') ? 'error' : 'warning') : null;
      const look: EdgeLook = {
        kind: classes.dangling.has(edge.id) ? 'dangling' : classes.cycle.has(edge.id) ? 'cycle' : classes.loop.has(edge.id) ? 'loop' : null,
        mark: marks[edge.id] ?? null,
        issue: level,
        running: statuses[edge.target] === 'running',
      };
      const key = `${look.kind}|${look.mark}|${look.issue}|${look.running}`;
      const hit = cache.current.get(edge);
      if (hit && hit.key === key) return hit.edge;
      const shown: WfEdge = {
        ...edge,
        animated: look.running,
        markerEnd: MARKER,
        ariaLabel: `Edge from ${edge.source} to ${edge.target}${edge.data?.source_handle ? ` (${edge.data.source_handle})` : ''}`,
        data: { ...edge.data!, look },
      };
      cache.current.set(edge, { key, edge: shown });
      return shown;
    });
  }, [edges, classes, statuses, marks, issues]);
}

interface ToolbarProps {
  store: BuilderStore;
  mapShown: boolean;
  onToggleMap(): void;
}

function Toolbar({ store, mapShown, onToggleMap }: ToolbarProps) {
  const readonly = useSlice((state) => state.readonly);
  const canUndo = useSlice((state) => state.canUndo);
  const canRedo = useSlice((state) => state.canRedo);
  return (
    <div className="wf-toolbar" role="toolbar" aria-label="Canvas">
      {!readonly && (
        <>
          <button type="button" className="wf-tool" onClick={() => store.undo()} disabled={!canUndo} aria-keyshortcuts="Control+Z Meta+Z" title="Undo (Ctrl+Z)">
            Undo
          </button>
          <button type="button" className="wf-tool" onClick={() => store.redo()} disabled={!canRedo} aria-keyshortcuts="Control+Y Control+Shift+Z Meta+Shift+Z" title="Redo (Ctrl+Y)">
            Redo
          </button>
          <button type="button" className="wf-tool" onClick={() => store.autoLayout()} title="Arrange the steps top to bottom">
            Auto-layout
          </button>
        </>
      )}
      <button type="button" className="wf-tool" onClick={() => store.fitView()} title="Show the whole workflow">
        Fit view
      </button>
      <button type="button" className="wf-tool" onClick={onToggleMap} aria-pressed={mapShown} title={mapShown ? 'Hide the overview map' : 'Show the overview map'} data-testid="toggle-map">
        Map
      </button>
    </div>
  );
}

function Canvas({ store, host, onNewAgent }: BuilderProps) {
  const flow = useReactFlow<WfNode, WfEdge>();
  const canvasRef = useRef<HTMLDivElement>(null);
  const nodes = useSlice((state) => state.nodes);
  const edges = useSlice((state) => state.edges);
  const catalog = useSlice((state) => state.catalog);
  const readonly = useSlice((state) => state.readonly);
  const connectFor = useSlice((state) => state.connectFor);
  const shownNodes = useDisplayNodes(nodes, catalog);
  const shownEdges = useDisplayEdges(edges);
  const empty = nodes.every((node) => node.data.type === 'start' || node.data.type === 'end');
  const rootRef = useRef<HTMLDivElement>(null);
  const [narrow, setNarrow] = useState(() => host.clientWidth > 0 && host.clientWidth < NARROW_PX);
  const [paletteOpen, setPaletteOpen] = useState(false);
  // null: the map follows the width (shown when wide); a click makes it the user's choice.
  const [mapChoice, setMapChoice] = useState<boolean | null>(null);
  const mapShown = mapChoice ?? !narrow;
  const fitOptions = useRef(FIT);
  fitOptions.current = narrow ? FIT_NARROW : mapShown ? FIT_BESIDE_MAP : FIT;

  useEffect(() => {
    const root = rootRef.current;
    if (!root || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(() => {
      const width = root.clientWidth;
      if (width > 0) setNarrow(width < NARROW_PX);
    });
    observer.observe(root);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    if (!narrow) setPaletteOpen(false);
  }, [narrow]);

  useEffect(() => {
    store.attachViewport({
      // Two frames: nodes added in this tick are measured by then, so the fit includes them.
      fitView: () => requestAnimationFrame(() => requestAnimationFrame(() => void flow.fitView(fitOptions.current))),
      centerOn: (x, y) => void flow.setCenter(x, y, { zoom: Math.max(flow.getZoom(), 0.9), duration: 200 }),
      center: () => {
        const rect = canvasRef.current?.getBoundingClientRect();
        if (!rect || !rect.width) return { x: 0, y: 0 };
        return flow.screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 });
      },
    });
    return () => store.attachViewport(null);
  }, [flow, store]);

  const add = useCallback(
    (item: PaletteItem, position?: { x: number; y: number }) => {
      const id = store.addNode(item.type, { agentId: item.agentId, position });
      // On a phone the drawer covers the canvas: close it so the new step is seen.
      setPaletteOpen(false);
      focusNodeElement(host, id);
    },
    [store, host],
  );

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(DRAG_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  }, []);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const raw = event.dataTransfer.getData(DRAG_MIME);
      if (!raw || store.state.readonly) return;
      event.preventDefault();
      let item: PaletteItem;
      try {
        item = JSON.parse(raw) as PaletteItem;
      } catch {
        return;
      }
      const at = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      add(item, { x: Math.round(at.x - DEFAULT_SIZE.width / 2), y: Math.round(at.y - DEFAULT_SIZE.height / 2) });
    },
    [flow, store, add],
  );

  const closeMenu = useCallback(
    (source: string) => {
      store.openConnectMenu(null);
      focusNodeElement(host, source);
    },
    [store, host],
  );

  return (
    <div
      ref={rootRef}
      className={`wf-root${readonly ? ' wf-root--readonly' : ''}${narrow ? ' wf-root--narrow' : ''}${paletteOpen ? ' wf-root--palette-open' : ''}`}
    >
      {!readonly && (!narrow || paletteOpen) && (
        <Palette
          onAdd={add}
          onNewAgent={onNewAgent}
          onClose={narrow ? () => setPaletteOpen(false) : undefined}
        />
      )}
      <div className="wf-canvas" ref={canvasRef}>
        <ReactFlow<WfNode, WfEdge>
          nodes={shownNodes}
          edges={shownEdges}
          nodeTypes={nodeTypes}
          edgeTypes={edgeTypes}
          onNodesChange={store.onNodesChange}
          onEdgesChange={store.onEdgesChange}
          onConnect={readonly ? undefined : store.onConnect}
          isValidConnection={store.isValidConnection}
          onNodeDragStart={store.onDragStart}
          onNodeDragStop={store.onDragStop}
          onSelectionDragStart={store.onDragStart}
          onSelectionDragStop={store.onDragStop}
          onEdgeMouseEnter={(_, edge) => hoverEdge.enter(store, edge.id)}
          onEdgeMouseLeave={() => hoverEdge.leave(store)}
          onDragOver={onDragOver}
          onDrop={onDrop}
          nodesDraggable={!readonly}
          nodesConnectable={!readonly}
          edgesReconnectable={false}
          deleteKeyCode={readonly ? null : ['Delete', 'Backspace']}
          selectionKeyCode="Shift"
          multiSelectionKeyCode={['Shift', 'Meta', 'Control']}
          fitView
          fitViewOptions={fitOptions.current}
          minZoom={0.1}
          maxZoom={2}
          aria-label="Workflow canvas"
        >
          <Background gap={20} size={1.5} />
          {mapShown && <MiniMap pannable zoomable ariaLabel="Workflow overview" />}
          <Controls showInteractive={false} />
          <Panel position="top-right">
            <Toolbar store={store} mapShown={mapShown} onToggleMap={() => setMapChoice(!mapShown)} />
          </Panel>
          {narrow && !readonly && !paletteOpen && (
            <Panel position="top-left">
              <button type="button" className="wf-tool wf-tool--primary" onClick={() => setPaletteOpen(true)} aria-expanded={false} data-testid="open-palette">
                + Add step
              </button>
            </Panel>
          )}
          {connectFor && !readonly && (
            // Top-left, so the node just added at the view centre stays visible beside the menu.
            <Panel position="top-left">
              <ConnectMenu key={connectFor} nodeId={connectFor} onClose={closeMenu} />
            </Panel>
          )}
        </ReactFlow>
        {empty && !readonly && (
          <div className="wf-hint" role="note">
            {narrow ? 'Tap “+ Add step” to add an agent or a step, then connect the handles.' : 'Drag an agent or a step from the left, then connect the handles.'}
          </div>
        )}
      </div>
    </div>
  );
}

export function Builder(props: BuilderProps) {
  return (
    <StoreContext.Provider value={props.store}>
      <ReactFlowProvider>
        <Canvas {...props} />
      </ReactFlowProvider>
    </StoreContext.Provider>
  );
}
