"""The LLM gateway: the one place that talks to model providers.

Pure async Python (no Django). The lean lane speaks the OpenAI protocol over a shared aiohttp
session; the full lane imports litellm lazily, only when a full-lane deployment is called.
"""

from .errors import LLMError, classify_http_error, classify_litellm_exception
from .gateway import Gateway, configure_gateways, gateway_close_for_loop, gateway_for_loop
from .kinds import KINDS, Lane, ProviderKind, provider_kind
from .ledger import InMemoryLedger, LedgerOutcome, LedgerSink, LedgerStart
from .pricing import price_usage
from .resilience import CLOSED, HALF_OPEN, OPEN, Resilience
from .types import (
    Attempt,
    Deployment,
    LLMRequest,
    LLMResult,
    Route,
    RoutePlan,
    ToolCall,
    Usage,
)

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "KINDS",
    "OPEN",
    "Attempt",
    "Deployment",
    "Gateway",
    "InMemoryLedger",
    "LLMError",
    "LLMRequest",
    "LLMResult",
    "Lane",
    "LedgerOutcome",
    "LedgerSink",
    "LedgerStart",
    "ProviderKind",
    "Resilience",
    "Route",
    "RoutePlan",
    "ToolCall",
    "Usage",
    "classify_http_error",
    "classify_litellm_exception",
    "configure_gateways",
    "gateway_close_for_loop",
    "gateway_for_loop",
    "price_usage",
    "provider_kind",
]
