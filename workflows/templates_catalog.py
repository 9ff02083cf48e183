"""Ready-made workflows, each with its agents, for the multi-agent patterns people already know.

A template describes its agents by slot ("researcher", "analyst"...) and builds its graph from a
mapping of slot → agent id; `template_graph(key)` with no mapping gives the placeholder graph.
`template_instantiate` creates the agents and the workflow in a workspace and publishes version 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction

from a2a_site.accounts.models import User, Workspace
from agents.config import agent_config_load
from agents.models import Agent, Provider
from agents.services.agents import agent_create
from agents.services.providers import ProviderInput, provider_create
from agents.tools.registry import builtin_registry
from workflows.graph.examples import (
    edge,
    graph,
    group_chat_debate,
    node,
    parallel_research,
    research_pipeline,
    text_variable,
)
from workflows.models import Workflow
from workflows.services.workflows import workflow_create, workflow_publish

# The offline demo providers `seed_demo` creates, with the model each serves. Two of them, so the
# parallel-research template really runs its researchers on different providers.
DEMO_PROVIDER = "Offline demo model"
DEMO_PROVIDER_FAST = "Offline demo model (fast)"
DEMO_MODELS: dict[str, str] = {DEMO_PROVIDER: "demo", DEMO_PROVIDER_FAST: "demo-fast"}


@dataclass(frozen=True)
class AgentSpec:
    slot: str
    name: str
    role: str
    goal: str
    backstory: str = ""
    tools: tuple[str, ...] = ()
    # Slots of the agents this one may hand the conversation to.
    handoff_to: tuple[str, ...] = ()
    provider: Literal["primary", "secondary"] = "primary"


@dataclass(frozen=True)
class WorkflowTemplate:
    key: str
    name: str
    description: str
    agents: tuple[AgentSpec, ...]
    build: Callable[[Mapping[str, str]], dict[str, Any]]

    def graph(self, agent_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The graph with real agent ids, or with each slot name as a placeholder id."""
        ids = agent_ids if agent_ids is not None else {spec.slot: spec.slot for spec in self.agents}
        return self.build(ids)


def _message_graph(
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    output: str,
    *,
    input_name: str,
    input_label: str,
) -> dict[str, Any]:
    found = graph(nodes, edges, variables, output)
    found["inputs"] = {"fields": [{"name": input_name, "type": "text", "label": input_label}]}
    return found


def _selector_chat(ids: Mapping[str, str]) -> dict[str, Any]:
    return _message_graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"task": "task"}),
            node(
                "team",
                "group_chat",
                300,
                0,
                members=[ids["planner"], ids["engineer"], ids["reviewer"]],
                speaker_selection="llm_selector",
                selector_agent_id=ids["selector"],
                # The reviewer says TERMINATE when satisfied; max_messages bounds a chat that
                # never gets there.
                termination={"any_of": [{"text_mention": "TERMINATE"}, {"max_messages": 20}]},
                output_variable="transcript",
            ),
            node("end", "end", 600, 0, output="transcript"),
        ],
        edges=[edge("start", "team"), edge("team", "end")],
        variables=[text_variable("task", "What the team should do."), text_variable("transcript")],
        output="transcript",
        input_name="task",
        input_label="Task",
    )


def _support_handoff(ids: Mapping[str, str]) -> dict[str, Any]:
    agents = [ids["triage"], ids["billing"], ids["technical"]]
    return _message_graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"message": "message"}),
            node(
                "support",
                "handoff",
                300,
                0,
                agents=agents,
                start_agent=ids["triage"],
                max_handoffs=5,
                output_variable="reply",
            ),
            node("end", "end", 600, 0, output="reply"),
        ],
        edges=[edge("start", "support"), edge("support", "end")],
        variables=[text_variable("message", "The customer's message."), text_variable("reply")],
        output="reply",
        input_name="message",
        input_label="Customer message",
    )


def _panel_vote(ids: Mapping[str, str]) -> dict[str, Any]:
    return _message_graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"proposal": "proposal"}),
            node(
                "vote",
                "vote",
                300,
                0,
                voters=[ids["economist"], ids["engineer"], ids["ethicist"]],
                question="Should we adopt this proposal?\n\n{{ proposal }}",
                options=["adopt", "reject"],
                quorum="majority",
                # Three voters and two options cannot tie; the policy only matters if edited.
                tie_policy="no_decision",
                output_variable="decision",
            ),
            node("end", "end", 600, 0, output="decision"),
        ],
        edges=[edge("start", "vote"), edge("vote", "end")],
        variables=[
            text_variable("proposal", "What the panel decides on."),
            {
                "name": "decision",
                "type": "object",
                "description": "The winning option and every vote.",
            },
        ],
        output="decision",
        input_name="proposal",
        input_label="Proposal",
    )


