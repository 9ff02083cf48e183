import { BaseEdge, EdgeLabelRenderer, ViewportPortal, getBezierPath } from '@xyflow/react';
import type { EdgeProps } from '@xyflow/react';
import { memo } from 'react';
import { useBuilderStore, useSlice } from './context';
import type { WfEdge } from './types';

export interface EdgeLook {
  kind: 'loop' | 'cycle' | 'dangling' | null;
  mark: string | null;
  issue: 'error' | 'warning' | null;
  running: boolean;
}

/**
 * An edge going back up (typically a loop's back-edge) drawn as a bracket beside the nodes it
 * skips, so it never crosses them and cannot be mistaken for a forward step.
 */
export function climbingPath(sx: number, sy: number, tx: number, ty: number): [string, number, number] {
  const side = Math.max(sx, tx) + 140;
  const below = sy + 18;
  const above = ty - 18;
  const r = 8;
  const path = [
    `M ${sx} ${sy}`,
    `L ${sx} ${below - r} Q ${sx} ${below} ${sx + r} ${below}`,
    `L ${side - r} ${below} Q ${side} ${below} ${side} ${below - r}`,
    `L ${side} ${above + r} Q ${side} ${above} ${side - r} ${above}`,
    `L ${tx + r} ${above} Q ${tx} ${above} ${tx} ${above + r}`,
    `L ${tx} ${ty}`,
  ].join(' ');
  return [path, side, (below + above) / 2];
}

let leaveTimer: ReturnType<typeof setTimeout> | undefined;

function WfEdgeView(props: EdgeProps<WfEdge>) {
  const { id, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, data, selected, markerEnd } = props;
  const store = useBuilderStore();
  const hovered = useSlice((state) => state.hoveredEdge === id);
  const readonly = useSlice((state) => state.readonly);
  const look = (data as (WfEdge['data'] & { look?: EdgeLook }) | undefined)?.look;
  const [path, labelX, labelY] =
    targetY < sourceY - 10
      ? climbingPath(sourceX, sourceY, targetX, targetY)
      : getBezierPath({ sourceX, sourceY, sourcePosition, targetX, targetY, targetPosition });
  const label = data?.source_handle ?? '';
  const classes = [
    'wf-edge',
    look?.kind && `wf-edge--${look.kind}`,
    look?.mark && `wf-mark--${look.mark}`,
    look?.issue && `wf-edge--issue-${look.issue}`,
    look?.running && 'wf-edge--running',
  ]
    .filter(Boolean)
    .join(' ');
  const showDelete = !readonly && (hovered || selected);


  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} className={classes} data-testid={`edge-${id}`} interactionWidth={18} />
      {/* React Flow paints edges under nodes, so a wire drawn across a node vanished behind it.
          This copy is painted above the nodes and takes no pointer events: handles, nodes and
          the edge's own hit area below keep working as before. */}
      <ViewportPortal>
        <svg className="wf-edge-overlay" aria-hidden="true" data-testid={`edge-overlay-${id}`}>
          <path d={path} markerEnd={markerEnd} className={`react-flow__edge-path ${classes}${selected ? ' wf-edge--selected' : ''}`} />
        </svg>
      </ViewportPortal>
      {(label || showDelete) && (
        <EdgeLabelRenderer>
          <div
            className={`wf-edge-label nodrag nopan${look?.kind ? ` wf-edge-label--${look.kind}` : ''}`}
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
            onMouseEnter={() => hoverEdge.enter(store, id)}
            onMouseLeave={() => hoverEdge.leave(store)}
            data-testid={`edge-label-${id}`}
          >
            {label && <span className="wf-edge-label__text">{label}</span>}
            {showDelete && (
              <button
                type="button"
                className="wf-edge-delete"
                aria-label="Delete edge"
                title="Delete edge"
                onClick={(event) => {
                  event.stopPropagation();
                  store.setHoveredEdge(null);
                  store.removeElements({ edges: [id] });
                }}
              >
                ×
              </button>
            )}
          </div>
        </EdgeLabelRenderer>
      )}
    </>
  );
}

export const WfEdgeComponent = memo(WfEdgeView);
export const edgeTypes = { wf: WfEdgeComponent };
/** Hover with a grace period: the button sits on the path, so moving onto it must not hide it. */
export const hoverEdge = {
  enter(store: { setHoveredEdge(id: string | null): void }, id: string) {
    clearTimeout(leaveTimer);
    store.setHoveredEdge(id);
  },
  leave(store: { setHoveredEdge(id: string | null): void }) {
    clearTimeout(leaveTimer);
    leaveTimer = setTimeout(() => store.setHoveredEdge(null), 200);
  },
};
