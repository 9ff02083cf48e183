"""Provider kinds: how each is reached, what it needs, and which lane of the gateway serves it.

The lean lane speaks the OpenAI wire protocol over our shared aiohttp session (cheap per call);
the full lane goes through `litellm.acompletion` for every other protocol. Forms, the gateway and
the connection test all read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lane(StrEnum):
    LEAN = "lean"
    FULL = "full"
    CLI = "cli"


@dataclass(frozen=True)
class ProviderKind:
    value: str
    label: str
    lane: Lane
    # LiteLLM's provider prefix: names models for pricing and for the full lane.
    litellm_provider: str
    default_base_url: str = ""
    base_url_required: bool = False
    key_required: bool = True
    api_version_required: bool = False
    local: bool = False  # usually on a private address: needs an allow-listed host
    help: str = ""


KINDS: dict[str, ProviderKind] = {
    kind.value: kind
    for kind in (
        ProviderKind(
            "openai",
            "OpenAI",
            Lane.LEAN,
            "openai",
            "https://api.openai.com/v1",
            help="Models such as gpt-4o-mini. Needs an API key from platform.openai.com.",
        ),
        ProviderKind(
            "anthropic",
            "Anthropic",
            Lane.FULL,
            "anthropic",
            "https://api.anthropic.com",
            help="Claude models. Needs an API key from console.anthropic.com.",
        ),
        ProviderKind(
            "azure",
            "Azure OpenAI",
            Lane.LEAN,
            "azure",
            base_url_required=True,
            api_version_required=True,
            help="Your resource's endpoint, e.g. https://NAME.openai.azure.com; the model field "
            "names the deployment.",
        ),
        ProviderKind(
            "gemini",
            "Google Gemini",
            Lane.FULL,
            "gemini",
            "https://generativelanguage.googleapis.com",
            help="Gemini models through Google AI Studio keys.",
        ),
        ProviderKind(
            "mistral",
            "Mistral",
            Lane.LEAN,
            "mistral",
            "https://api.mistral.ai/v1",
            help="Mistral's hosted models.",
        ),
        ProviderKind(
            "groq",
            "Groq",
            Lane.LEAN,
            "groq",
            "https://api.groq.com/openai/v1",
            help="Fast inference of open models.",
        ),
        ProviderKind(
            "openrouter",
            "OpenRouter",
            Lane.LEAN,
            "openrouter",
            "https://openrouter.ai/api/v1",
            help="Hundreds of models behind one key.",
        ),
        ProviderKind(
            "openai_compatible",
            "OpenAI-compatible endpoint",
            Lane.LEAN,
            "openai",
            base_url_required=True,
            key_required=False,
            help="vLLM, LM Studio, a LiteLLM proxy or any server speaking the OpenAI API; the "
            "base URL usually ends in /v1.",
        ),
        ProviderKind(
            "ollama",
            "Ollama",
            Lane.LEAN,
            "ollama",
            base_url_required=True,
            key_required=False,
            local=True,
            help="One or many Ollama nodes; requests go to the healthy node that holds the model.",
        ),
        ProviderKind(
            "demo",
            "Offline demo model",
            Lane.LEAN,
            "openai",
            key_required=False,
            local=True,
            help="Ships with A2A Studio: plausible replies, no network, no cost.",
        ),
        ProviderKind(
            "cli",
            "Command-line agent",
            Lane.CLI,
            "anthropic",
            key_required=False,
            help="Runs an allow-listed command such as Claude Code in headless mode for each step.",
        ),
    )
}


def provider_kind(value: str) -> ProviderKind:
    try:
        return KINDS[value]
    except KeyError:
        raise ValueError(f"Unknown provider kind {value!r}.") from None
