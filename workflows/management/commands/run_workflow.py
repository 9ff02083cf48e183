"""`manage.py run_workflow NAME_OR_ID [--input JSON] [--follow] [--json]`."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.models import (
    TERMINAL_STATUSES,
    LaunchedVia,
    Run,
    RunEvent,
    RunStatus,
    Workflow,
)
from workflows.services.runs import run_start

POLL_S = 0.2


class Command(BaseCommand):
    help = "Runs a workflow's latest published version through the configured dispatch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="the workflow's name or id")
        parser.add_argument("--input", default="{}", help='inputs as JSON, e.g. \'{"topic": "x"}\'')
        parser.add_argument("--workspace", help="the workspace's name or id, if names clash")
        parser.add_argument("--follow", action="store_true", help="stream messages until it ends")
        parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
        parser.add_argument(
            "--timeout", type=float, default=3600, help="stop following after this many seconds"
        )

    def _workflow(self, name_or_id: str, workspace: str | None) -> Workflow:
        workflows = Workflow.objects.select_related("workspace")
        if workspace:
            workflows = workflows.filter(workspace__name=workspace) | workflows.filter(
                workspace__pk__iexact=workspace
            )
        matches = list(workflows.filter(name=name_or_id)) or list(
            workflows.filter(pk__iexact=name_or_id) if _is_uuid(name_or_id) else []
        )
        if not matches:
            raise CommandError(f"No workflow is called or has the id “{name_or_id}”.")
        if len(matches) > 1:
            spaces = ", ".join(sorted(w.workspace.name for w in matches))
            raise CommandError(
                f"Several workspaces have “{name_or_id}” ({spaces}): add --workspace."
            )
        return matches[0]

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            inputs = json.loads(options["input"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--input is not valid JSON: {error.msg}.") from None
        if not isinstance(inputs, dict):
            raise CommandError("--input must be a JSON object of named inputs.")
        workflow = self._workflow(options["workflow"], options["workspace"])
        try:
            run = run_start(
                workflow=workflow,
                user=None,
                inputs=inputs,
                launched_via=LaunchedVia.COMMAND_LINE,
            )
        except ValidationError as error:
            raise CommandError(_explain(error)) from None
        if settings.EXECUTION_MODE == "embedded" and not (options["follow"] or options["json"]):
            self.stderr.write("The embedded mode executes here: following until the run ends.")
            options["follow"] = True
        if not options["follow"] and not options["json"]:
            self.stdout.write(f"Queued run {run.pk}.")
            return
        run = self._follow(run, quiet=not options["follow"], timeout=options["timeout"])
        if options["json"]:
            self.stdout.write(json.dumps(_summary(run), default=str))
        elif run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"The run {run.status}: {run.reason}")

    def _follow(self, run: Run, *, quiet: bool, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in RunEvent.objects.filter(run=run, seq__gt=seen).order_by("seq"):
                seen = event.seq
                if not quiet:
                    self._print(event)
            run.refresh_from_db()
            if run.status in TERMINAL_STATUSES or run.status == RunStatus.WAITING:
                if not RunEvent.objects.filter(run=run, seq__gt=seen).exists():
                    break
                continue
            if time.monotonic() > deadline:
                raise CommandError(f"Still {run.status} after {timeout:g} s; run id {run.pk}.")
            time.sleep(POLL_S)  # the run is in another thread or process; poll its events
        if not quiet:
            self.stdout.write(
                f"— {run.status}{': ' + run.reason if run.reason else ''} · "
                f"{run.steps_completed} steps · {run.total_tokens} tokens · ${run.cost:.6f}"
            )
        return run

    def _print(self, event: RunEvent) -> None:
        data = event.data
        if event.kind == "message":
            self.stdout.write(f"[{data.get('agent', '?')}] {data.get('text', '')}")
        elif event.kind in ("node_started", "node_finished", "node_failed"):
            self.stdout.write(
                self.style.HTTP_INFO(
                    f"· {event.kind.replace('_', ' ')}: {data.get('node', event.step_key)}"
                )
            )
        elif event.kind == "human_request":
            self.stdout.write(
                self.style.WARNING(f"? waiting for a person: {data.get('prompt', '')}")
            )
        else:
            self.stdout.write(f"· {event.kind}: {json.dumps(data)[:200]}")


def _explain(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _summary(run: Run) -> dict[str, Any]:
    return {
        "run_id": str(run.pk),
        "status": run.status,
        "reason": run.reason,
        "output": run.output,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost": format(run.cost.normalize(), "f"),
        "model_calls": run.model_calls,
        "steps": run.steps_completed,
        "version": run.version.number,
    }
