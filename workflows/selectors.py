"""Reads of workflows and runs, scoped to a workspace and looked up through the access seam."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Count, Max, QuerySet

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Membership, Role, User
from agents.models import Agent, AgentVersion
from workflows.graph import NODE_TYPES
from workflows.models import TERMINAL_STATUSES, Run, RunEvent, RunStatus, Step, Workflow


def get_workflow_for_user(
    user: User, pk: Any, *, role: Role = Role.VIEWER
) -> tuple[Workflow, Membership]:
    return get_for_member(Workflow.objects.all(), user, pk, role=role)


def get_run_for_user(user: User, pk: Any, *, role: Role = Role.VIEWER) -> tuple[Run, Membership]:
    return get_for_member(
        Run.objects.select_related("workflow", "version", "created_by", "forked_from"),
        user,
        pk,
        role=role,
    )


def run_roots_of_descendants(run_ids: list[Any]) -> dict[Any, Any]:
    """Each run among `run_ids` and every sub-run under them, mapped to the run of `run_ids`
    it belongs to: what a page of runs reads their sub-runs' calls by (one query a level)."""
    roots: dict[Any, Any] = {run_id: run_id for run_id in run_ids}
    generation = list(run_ids)
    while generation:  # sub-workflow nesting, depth-limited by the engine
        found = list(Run.objects.filter(parent_id__in=generation).values_list("pk", "parent_id"))
        for child_id, parent_id in found:
            roots[child_id] = roots[parent_id]
        generation = [child_id for child_id, _ in found]
    return roots


def run_subruns_by_step(run_id: Any) -> dict[Any, str]:
    """Every sub-run under `run_id` (at any depth), mapped to the step of `run_id` that started
    its branch: where a review of the run puts its sub-runs' calls."""
    found: dict[Any, str] = {}
    generation = list(Run.objects.filter(parent_id=run_id).values_list("pk", "parent_step_key"))
    found.update(generation)
    while generation:
        step_of = {child_id: found[child_id] for child_id, _ in generation}
        generation = [
            (child_id, step_of[parent_id])
            for child_id, parent_id in Run.objects.filter(parent_id__in=list(step_of)).values_list(
                "pk", "parent_id"
            )
        ]
        found.update(generation)
    return found


def workflows_of(workspace_id: UUID) -> QuerySet[Workflow]:
    return (
        Workflow.objects.filter(workspace_id=workspace_id)
        .annotate(run_count=Count("runs"), last_run_at=Max("runs__created_at"))
        .order_by("name")
    )


def runs_of(workspace_id: UUID, *, workflow_id: Any = None, limit: int = 50) -> list[Run]:
    runs = Run.objects.filter(workspace_id=workspace_id, parent__isnull=True)
    if workflow_id is not None:
        runs = runs.filter(workflow_id=workflow_id)
    return list(
        runs.select_related("workflow", "version", "created_by").order_by("-created_at")[:limit]
    )


def agent_summaries(workspace_id: UUID, *, agent_ids: Any = None) -> list[dict[str, str]]:
    """What the builder shows of each agent: id, name, model and role, from its latest version."""
    agents = Agent.objects.filter(workspace_id=workspace_id).order_by("name")
    if agent_ids is not None:
        agents = agents.filter(pk__in=agent_ids)
    latest = {
        (version.agent_id, version.number): version.config
        for version in AgentVersion.objects.filter(agent__in=agents).only(
            "agent_id", "number", "config"
        )
    }
    found = []
    for agent in agents:
        config = latest.get((agent.pk, agent.latest_version)) or {}
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        found.append(
            {
                "id": str(agent.pk),
                "name": agent.name,
                "model": str((model or {}).get("model") or ""),
                "role": str(config.get("role") or agent.description or ""),
            }
        )
    return found


def builder_catalog(workspace_id: UUID, *, can_edit: bool) -> dict[str, Any]:
    """The builder's palette: every registered node type and the workspace's agents."""
    return {
        "node_types": [
            {
                "type": node_type.type,
                "label": node_type.label,
                "group": node_type.group,
                "description": node_type.description,
                "min_in": node_type.min_in,
                "max_in": node_type.max_in,
                "min_out": node_type.min_out,
                "max_out": node_type.max_out,
                "fan_out": node_type.fan_out,
                "default_config": dict(node_type.default_config),
            }
            for node_type in NODE_TYPES.values()
        ],
        "agents": agent_summaries(workspace_id),
        "can_edit": can_edit,
    }


# Nodes the engine passes through without recording a step (see the engine's _STRUCTURAL).
_PASSED_THROUGH = frozenset({"parallel", "loop"})

