"""Tells the agents app which published workflows use an agent (so it can refuse to delete it)."""

from __future__ import annotations

from agents.models import Agent
from workflows.models import Workflow


def published_workflows_using(agent: Agent) -> list[str]:
    names = []
    for workflow in Workflow.objects.filter(workspace_id=agent.workspace_id, latest_version__gt=0):
        version = workflow.versions.filter(number=workflow.latest_version).first()
        if version is not None and str(agent.pk) in (version.agent_versions or {}):
            names.append(workflow.name)
    return names
