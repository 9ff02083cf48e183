"""A workspace's runtime stamp: moved by every change to what a run resolves before its calls.

Run executors keep the agents, route plans and tool host policy they resolved, per workspace
and stamp (`workflows.runtime`), instead of reading them again for every run; each run's load
reads the stamp with the run row, so a change made in any process reaches every executor at its
next run. The stamp moves in the same transaction as the change (a run that sees the change's
commit sees the new stamp), on every save and delete of the models below, and where a service
writes routing fields with a plain UPDATE (`agents.services.nodes`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import F
from django.db.models.signals import post_delete, post_save


def workspace_runtime_changed(workspace_id: Any) -> None:
    from a2a_site.accounts.models import Workspace

    if workspace_id is not None:
        Workspace.objects.filter(pk=workspace_id).update(runtime_stamp=F("runtime_stamp") + 1)


def _workspace_of(instance: Any) -> Any:
    from agents.models import AgentVersion, OllamaNode

    if isinstance(instance, AgentVersion):
        return instance.agent.workspace_id
    if isinstance(instance, OllamaNode):
        return instance.provider.workspace_id
    return instance.workspace_id


def _changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # fixtures being loaded
        return
    try:
        workspace_id = _workspace_of(instance)
    except ObjectDoesNotExist:  # its parent went first (a cascade), moving the stamp itself
        return
    workspace_runtime_changed(workspace_id)


def stamps_connect() -> None:
    """Connects the signals (from AgentsConfig.ready)."""
    from agents.models import Agent, AgentVersion, McpServer, OllamaNode, Provider, ToolHostPolicy

    for model in (Agent, AgentVersion, Provider, OllamaNode, ToolHostPolicy, McpServer):
        post_save.connect(_changed, sender=model, dispatch_uid=f"runtime-stamp-save-{model}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"runtime-stamp-del-{model}")
