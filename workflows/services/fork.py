"""Forking a run: start it again from one of its finished steps, reusing the steps before it.

A fork is an ordinary run that starts with copies of its parent's steps (and their events) that
had finished before the chosen step started. The engine's replay then skips them — no model call,
no cost: the parent's ledger is not copied, so the fork's totals are only what it spends — and
executes from the chosen step on (see the engine's docstring). Variable values a person edited
are stored on the fork and set when the walk reaches the chosen step.

What replay cannot reproduce is refused with a reason, before anything is written:

* a step that is not finished, or a sub-step of a team (fork from the team node instead);
* a run that is a sub-workflow of another run (fork the run that called it);
* a step that started while another was still running or had failed (a sibling parallel branch,
  or a loop body running alongside): which of them "came before" has no single answer;
* on another version, any node the replayed part of the walk passes through (the chosen step's
  ancestors and the copied steps' nodes) missing or changed in type, settings or outgoing edges,
  the chosen node missing or of another type, or a variable the copied steps wrote gone or
  combined differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from a2a_site.accounts.models import User
from workflows.engine.engine import variables_apply
from workflows.graph import InputError, graph_load
from workflows.models import LaunchedVia, Run, RunEvent, Step, WorkflowVersion
from workflows.search import search_text_of
from workflows.services.dispatch import dispatch_run
from workflows.spend_gate import LaunchRefused, launch_refusal


@dataclass(frozen=True)
class ForkPoint:
    """A finished step of a run, and what a fork from it starts with."""

    run: Run
    step: Step
    # When the chosen step (or, for a team, its first turn) started: the point in time forked.
    at: datetime
    reused: list[Step]  # the parent's steps finished before `at`, in the order they finished
    # The parent's own edits (if it is a fork) that the fork keeps: those set at a reused step
    # or at the chosen one, as stored in `Run.fork_edits`.
    inherited: list[dict[str, Any]]
    variables: dict[str, Any]  # the values the walk had reached there

    @property
    def node_label(self) -> str:
        for node in self.run.version.graph.get("nodes", []):
            if node.get("id") == self.step.node_id:
                return str(node.get("label") or node["id"])
        return self.step.node_id


def fork_point(*, run: Run, step_key: str) -> ForkPoint:
    """The fork point at `step_key`; a ValidationError saying why when there is none."""
    if run.parent_id is not None:
        raise ValidationError(
            "This run is a sub-workflow of another run: fork the run that called it, from the "
            "step that started this one."
        )
    steps = list(Step.objects.filter(run=run).order_by("started_at", "pk"))
    chosen = next((step for step in steps if step.key == step_key), None)
    if chosen is None:
        raise ValidationError(f"This run has no step “{step_key}”.")
    if "/" in chosen.key:
        team = chosen.key.split("/", 1)[0]
        raise ValidationError(
            f"“{chosen.key}” is one turn inside the team step “{team}”: fork from “{team}” to "
            "run the whole conversation again."
        )
    if chosen.status not in (Step.Status.COMPLETED, Step.Status.FAILED):
        raise ValidationError(f"Step “{chosen.key}” has not finished yet: fork once it has.")
    inside = f"{chosen.key}/"
    # A team records its own step after its turns: the point forked is when its first turn began.
    own = [step for step in steps if step.key == chosen.key or step.key.startswith(inside)]
    at = min(step.started_at for step in own)
    reused: list[Step] = []
    for step in steps:
        if step in own or step.started_at > at:
            continue
        finished_before = step.finished_at is not None and step.finished_at <= at
        if step.status == Step.Status.COMPLETED and finished_before:
            reused.append(step)
        elif step.status == Step.Status.FAILED and finished_before:
            raise ValidationError(
                f"Step “{step.key}” had failed before “{chosen.key}” started and the run went "
                "on without it (a tolerated branch): a fork would run it again. Fork from "
                f"“{step.key}” itself, or from a step after the branches joined."
            )
        else:
            raise ValidationError(
                f"Step “{step.key}” was still running when “{chosen.key}” started (they ran "
                "side by side, as parallel branches do), so there is no single point to go "
                f"back to. Fork from a step after the branches joined, or from “{step.key}”."
            )
    reused.sort(key=lambda step: (step.finished_at, step.started_at))
    reused_keys = {step.key for step in reused}
    inherited = [
        edit
        for edit in run.fork_edits or []
        if edit["step"] in reused_keys or edit["step"] == chosen.key
    ]
    started = {step.key: step.started_at for step in steps}
    variables = _variables_at(run, run.inputs, reused, inherited, started)
    return ForkPoint(run, chosen, at, reused, inherited, variables)


def _variables_at(
    run: Run,
    inputs: Mapping[str, Any],
    reused: list[Step],
    inherited: list[dict[str, Any]],
    started: Mapping[str, datetime],
) -> dict[str, Any]:
    """The variables as the walk has them when it reaches the fork point: the defaults, the
    start node's inputs, then in time order each reused step's updates as it finished and each
    inherited edit as its step started."""
    graph = run.version.graph
    definitions = graph.get("variables") or []
    values = {item["name"]: item.get("default") for item in definitions}
    reducers = {item["name"]: item.get("reducer", "replace") for item in definitions}
    for node in graph.get("nodes", []):
        if node.get("type") == "start":
            mapping = (node.get("config") or {}).get("input_mapping") or {}
            variables_apply(
                values, {var: inputs.get(name) for name, var in mapping.items()}, reducers
            )
    changes: list[tuple[datetime, int, Mapping[str, Any], str]] = [
        (step.finished_at or step.started_at, 0, step.variables or {}, "apply") for step in reused
    ]
    changes += [(started[edit["step"]], 1, edit["variables"], "set") for edit in inherited]
    for _, _, updates, how in sorted(changes, key=lambda change: change[:2]):
        if how == "set":
            values.update(updates)
        else:
            variables_apply(values, updates, reducers)
    return values


def _ancestors(graph: Mapping[str, Any], node_id: str) -> set[str]:
    sources: dict[str, list[str]] = {}
    for edge in graph.get("edges", []):
        sources.setdefault(edge["target"], []).append(edge["source"])
    found: set[str] = set()
    queue = list(sources.get(node_id, []))
    while queue:
        current = queue.pop()
        if current not in found:
            found.add(current)
            queue.extend(sources.get(current, []))
    return found


def _outgoing(graph: Mapping[str, Any], node_id: str) -> list[tuple[str, str]]:
    return [
        (str(edge.get("source_handle") or ""), edge["target"])
        for edge in graph.get("edges", [])
        if edge["source"] == node_id
    ]


def fork_version_check(point: ForkPoint, version: WorkflowVersion) -> None:
    """Refuses a version on which the replayed part of the walk would not be the same."""
    before = point.run.version
    if version.pk == before.pk:
        return
    old, new = before.graph, version.graph
    old_nodes = {node["id"]: node for node in old.get("nodes", [])}
    new_nodes = {node["id"]: node for node in new.get("nodes", [])}
    chosen = point.step.node_id
    where = f"Version {version.number}"
    if chosen not in new_nodes:
        raise ValidationError(f"{where} has no node “{chosen}”, the step to run again.")
    if new_nodes[chosen]["type"] != old_nodes.get(chosen, {}).get("type"):
        raise ValidationError(
            f"{where} changed the type of “{chosen}”, the step to run again: the run's steps "
            "cannot be replayed on it."
        )
    upstream = _ancestors(old, chosen) | {step.node_id for step in point.reused}
    if _ancestors(new, chosen) - upstream - {chosen}:
        added = ", ".join(sorted(_ancestors(new, chosen) - upstream - {chosen}))
        raise ValidationError(
            f"{where} adds nodes before “{chosen}” ({added}): the steps before it would not be "
            "the same. Fork on this run's own version, or start a new run."
        )
    for node_id in sorted(upstream - {chosen}):
        was, now = old_nodes.get(node_id), new_nodes.get(node_id)
        if now is None:
            raise ValidationError(
                f"{where} has no node “{node_id}”, which runs before “{chosen}”: its stored "
                "result cannot be reused there."
            )
        if was is None or (was["type"], was.get("config")) != (now["type"], now.get("config")):
            raise ValidationError(
                f"{where} changed node “{node_id}”, which runs before “{chosen}”: its stored "
                "result would not be what that version computes. Fork on this run's own version."
            )
        if _outgoing(old, node_id) != _outgoing(new, node_id):
            raise ValidationError(
                f"{where} changed the connections out of “{node_id}”, which runs before "
                f"“{chosen}”: the replayed walk would not be the same."
            )
    old_reducers = {
        item["name"]: item.get("reducer", "replace") for item in old.get("variables", [])
    }
    new_reducers = {
        item["name"]: item.get("reducer", "replace") for item in new.get("variables", [])
    }
    for name in sorted({name for step in point.reused for name in (step.variables or {})}):
        if new_reducers.get(name) != old_reducers.get(name):
            raise ValidationError(
                f"{where} removed or changed the variable “{name}”, which the steps before "
                f"“{chosen}” wrote."
            )


def run_fork(
    *,
    run: Run,
    step_key: str,
    user: User | None,
    version: WorkflowVersion | None = None,
    inputs: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    launched_via: str = LaunchedVia.WEB,
) -> Run:
    """Starts a fork of `run` from `step_key` on `version` (the run's own by default), with
    `inputs` (the run's by default) and the edited `variables` set at that step. Everything is
    written in one transaction, and the fork is dispatched after it commits."""
    version = version or run.version
    if version.workflow_id != run.workflow_id:
        raise ValidationError("That version belongs to another workflow.")
    with transaction.atomic():
        point = fork_point(run=run, step_key=step_key)
        fork_version_check(point, version)
        graph = graph_load(version.graph)
        try:
            clean = graph.inputs.validate_inputs(
                dict(run.inputs if inputs is None else inputs), allow_unknown=True
            )
        except InputError as error:
            raise ValidationError(dict(error.errors)) from None
        edited = dict(variables or {})
        known = {variable.name for variable in graph.variables}
        unknown = sorted(set(edited) - known)
        if unknown:
            raise ValidationError(
                f"Version {version.number} has no variable {', '.join(unknown)} to set."
            )
        started = {step.key: step.started_at for step in [*point.reused, point.step]}
        refused = launch_refusal(
            workspace_id=run.workspace_id,
            workflow_id=run.workflow_id,
            user_id=user.pk if user else None,
            agent_versions=version.agent_versions or {},
        )
        if refused:
            raise LaunchRefused(refused)
        values = _variables_at(run, clean, point.reused, point.inherited, started)
        values.update(edited)
        now = timezone.now()
        reused_keys = {step.key for step in point.reused}
        # Edits of the parent's before this point stay where they were; this fork's own, with
        # any the parent made at this very step, are set at it.
        edits = [edit for edit in point.inherited if edit["step"] != point.step.key]
        here = {
            name: value
            for edit in point.inherited
            if edit["step"] == point.step.key
            for name, value in edit["variables"].items()
        }
        here.update(edited)
        if here:
            edits.append({"step": point.step.key, "variables": here, "before": sorted(reused_keys)})
        fork = Run.objects.create(
            workspace_id=run.workspace_id,
            workflow_id=run.workflow_id,
            version=version,
            inputs=clean,
            variables=values,
            answers={k: v for k, v in (run.answers or {}).items() if k in reused_keys},
            answered_by={k: v for k, v in (run.answered_by or {}).items() if k in reused_keys},
            forked_from=run,
            fork_step_key=point.step.key,
            fork_edits=edits,
            steps_completed=len(point.reused),
            created_by=user,
            launched_via=launched_via,
            search_text=search_text_of(inputs=clean),
            deadline=now + timedelta(seconds=graph.settings.timeout_s),
            dispatched_at=now,
        )
        Step.objects.bulk_create(
            Step(
                run=fork,
                key=step.key,
                node_id=step.node_id,
                node_type=step.node_type,
                status=Step.Status.COMPLETED,
                reused=True,
                attempt=step.attempt,
                input=step.input,
                output=step.output,
                branch=step.branch,
                variables=step.variables,
                started_at=step.started_at,
                finished_at=step.finished_at,
            )
            for step in point.reused
        )
        copied = [
            RunEvent(
                run=fork,
                seq=seq,
                step_key=event.step_key,
                kind=event.kind,
                # Marked, so a reader does not count a reused message's usage as the fork's.
                data={"reused_from": str(run.pk), **event.data},
            )
            for seq, event in enumerate(
                RunEvent.objects.filter(run=run, step_key__in=reused_keys).order_by("seq"),
                start=1,
            )
        ]
        reused = len(point.reused)
        note = (
            f"Forked from run {str(run.pk)[:8]} at step “{point.step.key}”: "
            f"{reused} earlier step{'s' if reused != 1 else ''} reused, not run again."
        )
        if edited:
            note += f" Edited: {', '.join(sorted(edited))}."
        copied.append(
            RunEvent(
                run=fork, seq=len(copied) + 1, kind="log", data={"level": "info", "message": note}
            )
        )
        RunEvent.objects.bulk_create(copied)
        Run.objects.filter(pk=fork.pk).update(last_seq=len(copied))
        fork.last_seq = len(copied)
        fork_id = fork.pk
        transaction.on_commit(lambda: dispatch_run(fork_id))
    return fork
