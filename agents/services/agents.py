"""Agents and their versions: every save is a new immutable version."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from pydantic import ValidationError as ConfigError

from a2a_site.accounts.models import User, Workspace
from agents.config import AgentConfig, agent_config_load, config_errors
from agents.models import Agent, AgentVersion, Provider


def _validate(
    *,
    workspace: Workspace,
    config: dict[str, Any],
    known_tools: Collection[str],
    agent: Agent | None,
) -> AgentConfig:
    try:
        parsed = agent_config_load(config)
    except ConfigError as error:
        raise ValidationError(dict(config_errors(error))) from None
    policy = parsed.model_policy.choices() if parsed.model_policy else []
    provider_ids = {
        parsed.model.provider_id,
        *(f.provider_id for f in parsed.fallbacks),
        *(choice.provider_id for choice in policy),
    }
    found = {
        str(pk)
        for pk in Provider.objects.filter(
            workspace=workspace, pk__in=_uuids(provider_ids)
        ).values_list("pk", flat=True)
    }
    if parsed.model.provider_id not in found:
        raise ValidationError({"provider": "Choose a provider of this workspace."})
    if any(f.provider_id not in found for f in parsed.fallbacks):
        raise ValidationError({"fallback_provider": "Choose a provider of this workspace."})
    if any(choice.provider_id not in found for choice in policy):
        raise ValidationError(
            {"model_policy": "Every model of the policy must be on a provider of this workspace."}
        )
    unknown_tools = sorted(set(parsed.tools) - set(known_tools))
    if unknown_tools:
        raise ValidationError({"tools": f"Unknown tools: {', '.join(unknown_tools)}."})
    targets = set(parsed.handoff_targets)
    if agent is not None and str(agent.pk) in targets:
        raise ValidationError({"handoff_targets": "An agent cannot hand off to itself."})
    existing = {
        str(pk)
        for pk in Agent.objects.filter(workspace=workspace, pk__in=_uuids(targets)).values_list(
            "pk", flat=True
        )
    }
    if targets - existing:
        raise ValidationError(
            {"handoff_targets": "Hand-off targets must be agents of this workspace."}
        )
    return parsed


def _uuids(values: Collection[str]) -> list[str]:
    import uuid

    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid


def _new_version(
    agent: Agent, config: AgentConfig, *, user: User | None, note: str
) -> AgentVersion:
    # Lock the agent row: two editors saving at once get versions n+1 and n+2, never a clash.
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    number = locked.latest_version + 1
    version = AgentVersion.objects.create(
        agent=locked,
        number=number,
        config=config.model_dump(mode="json", exclude_none=True),
        note=note.strip()[:200],
        created_by=user,
    )
    Agent.objects.filter(pk=agent.pk).update(latest_version=number)
    agent.latest_version = number
    return version


def _name_taken() -> ValidationError:
    return ValidationError({"name": "Another agent in this workspace has this name."})


def agent_create(
    *,
    workspace: Workspace,
    user: User | None,
    name: str,
    description: str,
    config: dict[str, Any],
    known_tools: Collection[str],
    note: str = "",
) -> Agent:
    if not name.strip():
        raise ValidationError({"name": "Give the agent a name."})
    parsed = _validate(workspace=workspace, config=config, known_tools=known_tools, agent=None)
    try:
        with transaction.atomic():
            agent = Agent.objects.create(
                workspace=workspace,
                name=name.strip(),
                description=description.strip(),
                created_by=user,
            )
            _new_version(agent, parsed, user=user, note=note or "Created")
    except IntegrityError:
        raise _name_taken() from None
    return agent


def agent_update(
    *,
    agent: Agent,
    user: User | None,
    name: str,
    description: str,
    config: dict[str, Any],
    known_tools: Collection[str],
    note: str = "",
) -> AgentVersion:
    if not name.strip():
        raise ValidationError({"name": "Give the agent a name."})
    parsed = _validate(
        workspace=agent.workspace, config=config, known_tools=known_tools, agent=agent
    )
    try:
        with transaction.atomic():
            agent.name = name.strip()
            agent.description = description.strip()
            agent.save(update_fields=["name", "description", "updated_at"])
            return _new_version(agent, parsed, user=user, note=note)
    except IntegrityError:
        raise _name_taken() from None


def agent_duplicate(*, agent: Agent, user: User | None) -> Agent:
    latest = agent.versions.order_by("-number").first()
    if latest is None:
        raise ValidationError("This agent has no saved version to copy.")
    base = f"{agent.name} (copy)"
    name, counter = base, 2
    while Agent.objects.filter(workspace_id=agent.workspace_id, name=name).exists():
        name, counter = f"{base} {counter}", counter + 1
    with transaction.atomic():
        copy = Agent.objects.create(
            workspace_id=agent.workspace_id,
            name=name[:80],
            description=agent.description,
            created_by=user,
        )
        _new_version(
            copy,
            agent_config_load(latest.config),
            user=user,
            note=f"Copied from {agent.name} v{latest.number}",
        )
    return copy


def agent_delete(*, agent: Agent) -> None:
    # Published workflows pin agent versions; the workflows app registers who uses an agent.
    from agents.usage import agent_published_usages

    usages = agent_published_usages(agent)
    if usages:
        raise ValidationError(
            "Published workflows use this agent: "
            + ", ".join(usages[:5])
            + ". Remove it from them and publish new versions first."
        )
    agent.delete()