STATE_LABELS = {
    "done": "done",
    "running": "running",
    "waiting": "waiting for a person",
    "failed": "failed",
    "pending": "not reached yet",
    "skipped": "not reached",
}


def graph_order(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The graph's nodes as a reader follows them: from the start along the edges (breadth
    first, edges in their order), then anything the walk did not reach, as drawn."""
    nodes = graph.get("nodes", [])
    by_id = {node["id"]: node for node in nodes}
    successors: dict[str, list[str]] = {}
    for edge in graph.get("edges", []):
        successors.setdefault(edge["source"], []).append(edge["target"])
    ordered: list[str] = []
    queue = [node["id"] for node in nodes if node["type"] == "start"]
    while queue:
        node_id = queue.pop(0)
        if node_id in ordered or node_id not in by_id:
            continue
        ordered.append(node_id)
        queue.extend(successors.get(node_id, []))
    ordered += [node["id"] for node in nodes if node["id"] not in ordered]
    return [by_id[node_id] for node_id in ordered]


def run_node_states(
    run: Run, *, capacity_wait: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Each node of the run's graph, in graph order, with its state: done, running, waiting (for
    a person), failed, pending (not reached yet) or skipped (the run ended without it).

    `capacity_wait` (from `run_capacity_wait`) names a step whose call waits in line for a
    model: its node is running, and its label says it waits for capacity."""
    graph = run.version.graph
    queued_node = None
    if capacity_wait:
        # A step's key is its node's id, then a loop's suffix (`@loop:n`) or a sub-step (`/…`).
        queued_node = str(capacity_wait.get("step_key") or "").split("/")[0].split("@")[0]
    nodes = graph_order(graph)
    edges = graph.get("edges", [])
    steps: dict[str, str] = {}
    branches: dict[str, str] = {}
    node_of_key: dict[str, str] = {}
    for node_id, key, step_status, branch in Step.objects.filter(run=run).values_list(
        "node_id", "key", "status", "branch"
    ):
        node_of_key[key] = node_id
        if steps.get(node_id) != Step.Status.RUNNING:
            steps[node_id] = step_status
        if step_status == Step.Status.COMPLETED:
            branches[node_id] = branch or ""
    waiting_request = run.waiting_request or {}
    waiting_node = None
    if run.status == "waiting":
        # The request names its node; a budget pause names only its step.
        waiting_node = waiting_request.get("node_id") or node_of_key.get(
            str(waiting_request.get("step_key") or "")
        )
    finished = run.status in TERMINAL_STATUSES
    # A fan-out or a loop has no step of its own: it was passed when something after it ran.
    types = {node["id"]: node["type"] for node in nodes}
    reached = set(steps)
    changed = True
    while changed:
        changed = False
        for edge in edges:
            source = edge["source"]
            if (
                types.get(source) in _PASSED_THROUGH
                and source not in reached
                and edge["target"] in reached
            ):
                reached.add(source)
                changed = True

    def passed(node_id: str) -> bool:
        if types.get(node_id) == "start":
            return run.started_at is not None
        if types.get(node_id) in _PASSED_THROUGH:
            return node_id in reached
        return steps.get(node_id) == Step.Status.COMPLETED

    def taken(edge: dict[str, Any]) -> bool:
        """Whether the run went along this edge: its source finished and chose this branch."""
        source = edge["source"]
        if not passed(source):
            return False
        if source in branches:
            return (edge.get("source_handle") or "") == branches[source]
        return True

    ends = [node["id"] for node in nodes if node["type"] == "end"]
    taken_ends = {edge["target"] for edge in edges if edge["target"] in ends and taken(edge)}
    if not taken_ends and len(ends) == 1:
        taken_ends = set(ends)  # an older run's steps may not say which branch they chose
    states = []
    for node in nodes:
        node_id = node["id"]
        status = steps.get(node_id)
        if node["type"] == "end":
            done = run.status == "succeeded" and node_id in taken_ends
        else:
            done = passed(node_id)
        if done:
            state = "done"
        elif node_id == waiting_node:
            state = "waiting"
        elif status == Step.Status.FAILED:
            state = "failed"
        elif status == Step.Status.RUNNING:
            state = "running" if not finished else "failed"
        else:
            state = "skipped" if finished else "pending"
        state_label = STATE_LABELS[state]
        if node_id == queued_node and state in ("pending", "running"):
            state, state_label = "running", "waiting for capacity"
        states.append(
            {
                "id": node_id,
                "type": node["type"],
                "label": node.get("label") or node_id,
                "state": state,
                "state_label": state_label,
            }
        )
    return states


