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

describe('a consensus node says who proposes and what commits', () => {
  it('names the proposer, the members, the quorum and the terms', () => {
    const config = { proposer_agent_id: 'a-2', members: ['a-1', 'x'], quorum: 'unanimous', max_terms: 4 };
    expect(nodeSummary('consensus', config, catalog)).toBe('Writer proposes · 2 members · unanimous · 4 terms');
    expect(nodeSummary('consensus', { ...config, quorum: 'k_of_n', k: 1, max_terms: undefined }, catalog)).toBe(
      'Writer proposes · 2 members · 1 of 2 · 3 terms',
    );
  });

  it('asks for a proposer first', () => {
    expect(nodeSummary('consensus', { members: [] }, catalog)).toBe('Choose a proposer');
  });
});

describe('a remote agent node says where it calls', () => {
  it('names the host and the skill', () => {
    expect(nodeSummary('remote_agent', { url: 'https://agents.example.com/travel', skill_id: 'book' }, catalog)).toBe(
      'A2A · agents.example.com · book',
    );
    expect(nodeSummary('remote_agent', { url: 'http://127.0.0.1:8123' }, catalog)).toBe('A2A · 127.0.0.1:8123');
  });

  it('asks for a URL first, and for a valid one', () => {
    expect(nodeSummary('remote_agent', { url: '' }, catalog)).toBe('Enter the agent URL');
    expect(nodeSummary('remote_agent', { url: 'not a url' }, catalog)).toBe('Check the agent URL');
  });
});
