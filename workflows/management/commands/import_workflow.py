"""`manage.py import_workflow FILE [--workspace W]`: an A2A Studio export or an AutoGen team."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from a2a_site.accounts.models import Workspace
from workflows.services.autogen import autogen_import, is_autogen_team
from workflows.services.transfer import EXPORT_FORMAT, ImportResult, workflow_import


def workspace_choose(name_or_id: str | None) -> Workspace:
    """The named workspace, or the only one; a CommandError saying what to pass otherwise."""
    if name_or_id:
        matches = list(Workspace.objects.filter(name=name_or_id))
        if not matches:
            try:
                matches = list(Workspace.objects.filter(pk=uuid.UUID(name_or_id)))
            except ValueError:
                matches = []
        if not matches:
            raise CommandError(f"No workspace is called or has the id “{name_or_id}”.")
        if len(matches) > 1:
            raise CommandError(
                f"Several workspaces are called “{name_or_id}”: pass the id with --workspace."
            )
        return matches[0]
    workspaces = list(Workspace.objects.order_by("pk")[:6])
    if not workspaces:
        raise CommandError(
            "There is no workspace yet: sign up, or run `manage.py seed_demo` for the demo one."
        )
    if len(workspaces) > 1:
        names = ", ".join(f"“{w.name}” ({w.pk})" for w in workspaces[:5])
        raise CommandError(f"Several workspaces exist ({names}…): choose one with --workspace.")
    return workspaces[0]


class Command(BaseCommand):
    help = "Imports a workflow from an A2A Studio export or an AutoGen Studio team JSON file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the JSON file to import")
        parser.add_argument(
            "--workspace", help="the workspace's name or id (default: the only one)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"The file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"The file {path} cannot be read: {error}.") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"The file {path} is not JSON ({error.msg} at line {error.lineno})."
            ) from None
        workspace = workspace_choose(options["workspace"])
        user = workspace.created_by
        try:
            if isinstance(document, dict) and document.get("format") == EXPORT_FORMAT:
                kind = "A2A Studio export"
                result = workflow_import(workspace=workspace, user=user, document=document)
            elif is_autogen_team(document):
                kind = "AutoGen Studio team"
                result = autogen_import(workspace=workspace, user=user, document=document)
            else:
                raise CommandError(
                    f'The file {path} is neither an A2A Studio workflow export ("format": '
                    f'"{EXPORT_FORMAT}") nor an AutoGen Studio team ("component_type": '
                    '"team").'
                )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self._print(kind, workspace, result)

    def _print(self, kind: str, workspace: Workspace, result: ImportResult) -> None:
        workflow = result.workflow
        state = (
            f"published as version {workflow.latest_version}"
            if workflow.latest_version
            else "saved as a draft"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported the {kind} as the workflow “{workflow.name}” in “{workspace.name}”, "
                f"{state}."
            )
        )
        for agent in result.agents_created:
            self.stdout.write(f"  created agent “{agent.name}”")
        for line in result.warnings:
            self.stdout.write(self.style.WARNING(f"Warning: {line}"))
        for line in result.report:
            self.stdout.write(f"Differs from AutoGen: {line}")