def run_steps_shown(run: Run, *, can_fork: bool) -> list[dict[str, Any]]:
    """The run's node steps in the order they started (a team's turns are inside its step),
    each with whether "Run again from here" is offered on it."""
    labels = {node["id"]: node.get("label") or node["id"] for node in run.version.graph["nodes"]}
    finished = (Step.Status.COMPLETED, Step.Status.FAILED)
    shown = []
    steps = (
        Step.objects.filter(run=run)
        .exclude(key__contains="/")
        .only("key", "node_id", "status", "reused", "started_at")
        .order_by("started_at", "pk")
    )
    # A step left running while the run waits on it (a sub-workflow waiting for a person).
    waiting_key = (run.waiting_request or {}).get("step_key") if run.status == "waiting" else None
    for step in steps:
        waits = step.status == Step.Status.RUNNING and step.key == waiting_key
        shown.append(
            {
                "key": step.key,
                "label": labels.get(step.node_id, step.node_id),
                "status": "waiting" if waits else step.status,
                "reused": step.reused,
                "forkable": can_fork and step.status in finished,
            }
        )
    return shown


def run_capacity_wait(run: Run) -> dict[str, Any] | None:
    """The call of a running run that waits in line for a model's capacity, if one does now:
    its last "waiting for capacity" report, unless its step has moved on since."""
    if run.status != RunStatus.RUNNING:
        return None
    last = (
        RunEvent.objects.filter(run=run, kind="log", data__has_key="capacity")
        .order_by("-seq")
        .values("seq", "step_key", "data")
        .first()
    )
    if last is None:
        return None
    moved_on = RunEvent.objects.filter(
        run=run, step_key=last["step_key"], seq__gt=last["seq"]
    ).exists()
    if moved_on:
        return None
    return {**last["data"]["capacity"], "step_key": last["step_key"]}


def run_decisions(run: Run) -> list[dict[str, Any]]:
    """The decision log of each consensus node the run visited, read from its durable steps:
    per term the proposer, the proposal (or the proposer's failure and who was elected), the
    ballots and whether the term committed. A node still deciding shows the terms so far."""
    from workflows.graph.consensus import ConsensusConfig

    configs: dict[str, tuple[str, ConsensusConfig]] = {}
    for node in run.version.graph.get("nodes", []):
        if node.get("type") == "consensus":
            try:
                config = ConsensusConfig.model_validate(node.get("config") or {})
            except ValueError:
                continue
            configs[node["id"]] = (node.get("label") or node["id"], config)
    if not configs:
        return []
    steps = (
        Step.objects.filter(run=run, node_id__in=list(configs), status=Step.Status.COMPLETED)
        .only("key", "node_id", "output", "started_at")
        .order_by("started_at", "pk")
    )
    visits: dict[str, dict[str, Any]] = {}
    for step in steps:
        head, _, sub = step.key.partition("/")
        label, config = configs[step.node_id]
        visit = visits.setdefault(
            head,
            {
                "key": head,
                "label": label,
                "needed": config.needed(),
                "members": len(config.members),
                "member_ids": list(config.members),
                "terms": {},
                "finished": False,
                "committed": None,
            },
        )
        if not sub:
            visit["finished"] = True
            visit["output"] = step.output
            continue
        term_part, _, role = sub.partition("/")
        if not term_part.startswith("term-") or not term_part[5:].isdigit():
            continue
        number = int(term_part[5:])
        term = visit["terms"].setdefault(number, {"number": number, "votes": [], "elected": None})
        output = step.output if isinstance(step.output, dict) else {}
        if role == "propose":
            term["proposer"] = output.get("proposer")
            term["proposer_id"] = output.get("proposer_id")
            term["proposal"] = output.get("proposal")
            term["failed"] = output.get("error") if output.get("failed") else ""
        elif role.startswith("member-") and role[7:].isdigit():
            term["votes"].append({**output, "index": int(role[7:])})
        elif role == "elect":
            term["elected"] = output
    shown = []
    for visit in visits.values():
        terms = [visit["terms"][number] for number in sorted(visit["terms"])]
        for term in terms:
            term["votes"].sort(key=lambda vote: vote["index"])
            accepted = sum(vote.get("decision") == "accept" for vote in term["votes"])
            if term.get("proposer_id") in visit["member_ids"]:
                accepted += 1  # an elected member accepts its own proposal
            term["accepted"] = accepted
            term["decided"] = bool(term["votes"]) and not term.get("failed")
            term["committed"] = term["decided"] and accepted >= visit["needed"]
        committed = next((term for term in terms if term["committed"]), None)
        visit["terms"] = terms
        visit["committed"] = committed
        shown.append(visit)
    return shown
