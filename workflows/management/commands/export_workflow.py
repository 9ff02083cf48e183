"""`manage.py export_workflow NAME_OR_ID [--output FILE] [--workspace W]`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.models import Workflow
from workflows.services.transfer import workflow_export


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Command(BaseCommand):
    help = "Exports a workflow and its agents as one JSON document (no provider keys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="the workflow's name or id")
        parser.add_argument("--output", help="write to this file instead of standard output")
        parser.add_argument("--workspace", help="the workspace's name or id, if names clash")
        parser.add_argument(
            "--workflow-version",
            dest="workflow_version",
            type=int,
            help="a published version (default: latest)",
        )
        parser.add_argument("--draft", action="store_true", help="export the draft instead")

    def _workflow(self, name_or_id: str, workspace: str | None) -> Workflow:
        workflows = Workflow.objects.select_related("workspace")
        if workspace:
            by_id = workflows.filter(workspace__pk=workspace) if _is_uuid(workspace) else None
            workflows = workflows.filter(workspace__name=workspace) | (
                by_id if by_id is not None else workflows.none()
            )
        matches = list(workflows.filter(name=name_or_id))
        if not matches and _is_uuid(name_or_id):
            matches = list(workflows.filter(pk=name_or_id))
        if not matches:
            raise CommandError(f"No workflow is called or has the id “{name_or_id}”.")
        if len(matches) > 1:
            spaces = ", ".join(sorted(w.workspace.name for w in matches))
            raise CommandError(
                f"Several workspaces have “{name_or_id}” ({spaces}): add --workspace."
            )
        return matches[0]

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = self._workflow(options["workflow"], options["workspace"])
        try:
            document = workflow_export(
                workflow=workflow, version=options["workflow_version"], draft=options["draft"]
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        path = Path(options["output"])
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {path}: {error}.") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported “{workflow.name}” ({document['source']}, "
                f"{len(document['agents'])} agents) to {path}."
            )
        )
