import type { Catalog, Graph } from '../src/types';

export const catalog: Catalog = {
  node_types: [
    { type: 'start', label: 'Start', group: 'Flow', min_in: 0, max_in: 0, min_out: 1, max_out: null, fan_out: false, default_config: {} },
    { type: 'end', label: 'End', group: 'Flow', min_in: 0, max_in: null, min_out: 0, max_out: 0, fan_out: false, default_config: {} },
    { type: 'agent', label: 'Agent', group: 'Agents', default_config: { agent_id: '', input_template: '{{ input }}' } },
    { type: 'router', label: 'Router', group: 'Flow', default_config: { mode: 'rules', routes: ['yes', 'no'], rules: [] } },
    { type: 'loop', label: 'Loop', group: 'Flow', default_config: { max_iterations: 3 } },
    { type: 'human', label: 'Human', group: 'Humans', default_config: { prompt: 'OK?', kind: 'approval' } },
  ],
  agents: [{ id: 'a-1', name: 'Researcher', model: 'demo/x', role: 'finds facts' }],
  can_edit: true,
};

/** A graph using every top-level key and odd corners: extra keys, handles, nested config. */
export function richGraph(): Graph {
  return {
    schema_version: 1,
    nodes: [
      { id: 'start', type: 'start', label: 'Start', position: { x: 0, y: 0 }, config: { input_mapping: { topic: 'topic' } } },
      { id: 'agent-1', type: 'agent', label: 'Research', position: { x: 10.5, y: 120 }, config: { agent_id: 'a-1', error_policy: { action: 'error_branch', retries: 0 } } },
      { id: 'router-1', type: 'router', label: 'Route', position: { x: 0, y: 240 }, config: { mode: 'rules', routes: ['good', 'bad'], rules: [{ route: 'good', operator: 'contains', value: 'ok' }] } },
      { id: 'end', type: 'end', label: 'End', position: { x: 0, y: 360 }, config: { output: 'summary' } },
      { id: 'future-1', type: 'a2a_agent', label: 'Remote', position: { x: 300, y: 120 }, config: { peer: 'card-7', nested: { deep: [1, 2, { x: null }] } } },
    ],
    edges: [
      { id: 'e-start-agent-1', source: 'start', target: 'agent-1' },
      { id: 'e-agent-1-router-1', source: 'agent-1', target: 'router-1' },
      { id: 'e-agent-1-end-error', source: 'agent-1', target: 'end', source_handle: 'error' },
      { id: 'e-router-1-end-good', source: 'router-1', target: 'end', source_handle: 'good', target_handle: 'in' },
    ],
    variables: [{ name: 'topic', type: 'string', reducer: 'replace', default: null, description: 'What.' }],
    inputs: { fields: [{ name: 'topic', type: 'text', label: 'Topic', required: true }] },
    output: 'summary',
    settings: { max_steps: 200, timeout_s: 3600, token_budget: null, cost_budget_usd: 1.5, budget_action: 'stop' },
  };
}

/** start → loop; loop --loop--> body → loop (back-edge); loop --done--> end. */
export function loopGraph(): Graph {
  return {
    schema_version: 1,
    nodes: [
      { id: 'start', type: 'start', label: 'Start', position: { x: 0, y: 0 }, config: {} },
      { id: 'loop-1', type: 'loop', label: 'Loop', position: { x: 0, y: 100 }, config: { max_iterations: 3 } },
      { id: 'body', type: 'agent', label: 'Body', position: { x: 0, y: 200 }, config: { agent_id: 'a-1' } },
      { id: 'end', type: 'end', label: 'End', position: { x: 0, y: 300 }, config: {} },
    ],
    edges: [
      { id: 'e1', source: 'start', target: 'loop-1' },
      { id: 'e2', source: 'loop-1', target: 'body', source_handle: 'loop' },
      { id: 'e3', source: 'body', target: 'loop-1' },
      { id: 'e4', source: 'loop-1', target: 'end', source_handle: 'done' },
    ],
  };
}
