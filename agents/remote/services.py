"""Writes of the remote agents registry. The credential is encrypted at once and never read
back for display; only the call that sends it decrypts it (`remote_agent_credential`)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from agents.crypto import (
    CredentialDecryptError,
    credential_decrypt,
    credential_encrypt,
)
from agents.models import RemoteAgent
from agents.remote.card import (
    RemoteCardError,
    remote_base_url,
    remote_card_fetch,
    remote_origin,
)

HINT_LENGTH = 4


def _credential_set(agent: RemoteAgent, credential: str) -> None:
    credential = credential.strip()
    agent.credential_ciphertext = credential_encrypt(credential)
    agent.credential_hint = credential[-HINT_LENGTH:] if len(credential) >= 8 else ""
    agent.credential_origin = remote_origin(agent.url)


def remote_agent_card_refresh(*, agent: RemoteAgent) -> RemoteAgent:
    """Fetches the agent's card again; what it found (or why not) is kept on the row."""
    try:
        card = remote_card_fetch(agent.url)
    except RemoteCardError as error:
        agent.card_error = str(error)[:500]
    else:
        agent.card = card.as_dict()
        agent.card_error = ""
    agent.card_fetched_at = timezone.now()
    agent.save(update_fields=["card", "card_error", "card_fetched_at", "updated_at"])
    return agent


def _save(agent: RemoteAgent) -> None:
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError:
        raise ValidationError(
            {"name": "This workspace already has a remote agent by that name."}
        ) from None


def remote_agent_create(
    *, workspace: Workspace, user: Any, name: str, url: str, credential: str = ""
) -> RemoteAgent:
    agent = RemoteAgent(workspace=workspace, name=name.strip(), url=remote_base_url(url))
    agent.created_by = user if getattr(user, "is_authenticated", False) else None
    if credential.strip():
        _credential_set(agent, credential)
    _save(agent)
    return remote_agent_card_refresh(agent=agent)


def remote_agent_update(
    *, agent: RemoteAgent, name: str, url: str, credential: str = "", clear_credential: bool = False
) -> RemoteAgent:
    """Saves the new name and URL. A blank credential keeps the stored one — unless the origin
    changed: a key is never sent to an origin other than the one it was saved with, so moving
    the agent elsewhere drops it until it is entered again."""
    new_url = remote_base_url(url)
    moved = remote_origin(new_url) != remote_origin(agent.url)
    agent.name, agent.url = name.strip(), new_url
    if credential.strip():
        _credential_set(agent, credential)
    elif clear_credential or (moved and agent.credential_ciphertext):
        agent.credential_ciphertext = agent.credential_hint = agent.credential_origin = ""
    _save(agent)
    return remote_agent_card_refresh(agent=agent)


def remote_agent_delete(*, agent: RemoteAgent) -> None:
    agent.delete()


def remote_agent_credential(*, workspace_id: Any, remote_agent_id: str) -> tuple[str, str, str]:
    """(credential, its origin, the saved agent's name) for a call; ValueError when the saved
    agent does not exist in the workspace or its key cannot be read (never with the key)."""
    try:
        key = uuid.UUID(str(remote_agent_id))
    except ValueError:
        key = uuid.UUID(int=0)  # matches no row
    agent = (
        RemoteAgent.objects.filter(workspace_id=workspace_id, pk=key)
        .only("name", "credential_ciphertext", "credential_origin")
        .first()
    )
    if agent is None:
        raise ValueError(
            "The saved remote agent this node uses no longer exists in this workspace; "
            "choose another on the node, or none."
        )
    if not agent.credential_ciphertext:
        return "", "", agent.name
    try:
        return credential_decrypt(agent.credential_ciphertext), agent.credential_origin, agent.name
    except CredentialDecryptError as error:
        raise ValueError(str(error)) from None
