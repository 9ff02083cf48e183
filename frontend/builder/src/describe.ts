import type { Catalog, Config } from './types';

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function agentName(catalog: Catalog, id: unknown): string | null {
  if (typeof id !== 'string' || !id) return null;
  return catalog.agents.find((agent) => agent.id === id)?.name ?? null;
}

function names(catalog: Catalog, ids: unknown): string {
  return list(ids)
    .map((id) => agentName(catalog, id) ?? String(id))
    .join(', ');
}

export function typeLabel(type: string, catalog: Catalog): string {
  return catalog.node_types.find((info) => info.type === type)?.label ?? type.replace(/_/g, ' ');
}

function same(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** An agent step named after its agent says the name once; the second line then tells the
 * agent apart by its model (or role), unless that only repeats the name too. */
function agentSummary(label: string, config: Config, catalog: Catalog): string {
  const agent = typeof config.agent_id === 'string' ? catalog.agents.find((item) => item.id === config.agent_id) : undefined;
  if (!agent) return 'Choose an agent';
  if (!label || !same(label, agent.name)) return agent.name;
  for (const detail of [agent.model, agent.role]) {
    if (typeof detail === 'string' && detail.trim() && !same(detail, agent.name)) return detail;
  }
  return '';
}

/** A remote A2A agent step: its host, and the skill it asks for. */
function remoteSummary(config: Config): string {
  const url = typeof config.url === 'string' ? config.url.trim() : '';
  if (!url) return 'Enter the agent URL';
  let host = url;
  try {
    host = new URL(url).host || url;
  } catch {
    return 'Check the agent URL';
  }
  const skill = typeof config.skill_id === 'string' && config.skill_id ? ` · ${config.skill_id}` : '';
  return `A2A · ${host}${skill}`;
}

/** The one line under a node's label that saves opening its form. */
export function nodeSummary(type: string, config: Config, catalog: Catalog, label = ''): string {
  switch (type) {
    case 'agent':
      return agentSummary(label, config, catalog);
    case 'router': {
      const routes = list(config.routes).join(' · ');
      return config.mode === 'llm' ? `Agent picks: ${routes}` : routes || 'No routes yet';
    }
    case 'loop':
      return typeof config.max_iterations === 'number' ? `Up to ${config.max_iterations} iterations` : 'Set max iterations';
    case 'group_chat': {
      const members = list(config.members);
      return `${members.length} member${members.length === 1 ? '' : 's'}${members.length ? `: ${names(catalog, members)}` : ''}`;
    }
    case 'handoff': {
      const agents = list(config.agents);
      const first = agentName(catalog, config.start_agent);
      return `${agents.length} agents${first ? ` · starts with ${first}` : ''}`;
    }
    case 'vote':
      return `${list(config.voters).length} voters · ${String(config.quorum ?? 'majority').replace(/_/g, ' ')}`;
    case 'consensus': {
      const members = list(config.members).length;
      const proposer = agentName(catalog, config.proposer_agent_id);
      const quorum = config.quorum === 'k_of_n' ? `${String(config.k ?? '?')} of ${members}` : String(config.quorum ?? 'majority');
      if (!proposer) return 'Choose a proposer';
      return `${proposer} proposes · ${members} member${members === 1 ? '' : 's'} · ${quorum} · ${String(config.max_terms ?? 3)} terms`;
    }
    case 'human':
      return config.kind === 'approval' ? 'Approval' : 'Input';
    case 'join':
      return `Merge: ${String(config.strategy ?? 'list').replace(/_/g, ' ')}`;
    case 'tool':
      return typeof config.tool === 'string' && config.tool ? config.tool : 'Choose a tool';
    case 'subworkflow':
      return typeof config.workflow_id === 'string' && config.workflow_id
        ? `Workflow ${config.workflow_id}${config.version && config.version !== 'latest_published' ? ` v${config.version}` : ''}`
        : 'Choose a workflow';
    case 'remote_agent':
      return remoteSummary(config);
    case 'end':
      return typeof config.output === 'string' && config.output ? `Output: ${config.output}` : '';
    default:
      return '';
  }
}