def _council_decision(ids: Mapping[str, str]) -> dict[str, Any]:
    return _message_graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"question": "question"}),
            node(
                "agree",
                "consensus",
                300,
                0,
                proposer_agent_id=ids["planner"],
                members=[ids["treasurer"], ids["operator"], ids["advocate"]],
                task="Propose a decision on this question:\n\n{{ question }}",
                quorum="majority",
                max_terms=3,
                output_variable="decision",
            ),
            node("end", "end", 600, 0, output="decision"),
        ],
        edges=[edge("start", "agree"), edge("agree", "end")],
        variables=[
            text_variable("question", "What the council decides."),
            text_variable("decision", "The proposal the council committed."),
        ],
        output="decision",
        input_name="question",
        input_label="Question",
    )


def _approved_draft(ids: Mapping[str, str]) -> dict[str, Any]:
    writer = ids["writer"]
    return graph(
        nodes=[
            node("start", "start", 0, 0, input_mapping={"topic": "topic"}),
            node(
                "draft",
                "agent",
                250,
                0,
                agent_id=writer,
                input_template="Write a short article about: {{ topic }}",
                output_variable="draft",
            ),
            node(
                "review",
                "human",
                500,
                0,
                kind="approval",
                prompt="Approve this draft for publication?\n\n{{ draft }}",
                output_variable="review",
            ),
            node("published", "end", 750, -100, output="draft"),
            # Rejection gets one revision rather than a loop back to review: every cycle needs
            # a loop node, and a single revise step keeps the template easy to read.
            node(
                "revise",
                "agent",
                750,
                100,
                agent_id=writer,
                input_template="The editor rejected this draft. Revise it:\n\n{{ draft }}",
                output_variable="draft",
            ),
            node("revised", "end", 1000, 100, output="draft"),
        ],
        edges=[
            edge("start", "draft"),
            edge("draft", "review"),
            edge("review", "published", "approved"),
            edge("review", "revise", "rejected"),
            edge("revise", "revised"),
        ],
        variables=[
            text_variable("topic", "What to write about."),
            text_variable("draft", "The article, as approved or revised."),
            {"name": "review", "type": "object", "description": "The editor's decision."},
        ],
        output="draft",
    )


