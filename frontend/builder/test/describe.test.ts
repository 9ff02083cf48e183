import { describe, expect, it } from 'vitest';
import { nodeSummary } from '../src/describe';
import type { Catalog } from '../src/types';

const catalog: Catalog = {
  node_types: [],
  agents: [
    { id: 'a-1', name: 'researcher', model: 'gpt-4o-mini', role: 'a meticulous researcher' },
    { id: 'a-2', name: 'Writer', model: '', role: 'writer' },
  ],
};

describe('an agent node names its agent once', () => {
  it('shows the model, not the name again, when the step is named after its agent', () => {
    expect(nodeSummary('agent', { agent_id: 'a-1' }, catalog, 'researcher')).toBe('gpt-4o-mini');
    expect(nodeSummary('agent', { agent_id: 'a-1' }, catalog, 'Researcher ')).toBe('gpt-4o-mini');
  });

  it('shows nothing when the model and role only repeat the name', () => {
    expect(nodeSummary('agent', { agent_id: 'a-2' }, catalog, 'Writer')).toBe('');
  });

  it('shows the agent when the step has a name of its own', () => {
    expect(nodeSummary('agent', { agent_id: 'a-1' }, catalog, 'Find sources')).toBe('researcher');
    expect(nodeSummary('agent', { agent_id: 'a-1' }, catalog, '')).toBe('researcher');
    expect(nodeSummary('agent', {}, catalog, 'x')).toBe('Choose an agent');
  });
});
