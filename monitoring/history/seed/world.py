"""The seeded workspace: people, providers and models, the template workflows in versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from a2a_site.accounts.models import Membership, Role, User, Workspace
from agents.models import Agent, Provider
from monitoring.history.seed.vocabulary import PROVIDERS, SEED_PEOPLE
from workflows.models import Workflow, WorkflowVersion

SEED_WORKSPACE_NAME = "History sample"


@dataclass
class World:
    workspace: Workspace
    people: list[User]
    workflows: list[tuple[Workflow, list[WorkflowVersion]]]
    # Each agent's (provider, model, price source, prices).
    agents: dict[str, tuple[Provider, str, str, tuple[str, str] | None]]
    agent_names: dict[str, str]
    now: datetime


@dataclass
class Batch:
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)


def world_ensure(*, member: User | None, now: datetime) -> World:
    from workflows.templates_catalog import templates_seed

    people = []
    for username, _role in SEED_PEOPLE:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        people.append(user)
    workspace = Workspace.objects.filter(name=SEED_WORKSPACE_NAME, created_by=people[0]).first()
    if workspace is None:
        workspace = Workspace.objects.create(name=SEED_WORKSPACE_NAME, created_by=people[0])
    for user, (_username, role) in zip(people, SEED_PEOPLE, strict=True):
        Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    if member is not None:
        Membership.objects.get_or_create(
            workspace=workspace, user=member, defaults={"role": Role.OWNER}
        )
    templates_seed(workspace=workspace, user=people[0])
    workflows = []
    for workflow in Workflow.objects.filter(workspace=workspace).order_by("name"):
        versions = list(workflow.versions.order_by("number"))
        while len(versions) < 3:
            first = versions[0]
            versions.append(
                WorkflowVersion.objects.create(
                    workflow=workflow,
                    number=len(versions) + 1,
                    graph=first.graph,
                    agent_versions=first.agent_versions,
                    note="Tightened the prompts",
                    created_by=people[len(versions) % 3],
                )
            )
        if workflow.latest_version < len(versions):
            Workflow.objects.filter(pk=workflow.pk).update(latest_version=len(versions))
        workflows.append((workflow, versions))
    deployments = []
    for name, kind, base_url, models, price_source in PROVIDERS:
        provider, _ = Provider.objects.get_or_create(
            workspace=workspace,
            name=name,
            defaults={"kind": kind, "base_url": base_url, "created_by": people[0]},
        )
        for model, prices in models.items():
            deployments.append((provider, model, str(price_source), prices))
    agents = {}
    names = {}
    for index, agent in enumerate(Agent.objects.filter(workspace=workspace).order_by("name")):
        agents[str(agent.pk)] = deployments[index % len(deployments)]
        names[str(agent.pk)] = agent.name
    return World(workspace, people, workflows, agents, names, now)
