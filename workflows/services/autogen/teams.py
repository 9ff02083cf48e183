"""An AutoGen team as start → group chat or hand-off swarm → end.

RoundRobinGroupChat and SelectorGroupChat become group chats, Swarm a hand-off swarm with a
termination (AutoGen's own Swarm rules), MagenticOneGroupChat a selector chat whose selector
plays the orchestrator. Each runs with AutoGen's counting (the task is the first message) and
AutoGen's speaker rules; what still differs is one line of the report each.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from a2a_site.accounts.models import User, Workspace
from agents.models import Agent
from workflows.engine import HUMAN_MARKER
from workflows.graph.examples import edge, node, text_variable
from workflows.models import Workflow
from workflows.services.autogen.components import (
    ComponentImporter,
    Notes,
    Participant,
    obj,
    short,
)
from workflows.services.autogen.terminations import (
    bounded,
    has_human,
    termination,
    with_max_turns,
)
from workflows.services.transfer import (
    ImportResult,
    agents_create,
    graph_rewrite_agents,
    publish_or_explain,
    unique_name,
)
from workflows.services.workflows import workflow_create, workflow_save_draft

TEAMS = ("RoundRobinGroupChat", "SelectorGroupChat", "Swarm", "MagenticOneGroupChat")
# AutoGen's SelectorGroupChat prompt, used when a file gives none.
AUTOGEN_SELECTOR_PROMPT = """You are in a role play game. The following roles are available:
{roles}.
Read the following conversation. Then select the next role from {participants} to play. Only return the role.

{history}

Read the above conversation. Then select the next role from {participants} to play. Only return the role.
"""  # noqa: E501
ORCHESTRATOR_PROMPT = """You lead a team towards finishing the task in the conversation below.
The team members are:
{roles}

The conversation so far:

{history}

