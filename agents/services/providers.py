"""Creating and changing providers, with their write-only, URL-bound credentials."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from a2a_site.accounts.models import User, Workspace
from agents.connection import CheckTarget, ConnectionCheck, connection_check
from agents.crypto import credential_encrypt
from agents.llm.kinds import provider_kind
from agents.models import Provider
from agents.urlpolicy import OutboundHostUnresolved, OutboundURLRefused, model_url_check


@dataclass(frozen=True)
class ProviderInput:
    """What a form or API call may set. `api_key` None keeps the stored key; "" sets none."""

    kind: str
    name: str
    base_url: str = ""
    api_version: str = ""
    api_key: str | None = None
    remove_key: bool = False
    input_price_per_1k: Decimal | None = None
    output_price_per_1k: Decimal | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    timeout_s: int = 60
    first_byte_timeout_s: int = 30
    chunk_timeout_s: int = 30
    routing_strategy: str = "least_busy"
    model_routing: dict[str, str] | None = None
    cli_config: dict[str, Any] | None = None


def provider_effective_base_url(provider: Provider) -> str:
    """The OpenAI-protocol base URL calls go to; the demo model's comes from the settings."""
    if provider.kind == "demo":
        return str(settings.DEMO_MODEL_URL).rstrip("/") + "/v1"
    return provider.base_url.rstrip("/")


def _check_base_url(kind: str, base_url: str) -> str:
    info = provider_kind(kind)
    if kind in ("demo", "cli", "ollama"):
        # The demo URL is the administrator's setting; Ollama URLs live on its nodes.
        return ""
    base_url = base_url.strip() or info.default_base_url
    if not base_url:
        raise ValidationError({"base_url": f"{info.label} needs a base URL."})
    try:
        return model_url_check(base_url).rstrip("/")
    except OutboundHostUnresolved:
        # Scheme and credentials in the URL were already checked; the address is checked again
        # on every call, and “Test connection” tells the user if the name never resolves.
        return base_url.strip().rstrip("/")
    except OutboundURLRefused as refused:
        raise ValidationError({"base_url": str(refused)}) from None


def _apply(provider: Provider, data: ProviderInput) -> None:
    info = provider_kind(data.kind)
    name = data.name.strip()
    if not name:
        raise ValidationError({"name": "Give the provider a name."})
    if info.api_version_required and not data.api_version.strip():
        raise ValidationError({"api_version": f"{info.label} needs an API version."})
    base_url = _check_base_url(data.kind, data.base_url)
    new_key = (data.api_key or "").strip()

    url_changed = bool(provider.credential_ciphertext) and provider.credential_base_url != base_url
    if data.remove_key:
        provider.credential_ciphertext = ""
        provider.credential_hint = ""
        provider.credential_base_url = ""
    elif new_key:
        provider.credential_ciphertext = credential_encrypt(new_key)
        provider.credential_hint = new_key[-4:] if len(new_key) >= 8 else ""
        provider.credential_base_url = base_url
    elif url_changed:
        raise ValidationError(
            {
                "api_key": "The base URL changed, so enter the API key again: a stored key is "
                "only ever sent to the URL it was saved with."
            }
        )
    if info.key_required and not provider.credential_ciphertext:
        raise ValidationError({"api_key": f"{info.label} needs an API key."})

    provider.kind = data.kind
    provider.name = name
    provider.base_url = base_url
    provider.api_version = data.api_version.strip()
    provider.input_price_per_1k = data.input_price_per_1k
    provider.output_price_per_1k = data.output_price_per_1k
    provider.rpm_limit = data.rpm_limit
    provider.tpm_limit = data.tpm_limit
    provider.timeout_s = data.timeout_s
    provider.first_byte_timeout_s = data.first_byte_timeout_s
    provider.chunk_timeout_s = data.chunk_timeout_s
    provider.routing_strategy = data.routing_strategy
    if data.model_routing is not None:
        provider.model_routing = data.model_routing
    if data.cli_config is not None:
        provider.cli_config = data.cli_config


def _save(provider: Provider) -> Provider:
    try:
        with transaction.atomic():
            provider.save()
    except IntegrityError:
        raise ValidationError(
            {"name": "Another provider in this workspace has this name."}
        ) from None
    return provider


def provider_create(*, workspace: Workspace, user: User | None, data: ProviderInput) -> Provider:
    provider = Provider(workspace=workspace, created_by=user)
    _apply(provider, data)
    return _save(provider)