TEMPLATES: dict[str, WorkflowTemplate] = {
    template.key: template
    for template in (
        WorkflowTemplate(
            key="research_pipeline",
            name="Research pipeline",
            description="A researcher gathers facts, an analyst interprets them, a writer reports.",
            agents=(
                AgentSpec(
                    "researcher",
                    "Researcher",
                    "a thorough researcher",
                    "Find accurate, relevant facts about the topic and list their sources.",
                    tools=("http_get", "current_time"),
                ),
                AgentSpec(
                    "analyst",
                    "Analyst",
                    "a sharp analyst",
                    "Turn findings into insights: patterns, gaps and what they mean.",
                    tools=("calculator",),
                ),
                AgentSpec(
                    "writer",
                    "Writer",
                    "a clear technical writer",
                    "Write a well-structured report that a busy reader understands quickly.",
                ),
            ),
            build=lambda ids: research_pipeline(ids["researcher"], ids["analyst"], ids["writer"]),
        ),
        WorkflowTemplate(
            key="parallel_research",
            name="Parallel research",
            description="Two researchers on different providers work at once; their notes are "
            "joined and an analyst draws conclusions.",
            agents=(
                AgentSpec(
                    "source_researcher",
                    "Source researcher",
                    "a researcher who collects primary sources",
                    "Collect primary sources and facts about the topic.",
                    tools=("http_get",),
                ),
                AgentSpec(
                    "critical_researcher",
                    "Critical researcher",
                    "a researcher who looks for criticism and counter-evidence",
                    "Find the strongest criticism of and evidence against common claims.",
                    tools=("http_get",),
                    provider="secondary",
                ),
                AgentSpec(
                    "analyst",
                    "Analyst",
                    "a sharp analyst",
                    "Turn findings into insights: patterns, gaps and what they mean.",
                    tools=("calculator",),
                ),
            ),
            build=lambda ids: parallel_research(
                ids["source_researcher"], ids["critical_researcher"], ids["analyst"]
            ),
        ),
        WorkflowTemplate(
            key="round_robin_debate",
            name="Round-robin debate",
            description="Three agents take turns until the moderator says TERMINATE "
            "(at most 12 messages).",
            agents=(
                AgentSpec(
                    "optimist",
                    "Optimist",
                    "an optimist who argues for the idea",
                    "Make the strongest honest case for the topic.",
                ),
                AgentSpec(
                    "skeptic",
                    "Skeptic",
                    "a skeptic who argues against the idea",
                    "Find the weak points in the arguments made so far.",
                ),
                AgentSpec(
                    "moderator",
                    "Moderator",
                    "a fair debate moderator",
                    "Summarise the debate once both sides are heard, then say TERMINATE.",
                ),
            ),
            build=lambda ids: group_chat_debate(
                [ids["optimist"], ids["skeptic"], ids["moderator"]], max_messages=12
            ),
        ),
        WorkflowTemplate(
            key="selector_team",
            name="Selector team",
            description="A selector model picks who speaks next among a planner, an engineer "
            "and a reviewer; ends on TERMINATE or after 20 messages.",
            agents=(
                AgentSpec(
                    "planner",
                    "Planner",
                    "a planner who breaks tasks into steps",
                    "Split the task into small steps and say who should do each.",
                ),
                AgentSpec(
                    "engineer",
                    "Engineer",
                    "a pragmatic engineer",
                    "Carry out the planned steps and show the result.",
                    tools=("calculator", "http_get"),
                ),
                AgentSpec(
                    "reviewer",
                    "Reviewer",
                    "a demanding reviewer",
                    "Check the result; say TERMINATE when it fully answers the task.",
                ),
                AgentSpec(
                    "selector",
                    "Selector",
                    "the chair who chooses the next speaker",
                    "Read the conversation and name the member best placed to speak next.",
                ),
            ),
            build=_selector_chat,
        ),
        WorkflowTemplate(
            key="support_handoff",
            name="Customer support hand-off",
            description="A triage agent hands the customer to billing or technical support.",
            agents=(
                AgentSpec(
                    "billing",
                    "Billing support",
                    "a billing support specialist",
                    "Resolve questions about invoices, payments and refunds.",
                ),
                AgentSpec(
                    "technical",
                    "Technical support",
                    "a technical support engineer",
                    "Diagnose and resolve technical problems step by step.",
                    tools=("http_get",),
                ),
                AgentSpec(
                    "triage",
                    "Triage",
                    "a friendly support triage agent",
                    "Understand the customer's problem and hand off to billing or technical "
                    "support.",
                    handoff_to=("billing", "technical"),
                ),
            ),
            build=_support_handoff,
        ),
        WorkflowTemplate(
            key="panel_vote",
            name="Panel vote",
            description="Three experts vote to adopt or reject a proposal; the majority decides.",
            agents=(
                AgentSpec(
                    "economist",
                    "Economist",
                    "an economist",
                    "Judge proposals by their costs, benefits and incentives.",
                    tools=("calculator",),
                ),
                AgentSpec(
                    "engineer",
                    "Engineer",
                    "a pragmatic engineer",
                    "Carry out the planned steps and show the result.",
                    tools=("calculator", "http_get"),
                ),
                AgentSpec(
                    "ethicist",
                    "Ethicist",
                    "an ethicist",
                    "Judge proposals by fairness, harm and who bears the risks.",
                ),
            ),
            build=_panel_vote,
        ),
        WorkflowTemplate(
            key="council_decision",
            name="Council decision",
            description="A planner proposes; three members accept or reject with reasons; a "
            "rejected plan is revised with the objections until the majority agrees.",
            agents=(
                AgentSpec(
                    "planner",
                    "Planner",
                    "a planner who writes concrete, complete proposals",
                    "Propose a decision the members can accept, and revise it to meet their "
                    "objections.",
                ),
                AgentSpec(
                    "treasurer",
                    "Treasurer",
                    "a treasurer",
                    "Accept proposals whose costs are named and affordable; reject the others.",
                ),
                AgentSpec(
                    "operator",
                    "Operator",
                    "an operations lead",
                    "Accept proposals that can be carried out with the people and time at hand.",
                ),
                AgentSpec(
                    "advocate",
                    "Advocate",
                    "a customer advocate",
                    "Accept proposals that are fair to the people they affect.",
                ),
            ),
            build=_council_decision,
        ),
        WorkflowTemplate(
            key="approved_draft",
            name="Draft with human approval",
            description="A writer drafts an article; a person approves it, or it is revised once.",
            agents=(
                AgentSpec(
                    "writer",
                    "Writer",
                    "a clear technical writer",
                    "Write a well-structured report that a busy reader understands quickly.",
                ),
            ),
            build=_approved_draft,
        ),
    )
}


def template_get(key: str) -> WorkflowTemplate:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise ValidationError(
            f"Unknown template “{key}”; choose one of: {', '.join(TEMPLATES)}."
        ) from None


