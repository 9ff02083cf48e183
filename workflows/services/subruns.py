"""A parent run and its sub-runs: the parent waits while its child waits, and moves on with it.

A sub-workflow runs as a child run inside its parent's step. When the child must wait for a
person, both runs wait: the parent's `waiting_request` mirrors the child's question (with
`child_run_id` and `child_step_key`), so its run page shows what is asked and can answer it —
the answer goes to the child. The answered child then runs on its own; when it stops (or asks
again) `subruns_follow` wakes its parent (or shows the new question there). The parent resumes
by replay: its sub-workflow step finds the child finished and takes its output.

Each move is a locked read-and-write of the waiting parent, so a parent woken twice (by the
child's stop and by its own wait noticing the child had already stopped) is queued once; the
reaper settles, on its rounds, any wait a lost wake-up left behind.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows.models import TERMINAL_STATUSES, Run, RunStatus
from workflows.services.dispatch import dispatch_run

# The mirror's own fields; the rest of a waiting request is the child's question.
_MIRROR_OWN = ("step_key", "since", "timeout_s", "node_id")


def subrun_request(child: Run) -> dict[str, Any]:
    """What a parent shows while `child` (with its workflow loaded) waits or runs elsewhere."""
    name = child.workflow.name
    request = dict(child.waiting_request or {})
    if child.status == RunStatus.WAITING and request:
        return {**request, "workflow": name}
    return {
        "kind": "subrun",
        "prompt": f"The sub-workflow “{name}” is working; this run continues when it ends.",
        "workflow": name,
    }


def _mirror(waiting: dict[str, Any], child: Run) -> dict[str, Any]:
    asked = {k: v for k, v in subrun_request(child).items() if k not in _MIRROR_OWN}
    child_key = (child.waiting_request or {}).get("step_key", "")
    mirror = {
        **asked,
        "step_key": waiting.get("step_key", ""),
        "node_id": waiting.get("node_id"),
        "child_run_id": str(child.pk),
        "child_step_key": child_key if asked.get("kind") != "subrun" else "",
    }
    if waiting.get("since"):
        mirror["since"] = waiting["since"]
    return mirror


def subrun_settle(waiting_id: Any) -> bool:
    """Moves a parent waiting on a child along with the child: wakes it (True) once the child
    has stopped, or shows the child's current question. Propagates up the tree."""
    changed = False
    woke = False
    with transaction.atomic():
        parent = (
            Run.objects.select_for_update()
            .filter(pk=waiting_id, status=RunStatus.WAITING)
            .only("id", "status", "waiting_request", "parent_id", "dispatched_at")
            .first()
        )
        waiting = (parent.waiting_request or {}) if parent is not None else {}
        if parent is None or not waiting.get("child_run_id"):
            return False
        child = (
            Run.objects.select_related("workflow")
            .only("id", "status", "waiting_request", "workflow__name")
            .filter(pk=waiting["child_run_id"])
            .first()
        )
        stopped = (
            child is None
            or child.status in TERMINAL_STATUSES
            or (child.status == RunStatus.WAITING and not child.waiting_request)
        )
        if stopped:
            parent.status = RunStatus.QUEUED
            parent.waiting_request = None
            parent.dispatched_at = timezone.now()
            parent.save(update_fields=["status", "waiting_request", "dispatched_at"])
            parent_id = parent.pk
            transaction.on_commit(lambda: dispatch_run(parent_id))
            woke = True
        else:
            assert child is not None
            mirror = _mirror(waiting, child)
            if mirror != waiting:
                parent.waiting_request = mirror
                parent.save(update_fields=["waiting_request"])
                changed = True
    if changed and parent.parent_id is not None:
        subrun_settle(parent.parent_id)
    return woke


def subruns_follow(run_id: Any) -> None:
    """`run_id` stopped or began to wait: a parent waiting on it, and its own wait on a child
    (a child may have stopped before this run's wait was written), are settled now."""
    found = Run.objects.filter(pk=run_id).values("parent_id", "status", "waiting_request").first()
    if found is None:
        return
    if found["status"] == RunStatus.WAITING and (found["waiting_request"] or {}).get(
        "child_run_id"
    ):
        subrun_settle(run_id)
    if found["parent_id"] is not None:
        subrun_settle(found["parent_id"])


def subrun_answer_target(waiting: dict[str, Any]) -> tuple[Run, str] | None:
    """The child run (and its step key) an answer given to a waiting parent belongs to."""
    child_id = waiting.get("child_run_id")
    if not child_id:
        return None
    child = Run.objects.filter(pk=child_id).first()
    if child is None:
        return None
    return child, str(waiting.get("child_step_key") or "")
