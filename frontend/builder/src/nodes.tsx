import { Handle, NodeToolbar, Position, useUpdateNodeInternals } from '@xyflow/react';
import type { NodeProps } from '@xyflow/react';
import { memo, useEffect, useMemo } from 'react';
import { useBuilderStore, useSlice } from './context';
import { nodeSummary, typeLabel } from './describe';
import { hasInput, outputHandles } from './graphRules';
import { TypeIcon } from './icons';
import type { Issue, OutputHandle, WfNode } from './types';

const NO_ISSUES: Issue[] = [];
const NO_GHOSTS: (string | null)[] = [];

function IssueBadge({ issues }: { issues: Issue[] }) {
  const errors = issues.filter((issue) => issue.level === 'error').length;
  const level = errors ? 'error' : 'warning';
  const text = issues.map((issue) => `${issue.level === 'error' ? 'Error' : 'Warning'}: ${issue.message}`).join('\n');
  return (
    <span className={`wf-badge wf-badge--${level}`} title={text} role="img" aria-label={`${issues.length} ${issues.length === 1 ? 'issue' : 'issues'}: ${text}`}>
      {issues.length}
    </span>
  );
}

function Outputs({ handles, ghosts, connectable }: { handles: OutputHandle[]; ghosts: (string | null)[]; connectable: boolean }) {
  if (handles.length === 1 && handles[0].id === null && ghosts.length === 0) {
    return <Handle type="source" position={Position.Bottom} isConnectable={connectable} aria-label="Output" />;
  }
  return (
    <div className="wf-node__outs">
      {handles.map((handle) => (
        <span key={handle.id ?? ''} className={`wf-node__out${handle.id === 'error' ? ' wf-node__out--error' : ''}`}>
          {handle.label || 'next'}
          <Handle type="source" position={Position.Bottom} id={handle.id} isConnectable={connectable} aria-label={`Output ${handle.label || 'next'}`} />
        </span>
      ))}
      {ghosts.map((ghost) => (
        <span key={`ghost-${ghost ?? ''}`} className="wf-node__out wf-node__out--ghost" title="This branch no longer exists; reconnect or delete its edge.">
          {ghost ?? 'next'}
          <Handle type="source" position={Position.Bottom} id={ghost} isConnectable={false} />
        </span>
      ))}
    </div>
  );
}

function WfNodeView({ id, data, selected }: NodeProps<WfNode>) {
  const store = useBuilderStore();
  const catalog = useSlice((state) => state.catalog);
  const readonly = useSlice((state) => state.readonly);
  const status = useSlice((state) => state.statuses[id]);
  const mark = useSlice((state) => state.nodeMarks[id]);
  const issues = useSlice((state) => state.nodeIssues[id]) ?? NO_ISSUES;
  const ghosts = useSlice((_, s) => s.classes().ghostOutputs.get(id)) ?? NO_GHOSTS;
  const ghostInput = useSlice((_, s) => s.classes().ghostInputs.has(id));
  // Only a selected node pays for counting the selection.
  const several = useSlice((state) => Boolean(selected) && state.nodes.filter((n) => n.selected).length > 1);

  const handles = useMemo(() => outputHandles(data.type, data.config, catalog), [data.type, data.config, catalog]);
  const input = hasInput(data.type, catalog);
  const handleKey = `${input}|${ghostInput}|${handles.map((h) => h.id).join(',')}|${ghosts.join(',')}`;
  const updateNodeInternals = useUpdateNodeInternals();
  // React Flow caches handle positions; tell it when a config change adds or removes branches.
  useEffect(() => updateNodeInternals(id), [handleKey, id, updateNodeInternals]);

  const kind = typeLabel(data.type, catalog);
  const summary = nodeSummary(data.type, data.config, catalog, data.label);
  const errorCount = issues.filter((issue) => issue.level === 'error').length;
  const classes = [
    'wf-node',
    `wf-node--${data.type.replace(/[^A-Za-z0-9_-]/g, '')}`,
    status && `wf-status--${status}`,
    mark && `wf-mark--${mark}`,
    issues.length > 0 && (errorCount ? 'wf-node--error' : 'wf-node--warning'),
    data.type === 'agent' && summary === 'Choose an agent' && 'wf-node--unset',
  ]
    .filter(Boolean)
    .join(' ');

  return (
    <div className={classes} data-testid={`node-${id}`} data-status={status} data-mark={mark}>
      {(input || ghostInput) && (
        <Handle type="target" position={Position.Top} isConnectable={!readonly && input} className={input ? undefined : 'wf-handle--ghost'} aria-label="Input" />
      )}
      <div className="wf-node__head">
        <TypeIcon type={data.type} />
        <span className="wf-node__type">{kind}</span>
        {status && <span className="wf-node__status">{status}</span>}
        {issues.length > 0 && <IssueBadge issues={issues} />}
      </div>
      <div className="wf-node__label">{data.label || kind}</div>
      {summary && <div className="wf-node__summary" title={summary}>{summary}</div>}
      {handles.length + ghosts.length > 0 && <Outputs handles={handles} ghosts={ghosts} connectable={!readonly} />}
      {!readonly && handles.length > 0 && (
        <NodeToolbar isVisible={Boolean(selected) && !several} position={Position.Right} className="wf-node-toolbar">
          <button type="button" className="wf-tool" onClick={() => store.openConnectMenu(id)} aria-keyshortcuts="C">
            Connect…
          </button>
        </NodeToolbar>
      )}
    </div>
  );
}

export const WfNodeComponent = memo(WfNodeView);
// Module-level so React Flow never sees a new nodeTypes object (it warns and re-mounts nodes).
export const nodeTypes = { wf: WfNodeComponent };