def template_provider(workspace: Workspace) -> tuple[Provider | None, Provider | None]:
    """The providers a template's agents go on: the offline demo model when the workspace has
    it (a second demo provider for the agents meant for another one), else its first provider
    that is not a command-line agent."""
    demo = list(Provider.objects.filter(workspace=workspace, kind="demo").order_by("created_at"))
    if demo:
        return demo[0], (demo[1] if len(demo) > 1 else None)
    return Provider.objects.filter(workspace=workspace).exclude(kind="cli").first(), None


def provider_model(provider: Provider) -> str:
    """The model an agent on `provider` uses by default."""
    if provider.name in DEMO_MODELS:
        return DEMO_MODELS[provider.name]
    if provider.models_available:
        return str(provider.models_available[0])
    return "demo"


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return agent_config_load(config).model_dump(mode="json", exclude_none=True)


def _same_agent(agent: Agent, description: str, config: dict[str, Any]) -> bool:
    latest = agent.versions.order_by("-number").first()
    return (
        latest is not None
        and agent.description == description
        and _comparable(latest.config) == _comparable(config)
    )


def _agent_for(
    *, workspace: Workspace, user: User | None, spec: AgentSpec, config: dict[str, Any]
) -> Agent:
    description = spec.goal[:300]
    counter = 1
    while True:
        name = spec.name if counter == 1 else f"{spec.name} ({counter})"
        existing = Agent.objects.filter(workspace=workspace, name=name).first()
        if existing is None:
            return agent_create(
                workspace=workspace,
                user=user,
                name=name,
                description=description,
                config=config,
                known_tools=builtin_registry().names(),
                note="Created from a template",
            )
        # Reusing an agent someone edited would change what the template does; suffix instead.
        if _same_agent(existing, description, config):
            return existing
        counter += 1


def template_graph(
    *,
    key: str,
    workspace: Workspace,
    user: User | None,
    provider: Provider,
    second_provider: Provider | None = None,
) -> dict[str, Any]:
    """The template's graph, on agents of `workspace` (reused when unchanged, else created)."""
    template = template_get(key)
    for chosen in (provider, second_provider):
        if chosen is not None and chosen.workspace_id != workspace.pk:
            raise ValidationError(f"The provider “{chosen.name}” belongs to another workspace.")
    with transaction.atomic():
        ids: dict[str, str] = {}
        # Hand-off targets must exist before the agent naming them, so targets come first.
        for spec in sorted(template.agents, key=lambda spec: bool(spec.handoff_to)):
            on = second_provider if spec.provider == "secondary" and second_provider else provider
            config: dict[str, Any] = {
                "role": spec.role,
                "goal": spec.goal,
                "backstory": spec.backstory,
                "model": {"provider_id": str(on.pk), "model": provider_model(on)},
                "tools": list(spec.tools),
                "handoff_targets": [ids[slot] for slot in spec.handoff_to],
            }
            agent = _agent_for(workspace=workspace, user=user, spec=spec, config=config)
            ids[spec.slot] = str(agent.pk)
    return template.graph(ids)


def template_instantiate(
    *,
    key: str,
    workspace: Workspace,
    user: User | None,
    provider: Provider,
    second_provider: Provider | None = None,
    name: str | None = None,
) -> Workflow:
    """Creates the template's agents and workflow in `workspace` and publishes version 1."""
    template = template_get(key)
    with transaction.atomic():
        graph = template_graph(
            key=key,
            workspace=workspace,
            user=user,
            provider=provider,
            second_provider=second_provider,
        )
        workflow = workflow_create(
            workspace=workspace,
            user=user,
            name=name or template.name,
            description=template.description,
            graph=graph,
        )
        workflow_publish(workflow=workflow, user=user, note=f"From the “{template.name}” template")
    return workflow


def demo_providers_ensure(*, workspace: Workspace, user: User | None) -> list[Provider]:
    """The two offline demo providers of `workspace`, created when missing."""
    found = []
    for provider_name in DEMO_MODELS:
        provider = Provider.objects.filter(workspace=workspace, name=provider_name).first()
        if provider is None:
            provider = provider_create(
                workspace=workspace,
                user=user,
                data=ProviderInput(kind="demo", name=provider_name),
            )
        found.append(provider)
    return found


def templates_seed(*, workspace: Workspace, user: User | None) -> list[Workflow]:
    """Every template as a workflow of `workspace`; skips those whose name is taken."""
    provider, fast = demo_providers_ensure(workspace=workspace, user=user)
    created = []
    for template in TEMPLATES.values():
        if Workflow.objects.filter(workspace=workspace, name=template.name).exists():
            continue
        created.append(
            template_instantiate(
                key=template.key,
                workspace=workspace,
                user=user,
                provider=provider,
                second_provider=fast,
            )
        )
    return created
