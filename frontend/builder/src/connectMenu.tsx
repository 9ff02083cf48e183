import { useEffect, useMemo, useRef, useState } from 'react';
import type { KeyboardEvent } from 'react';
import { useBuilderStore, useSlice } from './context';
import { typeLabel } from './describe';
import { canConnect, outputHandles } from './graphRules';

/**
 * The keyboard way to draw an edge: pick the source's branch (when it has several) and a target
 * from a listbox; Enter connects. Only targets the rules accept are offered.
 */
export function ConnectMenu({ nodeId, onClose }: { nodeId: string; onClose(source: string): void }) {
  const store = useBuilderStore();
  const nodes = useSlice((state) => state.nodes);
  const edges = useSlice((state) => state.edges);
  const catalog = useSlice((state) => state.catalog);
  const source = nodes.find((node) => node.id === nodeId);
  const handles = useMemo(() => (source ? outputHandles(source.data.type, source.data.config, catalog) : []), [source, catalog]);
  const [handle, setHandle] = useState<string | null>(handles[0]?.id ?? null);
  const [active, setActive] = useState(0);
  const listRef = useRef<HTMLUListElement>(null);

  const targets = useMemo(
    () =>
      nodes
        .filter((node) => canConnect(nodes, edges, { source: nodeId, target: node.id, sourceHandle: handle }, catalog))
        .sort((a, b) => (a.data.label || a.id).localeCompare(b.data.label || b.id)),
    [nodes, edges, nodeId, handle, catalog],
  );

  useEffect(() => {
    listRef.current?.focus();
  }, []);
  useEffect(() => setActive((index) => Math.min(index, Math.max(targets.length - 1, 0))), [targets.length]);
  useEffect(() => {
    listRef.current?.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  }, [active]);

  if (!source) return null;
  const title = `Connect “${source.data.label || source.id}” to…`;
  const optionId = (index: number) => `wf-connect-${nodeId}-${index}`;

  const choose = (index: number) => {
    const target = targets[index];
    if (!target) return;
    store.connect(nodeId, target.id, handle);
    onClose(nodeId);
  };

  const onListKey = (event: KeyboardEvent) => {
    const last = targets.length - 1;
    const moves: Record<string, number> = { ArrowDown: active + 1, ArrowUp: active - 1, Home: 0, End: last };
    if (event.key in moves) {
      event.preventDefault();
      setActive(Math.max(0, Math.min(last, moves[event.key])));
    } else if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      choose(active);
    }
  };

  return (
    <div
      className="wf-connect"
      role="dialog"
      aria-label={title}
      onKeyDown={(event) => {
        if (event.key === 'Escape') {
          event.preventDefault();
          event.stopPropagation();
          onClose(nodeId);
        }
      }}
    >
      <div className="wf-connect__title">{title}</div>
      {handles.length > 1 && (
        <label className="wf-connect__handle">
          Branch
          <select value={handle ?? ''} onChange={(event) => setHandle(event.target.value === '' ? null : event.target.value)}>
            {handles.map((item) => (
              <option key={item.id ?? ''} value={item.id ?? ''}>
                {item.label || 'next'}
              </option>
            ))}
          </select>
        </label>
      )}
      {targets.length ? (
        <ul
          ref={listRef}
          className="wf-connect__list"
          role="listbox"
          tabIndex={0}
          aria-label="Target step"
          aria-activedescendant={optionId(active)}
          onKeyDown={onListKey}
        >
          {targets.map((node, index) => (
            <li
              key={node.id}
              id={optionId(index)}
              role="option"
              aria-selected={index === active}
              className={index === active ? 'is-active' : undefined}
              onMouseEnter={() => setActive(index)}
              onClick={() => choose(index)}
            >
              <span>{node.data.label || node.id}</span>
              <span className="wf-connect__kind">{typeLabel(node.data.type, catalog)}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="wf-connect__empty" tabIndex={-1} ref={listRef as never}>
          No step can follow this one here (it would close a cycle without a loop, or is already connected).
        </p>
      )}
      <div className="wf-connect__actions">
        <button type="button" className="wf-tool" onClick={() => onClose(nodeId)}>
          Cancel
        </button>
      </div>
    </div>
  );
}
