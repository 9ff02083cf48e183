import { memo, useMemo, useState } from 'react';
import type { DragEvent, KeyboardEvent } from 'react';
import { useSlice } from './context';
import { TypeIcon } from './icons';
import type { Agent, NodeTypeInfo } from './types';

export const DRAG_MIME = 'application/x-workflow-node';

export interface PaletteItem {
  type: string;
  agentId?: string;
}

const GROUP_ORDER = ['Agents', 'Flow', 'Teams', 'Humans', 'Tools'];

function matches(query: string, ...texts: (string | undefined)[]): boolean {
  const needle = query.trim().toLowerCase();
  return !needle || texts.some((text) => text?.toLowerCase().includes(needle));
}

function onDragStart(event: DragEvent, item: PaletteItem) {
  event.dataTransfer.setData(DRAG_MIME, JSON.stringify(item));
  event.dataTransfer.setData('text/plain', item.agentId ? `agent:${item.agentId}` : item.type);
  event.dataTransfer.effectAllowed = 'copy';
}

// Arrow keys walk the palette's buttons, as in a menu; Tab still leaves it.
function onListKeyDown(event: KeyboardEvent<HTMLElement>) {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
  const items = [...event.currentTarget.querySelectorAll<HTMLElement>('.wf-palette__item, .wf-palette__new')];
  const index = items.indexOf(document.activeElement as HTMLElement);
  if (index < 0) return;
  event.preventDefault();
  const next = items[(index + (event.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length];
  next.focus();
}

function Item({ label, description, type, item, onAdd }: { label: string; description?: string; type: string; item: PaletteItem; onAdd(item: PaletteItem): void }) {
  return (
    <li>
      <button
        type="button"
        className="wf-palette__item"
        draggable
        onDragStart={(event) => onDragStart(event, item)}
        onClick={() => onAdd(item)}
        title={description ? `${description} Drag onto the canvas, or press Enter to add.` : 'Drag onto the canvas, or press Enter to add.'}
        data-testid={item.agentId ? `palette-agent-${item.agentId}` : `palette-${type}`}
      >
        <TypeIcon type={type} />
        <span className="wf-palette__text">
          <span className="wf-palette__label">{label}</span>
          {description && <span className="wf-palette__desc">{description}</span>}
        </span>
      </button>
    </li>
  );
}

interface PaletteProps {
  onAdd(item: PaletteItem): void;
  onNewAgent(): void;
  /** Given when the palette is a drawer over the canvas (narrow screens). */
  onClose?(): void;
}

function PaletteView({ onAdd, onNewAgent, onClose }: PaletteProps) {
  const catalog = useSlice((state) => state.catalog);
  const [query, setQuery] = useState('');

  const groups = useMemo(() => {
    const byGroup = new Map<string, NodeTypeInfo[]>();
    for (const info of catalog.node_types) {
      if (!matches(query, info.label, info.type, info.description, info.group)) continue;
      const group = info.group || 'Other';
      byGroup.set(group, [...(byGroup.get(group) ?? []), info]);
    }
    const names = [...new Set([...GROUP_ORDER, ...byGroup.keys()])];
    return names.map((name) => ({ name, types: byGroup.get(name) ?? [] }));
  }, [catalog, query]);

  const agents: Agent[] = catalog.agents.filter((agent) => matches(query, agent.name, agent.role, agent.model, 'agent'));

  return (
    <aside
      className={`wf-palette${onClose ? ' wf-palette--drawer' : ''}`}
      aria-label="Steps to add"
      data-testid="palette"
      onKeyDown={onClose ? (event) => event.key === 'Escape' && onClose() : undefined}
    >
      {onClose && (
        <div className="wf-palette__bar">
          <strong>Add a step</strong>
          <button type="button" className="wf-tool" onClick={onClose} data-testid="close-palette">
            Close
          </button>
        </div>
      )}
      <input
        type="search"
        className="wf-palette__search"
        placeholder="Search steps and agents"
        aria-label="Search steps and agents"
        value={query}
        onChange={(event) => setQuery(event.target.value)}
      />
      <div className="wf-palette__groups" onKeyDown={onListKeyDown}>
        {groups.map(({ name, types }) => {
          const isAgents = name === 'Agents';
          if (!types.length && !(isAgents && (agents.length || !query))) return null;
          const headingId = `wf-palette-${name.replace(/\W+/g, '-')}`;
          return (
            <section key={name} className="wf-palette__group" aria-labelledby={headingId}>
              <h3 id={headingId} className="wf-palette__heading">{name}</h3>
              <ul role="list">
                {isAgents &&
                  agents.map((agent) => (
                    <Item key={agent.id} label={agent.name} description={agent.role || agent.model} type="agent" item={{ type: 'agent', agentId: agent.id }} onAdd={onAdd} />
                  ))}
                {types.map((info) => (
                  <Item key={info.type} label={info.label} description={info.description} type={info.type} item={{ type: info.type }} onAdd={onAdd} />
                ))}
              </ul>
              {isAgents && (
                <button type="button" className="wf-palette__new" onClick={onNewAgent}>
                  + New agent
                </button>
              )}
            </section>
          );
        })}
      </div>
    </aside>
  );
}

export const Palette = memo(PaletteView);