Decide who should act next to make progress, or who should give the final answer once the
task is done. Answer with one name from {participants} and nothing else."""
SELECTOR_SYSTEM_MESSAGE = "You choose who speaks next in a team chat. Answer with the name only."
AUTOGEN_MAGENTIC_MAX_TURNS = 20
_TEAM_KEYS_MAPPED = {
    "participants",
    "termination_condition",
    "max_turns",
    "model_client",
    "selector_prompt",
    "allow_repeated_speaker",
    "max_selector_attempts",
    "name",
    "description",
    # How AutoGen streams events to its own UI; nothing a run here depends on.
    "emit_team_events",
    "model_client_streaming",
}


def is_autogen_team(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("component_type") == "team"
        and isinstance(document.get("config"), dict)
    )


def _handoff_targets(component: Any) -> list[str]:
    """Where a HandoffTermination in the file waits for a hand-off to."""
    component = obj(component)
    if short(component.get("provider")) == "HandoffTermination":
        return [str(obj(component.get("config")).get("target") or "user")]
    found: list[str] = []
    for part in obj(component.get("config")).get("conditions") or []:
        found += _handoff_targets(part)
    return found


def _numbers(condition: Any, key: str) -> list[int]:
    if not isinstance(condition, dict):
        return []
    found = [condition[key]] if isinstance(condition.get(key), int) else []
    for part in condition.get("any_of") or condition.get("all_of") or []:
        found += _numbers(part, key)
    return found


class TeamImporter:
    def __init__(self, *, workspace: Workspace, user: User | None, document: Any) -> None:
        self.workspace = workspace
        self.user = user
        self.document = document
        self.notes = Notes()
        self.components = ComponentImporter(workspace=workspace, user=user, notes=self.notes)

    @property
    def report(self) -> list[str]:
        return self.notes.report

    def run(self) -> ImportResult:
        with transaction.atomic():
            graph, created = self.graph()
            document = self.document
            name = unique_name(
                str(document.get("label") or "AutoGen team"),
                lambda candidate: Workflow.objects.filter(
                    workspace=self.workspace, name=candidate
                ).exists(),
                limit=120,
            )
            workflow = workflow_create(
                workspace=self.workspace,
                user=self.user,
                name=name,
                description=str(document.get("description") or "")[:500],
            )
            workflow_save_draft(workflow=workflow, graph=graph)
            publish_or_explain(
                workflow=workflow,
                user=self.user,
                note="Imported from AutoGen Studio",
                warnings=self.notes.warnings,
            )
        return ImportResult(
            workflow=workflow,
            agents_created=created,
            warnings=self.notes.warnings,
            report=self.notes.report,
        )

    def graph(self) -> tuple[dict[str, Any], list[Agent]]:
        """The team as a graph whose agents now exist in the workspace."""
        document = self.document
        if not is_autogen_team(document):
            raise ValidationError(
                "This is not an AutoGen team: expected a component with "
                '"component_type": "team" and a "config" object.'
            )
        kind = short(document.get("provider"))
        if kind not in TEAMS:
            raise ValidationError(
                f"The team type “{document.get('provider')}” is not supported; A2A Studio imports "
                "RoundRobinGroupChat, SelectorGroupChat, Swarm and MagenticOneGroupChat."
            )
        config = document["config"]
        participants = config.get("participants")
        if not isinstance(participants, list) or not participants:
            raise ValidationError("The team has no participants.")
        names = {
            str(p["config"].get("name"))
            for p in participants
            if isinstance(p, dict) and isinstance(p.get("config"), dict)
        }
        members: list[Participant] = []
        for index, component in enumerate(participants, start=1):
            member = self.components.participant(component, index, names)
            if member is not None:
                members.append(member)
        if kind == "Swarm":
            for member in [m for m in members if m.person]:
                self.report.append(
                    f"Participant “{member.name}” (UserProxyAgent) was skipped: a hand-off swarm "
                    "here has agents only."
                )
            members = [member for member in members if not member.person]
        if not [member for member in members if not member.person]:
            raise ValidationError(
                "A team needs at least one AssistantAgent participant that can be imported; "
                + " ".join(self.report)
            )
        people = set(_handoff_targets(config.get("termination_condition")))
        for member in members:
            for target in member.outside:
                if target not in people:
                    self.report.append(
                        f"Agent “{member.name}”: the hand-off to “{target}” names neither "
                        "another participant nor a HandoffTermination target, and was left out."
                    )
        extra: list[Participant] = []
        if kind == "Swarm":
            team_node = self.swarm_node(members)
        else:
            team_node, selector = self.chat_node(kind, members)
            extra = [selector] if selector else []
        self.unmapped_keys(kind, config)
        graph = {
            "schema_version": 1,
            "nodes": [
                node("start", "start", 0, 0, input_mapping={"task": "task"}),
                team_node,
                node("end", "end", 600, 0, output="transcript"),
            ],
            "edges": [edge("start", "team"), edge("team", "end")],
            "variables": [
                text_variable("task", "The task for the team."),
                text_variable("transcript"),
            ],
            "inputs": {"fields": [{"name": "task", "type": "text", "label": "Task"}]},
            "output": "transcript",
        }
        mapping, created = agents_create(
            workspace=self.workspace,
            user=self.user,
            specs=[
                (m.ref, m.name, m.description, {**m.config, "handoff_targets": m.handoffs})
                for m in [*members, *extra]
                if not m.person
            ],
            warnings=self.notes.warnings,
            note="Imported from AutoGen Studio",
        )
        self.agent_names_settled(members, mapping, team_node)
        return graph_rewrite_agents(graph, mapping, warnings=self.notes.warnings), created

    def agent_names_settled(
        self, members: list[Participant], mapping: dict[str, str], team_node: dict[str, Any]
    ) -> None:
        """Agents renamed to stay unique in the workspace; the selector must see those names."""
        final = dict(Agent.objects.filter(pk__in=mapping.values()).values_list("pk", "name"))
        for member in members:
            if member.person:
                continue
            name = final.get(uuid.UUID(mapping[member.ref]), member.name)
            if name != member.name:
                self.report.append(
                    f"Agent “{member.name}” is named “{name}” here (the workspace already has "
                    f"a “{member.name}”): the selector and the other agents see that name."
                )
                member.name = name
        prompt = team_node["config"].get("selector_prompt")
        if prompt:
            # {roles} never changes during a run; the descriptions are only in the file.
            roles = "\n".join(
                re.sub(r"\s+", " ", f"{member.name}: {member.description}").strip()
                for member in members
            )
            team_node["config"]["selector_prompt"] = prompt.replace("{roles}", roles)

    def unmapped_keys(self, kind: str, config: dict[str, Any]) -> None:
        for key in sorted(set(config) - _TEAM_KEYS_MAPPED):
            if config[key] in (None, False, [], {}, ""):
                continue
            if kind == "MagenticOneGroupChat" and key in ("max_stalls", "final_answer_prompt"):
                continue  # named in the orchestrator's report line
            if key == "model_context" and short(obj(config[key]).get("provider")) == (
                "UnboundedChatCompletionContext"
            ):
                continue
            self.report.append(f"The team's {key} is not supported and was left out.")

    # --- Group chats ----------------------------------------------------------------------------

    def chat_node(
        self, kind: str, members: list[Participant]
    ) -> tuple[dict[str, Any], Participant | None]:
        config = self.document["config"]
        condition = termination(config.get("termination_condition"), self.notes)
        max_turns = config.get("max_turns")
        if kind == "MagenticOneGroupChat" and max_turns is None:
            max_turns = AUTOGEN_MAGENTIC_MAX_TURNS
        condition = bounded(with_max_turns(condition, max_turns, self.notes), self.notes)
        if has_human(condition):
            self.ask_for_people(members)
        for member in members:
            if member.handoffs:
                self.report.append(
                    f"Agent “{member.name}”: hand-offs choose the next speaker only in a swarm; "
                    "in this chat they were left out (in AutoGen they end its turn with a "
                    "hand-off message)."
                )
                member.handoffs = []
        options: dict[str, Any] = {}
        selector: Participant | None = None
        if kind in ("SelectorGroupChat", "MagenticOneGroupChat"):
            selector, options = self.selector(kind, members)
        team_node = node(
            "team",
            "group_chat",
            300,
            0,
            members=[member.ref for member in members],
            speaker_selection="llm_selector" if selector else "round_robin",
            termination=condition,
            task_counts_as_message=True,
            output_variable="transcript",
            **options,
        )
        return team_node, selector

    def selector(self, kind: str, members: list[Participant]) -> tuple[Participant, dict[str, Any]]:
        config = self.document["config"]
        who = "The orchestrator" if kind == "MagenticOneGroupChat" else "The selector"
        model, params = self.components.model(config.get("model_client"), who)
        if kind == "MagenticOneGroupChat":
            prompt = ORCHESTRATOR_PROMPT
            allow_repeats = True
            attempts = 3
            self.report.append(
                "MagenticOneGroupChat: its orchestrator (task and progress ledgers, re-planning "
                "after max_stalls, a final answer written with final_answer_prompt) is "
                "approximated by a selector agent that picks who acts next each turn."
            )
        else:
            prompt = str(config.get("selector_prompt") or "").strip() or AUTOGEN_SELECTOR_PROMPT
            allow_repeats = config.get("allow_repeated_speaker") is True
            attempts = config.get("max_selector_attempts")
            if not isinstance(attempts, int) or not 1 <= attempts <= 10:
                attempts = 3
        self.report.append(
            f"{who}'s prompt is sent as a user message after a one-line system message (AutoGen "
            "sends it alone, as the system message for OpenAI models)."
        )
        selector = Participant(
            "__selector__",
            "Orchestrator" if kind == "MagenticOneGroupChat" else "Selector",
            "Chooses the next speaker of the imported team.",
            {"system_message": SELECTOR_SYSTEM_MESSAGE, "model": model, **params},
            [],
        )
        options = {
            "selector_agent_id": selector.ref,
            # {roles} is filled in once the agents' names in the workspace are settled.
            "selector_prompt": prompt,
            "allow_repeated_speaker": allow_repeats,
            "max_selector_attempts": attempts,
        }
        return selector, options

    def ask_for_people(self, members: list[Participant]) -> None:
        """A hand-off to a person (HandoffTermination) becomes the chat's wait for a person."""
        targets = set(_handoff_targets(self.document["config"].get("termination_condition")))
        for member in members:
            if any(target in targets for target in member.outside):
                member.config["system_message"] = (
                    f"{member.config['system_message']}\n\nWhen you need the user, write "
                    f"{HUMAN_MARKER}."
                ).strip()
        self.report.append(
            f"HandoffTermination ({', '.join(sorted(targets))}): AutoGen ends the run when an "
            f"agent hands off to {' or '.join(sorted(targets))}, and the user's next message "
            f"continues it; here the agent writes {HUMAN_MARKER}, the run waits for the user's "
            "answer, and the chat goes on in the same run."
        )

    # --- Swarm ----------------------------------------------------------------------------------

    def swarm_node(self, members: list[Participant]) -> dict[str, Any]:
        config = self.document["config"]
        condition = termination(config.get("termination_condition"), self.notes)
        if has_human(condition):
            targets = sorted(set(_handoff_targets(config.get("termination_condition"))))
            self.report.append(
                f"HandoffTermination ({', '.join(targets)}): AutoGen ends the run when an agent "
                f"hands off to {' or '.join(targets)}, and the user's next message starts a new "
                "run; here the run waits for the user's answer and the same agent goes on, with "
                "the message counts started over as in a new AutoGen run."
            )
            for member in members:
                if not set(member.outside) & set(targets):
                    self.report.append(
                        f"Agent “{member.name}” may hand the conversation to the user here; in "
                        "AutoGen it has no hand-off to the user."
                    )
        condition = bounded(
            with_max_turns(condition, config.get("max_turns"), self.notes), self.notes
        )
        refs = [member.ref for member in members]
        for member in members:
            others = sorted(ref for ref in refs if ref != member.ref)
            if len(members) > 1 and sorted(member.handoffs) != others:
                allowed = ", ".join(member.handoffs) or "nobody"
                self.report.append(
                    f"Agent “{member.name}” may hand off to every other agent of the swarm here; "
                    f"in AutoGen only to {allowed}."
                )
        counts = _numbers(condition, "max_messages")
        if counts and min(counts) <= 100:
            max_handoffs = max(min(counts), 1)
        else:
            max_handoffs = 100
            self.report.append(
                "The swarm stops with an error after 100 hand-offs here; AutoGen has no such limit."
            )
        return node(
            "team",
            "handoff",
            300,
            0,
            agents=refs,
            start_agent=refs[0],
            termination=condition,
            task_counts_as_message=True,
            max_handoffs=max_handoffs,
            output_variable="transcript",
        )


def autogen_import(*, workspace: Workspace, user: User | None, document: Any) -> ImportResult:
    """Creates the AutoGen team's agents and a workflow for it; see `ImportResult.report`."""
    return TeamImporter(workspace=workspace, user=user, document=document).run()


def autogen_graph_import(
    *, workspace: Workspace, user: User | None, document: Any
) -> tuple[dict[str, Any], list[Agent], list[str], list[str]]:
    """The AutoGen team's agents created in `workspace`, and its graph: (graph, agents created,
    warnings, what could not be mapped). The builder loads the graph into a draft."""
    importer = TeamImporter(workspace=workspace, user=user, document=document)
    with transaction.atomic():
        graph, created = importer.graph()
    return graph, created, importer.notes.warnings, importer.notes.report
