"""OpenTelemetry traces of runs, steps and model calls — off unless `A2A_OTEL_ENDPOINT` is set.

A run is one trace: its span (`run`) holds one span per step (`step <node type>`), which holds
one span per model call attempt (`chat <model>`, kind CLIENT), with the GenAI semantic
conventions' attributes: `gen_ai.operation.name`, `gen_ai.provider.name` (and the older
`gen_ai.system`), `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens`, `gen_ai.response.finish_reasons`, and `error.type` for a failed
call. Prompts and answers are never put on spans (they may hold secrets and personal data); the
run id, step key and ledger call id are, so a trace leads back to the studio's own records.

Off, it costs one global read per hook: the OpenTelemetry SDK is not even imported, and each
hook returns a shared no-op context. On, spans are batched and exported over OTLP/HTTP
(protobuf) by the SDK's background thread, so no hook waits for the network. A model call's span
is written when the call ends, with the call's measured start and end, from the one place the
gateway reports every attempt's outcome.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

logger = logging.getLogger(__name__)

SCOPE: Final = "a2a_studio"
_UNSET: Final = object()
_tracer: Any = _UNSET  # _UNSET until first use, then a Tracer or None (off)
_provider: TracerProvider | None = None
_lock = threading.Lock()
_OFF: Final = contextlib.nullcontext()


def tracing_configure(
    *, endpoint: str = "", exporter: SpanExporter | None = None, batch: bool = True
) -> Tracer | None:
    """Installs this process's tracer: exporting to `exporter`, else over OTLP/HTTP to
    `endpoint` (`…/v1/traces` is appended), else off. Tests pass an in-memory exporter."""
    global _tracer, _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
            _provider = None
        if exporter is None and not endpoint:
            _tracer = None
            return None
        from django.conf import settings
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
        provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": getattr(settings, "OTEL_SERVICE_NAME", "a2a-studio")
                    if settings.configured
                    else "a2a-studio"
                }
            )
        )
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        _provider = provider
        _tracer = provider.get_tracer(SCOPE)
        return _tracer


def tracing_flush(timeout_ms: int = 5000) -> bool:
    return _provider.force_flush(timeout_ms) if _provider is not None else True


def _get() -> Tracer | None:
    tracer = _tracer
    if tracer is _UNSET:
        from django.conf import settings

        # The gateway also runs without Django (its benchmark): no settings, no tracing.
        endpoint = getattr(settings, "OTEL_ENDPOINT", "") if settings.configured else ""
        tracer = tracing_configure(endpoint=endpoint)
    return tracer


def run_span(run_id: str, *, resumed: bool = False) -> contextlib.AbstractContextManager[Any]:
    """Around one execution of a run (a resumed run is a new trace linked by its run id)."""
    tracer = _get()
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span("run", attributes={"a2a.run.id": run_id})


def step_span(run_id: str, key: str, node_id: str, node_type: str, attempt: int) -> Any:
    tracer = _get()
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(
        f"step {node_type}",
        attributes={
            "a2a.run.id": run_id,
            "a2a.step.key": key,
            "a2a.node.id": node_id,
            "a2a.node.type": node_type,
            "a2a.step.attempt": attempt,
        },
    )


def model_call_record(
    *,
    provider_kind: str,
    model: str,
    call_id: str,
    latency_ms: float,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    finish_reason: str | None = None,
    response_model: str | None = None,
    error_kind: str | None = None,
    cost: Any = None,
    price_source: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> None:
    """Writes the span of one finished model call attempt (nothing when tracing is off)."""
    tracer = _get()
    if tracer is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    end = time.time_ns()
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_kind,
        "gen_ai.system": provider_kind,
        "gen_ai.request.model": model,
        "a2a.call.id": call_id,
    }
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = temperature
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    if response_model:
        attributes["gen_ai.response.model"] = response_model
    if input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    if finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [finish_reason]
    if price_source:
        attributes["a2a.price_source"] = price_source
        if price_source != "unknown" and cost is not None:
            attributes["a2a.cost_usd"] = float(cost)  # an unknown price has no cost attribute
    if error_kind:
        attributes["error.type"] = error_kind
    span = tracer.start_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=end - int(latency_ms * 1_000_000),
    )
    if error_kind:
        span.set_status(Status(StatusCode.ERROR, error_kind))
    span.end(end_time=end)