def provider_update(*, provider: Provider, data: ProviderInput) -> Provider:
    if data.kind != provider.kind:
        raise ValidationError({"kind": "A provider's kind cannot change; add a new provider."})
    _apply(provider, data)
    return _save(provider)


def provider_delete(*, provider: Provider) -> None:
    from agents.selectors import agents_using_provider

    users = agents_using_provider(provider)
    if users:
        names = ", ".join(agent.name for agent in users[:5])
        raise ValidationError(
            f"Agents use this provider ({names}). Point them at another model first."
        )
    provider.delete()


def provider_settings_check(*, data: ProviderInput, provider: Provider | None) -> ConnectionCheck:
    """Tests settings that are not saved yet (the provider form's “Test connection”).

    It goes through the same outbound policy as a saved provider and stores nothing. With no key
    entered, an edited provider's stored key is used — but only towards the base URL it was saved
    with, as for every call.
    """
    from agents.crypto import CredentialDecryptError, CredentialKeyError, credential_decrypt

    if data.kind == "cli":
        from agents.services.cli import cli_provider_check

        return cli_provider_check(data.cli_config or {})
    if data.kind == "ollama":
        return ConnectionCheck(
            False, "Ollama providers reach their models on nodes: save, then add and test a node."
        )
    try:
        base_url = _check_base_url(data.kind, data.base_url)
    except ValidationError as error:
        return ConnectionCheck(False, " ".join(error.messages))
    if data.kind == "demo":
        base_url = str(settings.DEMO_MODEL_URL).rstrip("/") + "/v1"
    api_key = (data.api_key or "").strip()
    stored = provider is not None and provider.has_credential and not data.remove_key
    if not api_key and stored:
        assert provider is not None
        if provider.credential_base_url != base_url:
            return ConnectionCheck(
                False,
                "The base URL changed, so enter the API key to test it: a stored key is only "
                "ever sent to the URL it was saved with.",
            )
        try:
            api_key = credential_decrypt(provider.credential_ciphertext)
        except (CredentialDecryptError, CredentialKeyError) as error:
            return ConnectionCheck(False, str(error))
    if not api_key and provider_kind(data.kind).key_required:
        return ConnectionCheck(False, "Enter the API key to test the connection.")
    target = CheckTarget(
        kind=data.kind,
        base_url=base_url,
        api_key=api_key,
        api_version=data.api_version.strip(),
        check_url_policy=data.kind != "demo",
    )
    return async_to_sync(connection_check)(target)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _check_target(provider: Provider) -> CheckTarget:
    from agents.crypto import credential_decrypt

    api_key = credential_decrypt(provider.credential_ciphertext) if provider.has_credential else ""
    return CheckTarget(
        kind=provider.kind,
        base_url=provider_effective_base_url(provider),
        api_key=api_key,
        api_version=provider.api_version,
        check_url_policy=provider.kind != "demo",
    )


def _run_check(provider: Provider) -> ConnectionCheck:
    from agents.crypto import CredentialDecryptError, CredentialKeyError
    from agents.services import nodes as node_services

    if provider.kind == "cli":
        from agents.services.cli import cli_provider_check

        return cli_provider_check(provider.cli_config)
    if provider.kind == "ollama":
        results = node_services.provider_nodes_probe(provider)
        if not results:
            return ConnectionCheck(
                False, "Add a node first: Ollama providers reach models on nodes."
            )
        up = [probe for probe in results.values() if probe.ok]
        models = sorted({model for probe in up for model in probe.available})
        if not up:
            return ConnectionCheck(False, f"None of the {_count(len(results), 'node')} answered.")
        return ConnectionCheck(
            True,
            f"{len(up)} of {_count(len(results), 'node')} up.",
            min(p.response_ms or 0 for p in up),
            models,
        )
    try:
        target = _check_target(provider)
    except (CredentialDecryptError, CredentialKeyError) as error:
        return ConnectionCheck(False, str(error))
    return async_to_sync(connection_check)(target)


def provider_check(*, provider: Provider) -> ConnectionCheck:
    """Tests a saved provider (its nodes, for Ollama) and records the outcome and the models
    it lists on the provider; `provider` is refreshed."""
    from django.utils import timezone

    result = _run_check(provider)
    Provider.objects.filter(pk=provider.pk).update(
        last_checked_at=timezone.now(),
        last_check_ok=result.ok,
        last_check_message=result.message[:500],
        last_check_latency_ms=result.latency_ms,
        **({"models_available": result.models} if result.ok else {}),
    )
    provider.refresh_from_db()
    return result
