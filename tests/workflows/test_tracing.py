"""OpenTelemetry: a run is a trace of its steps and model calls, exported as OTLP when asked."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from a2a_site import tracing
from agents.models import LedgerEntry
from tests.conftest import Personas
from tests.support.processes import ROOT
from tests.workflows.conftest import finished
from workflows.services.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.tracing_configure(exporter=exporter, batch=False)
    yield exporter
    tracing.tracing_configure()  # off again


def test_a_run_is_one_trace_of_its_steps_and_model_calls(
    personas: Personas, pipeline: Any, executor: Any, spans: InMemorySpanExporter
) -> None:
    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))
    assert run.status == "succeeded", run.reason

    found = spans.get_finished_spans()
    (run_span,) = [span for span in found if span.name == "run"]
    assert run_span.attributes["a2a.run.id"] == str(run.pk)
    assert run_span.attributes["a2a.run.status"] == "succeeded"
    trace_id = run_span.context.trace_id
    assert {span.context.trace_id for span in found} == {trace_id}
    steps = {span.context.span_id: span for span in found if span.name.startswith("step ")}
    assert sorted(span.attributes["a2a.node.type"] for span in steps.values()).count("agent") == 3
    assert all(span.parent.span_id == run_span.context.span_id for span in steps.values())

    calls = [span for span in found if span.name.startswith("chat ")]
    ledger = {str(row.call_id): row for row in LedgerEntry.objects.filter(run_id=run.pk)}
    assert len(calls) == len(ledger) == 3
    for call in calls:
        assert call.kind is SpanKind.CLIENT
        assert call.parent.span_id in steps  # each call sits under the step that made it
        assert steps[call.parent.span_id].attributes["a2a.node.type"] == "agent"
        row = ledger[call.attributes["a2a.call.id"]]
        attributes = call.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "demo"
        assert attributes["gen_ai.request.model"] == row.model
        assert attributes["gen_ai.usage.input_tokens"] == row.prompt_tokens > 0
        assert attributes["gen_ai.usage.output_tokens"] == row.completion_tokens > 0
        assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)
        assert call.status.status_code is StatusCode.UNSET
        assert (call.end_time - call.start_time) / 1e6 == pytest.approx(row.latency_ms, abs=2)
        # Nothing of the conversation itself.
        assert not any("tea" in str(value) for value in attributes.values())


def test_a_failed_call_carries_its_error_kind(
    personas: Personas, pipeline: Any, executor: Any, spans: InMemorySpanExporter, llm_server: Any
) -> None:
    llm_server.set_script({"rules": [{"fault": "auth"}]})

    run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))

    assert run.status == "failed"
    calls = [span for span in spans.get_finished_spans() if span.name.startswith("chat ")]
    assert calls
    assert calls[0].attributes["error.type"] == "auth"
    assert calls[0].status.status_code is StatusCode.ERROR
    assert "gen_ai.usage.input_tokens" not in calls[0].attributes


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector in miniature: keeps what it is sent, decoded from protobuf."""

    received: list[Any]

    def do_POST(self) -> None:  # noqa: N802 - the handler's protocol
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.received.append((self.path, self.headers["Content-Type"], request))  # type: ignore[attr-defined]
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_reach_an_otlp_http_receiver_when_the_endpoint_is_set(
    personas: Personas, pipeline: Any, executor: Any, receiver: Any, settings: Any
) -> None:
    settings.OTEL_ENDPOINT = f"http://127.0.0.1:{receiver.server_address[1]}"
    settings.OTEL_SERVICE_NAME = "studio-under-test"
    tracing._tracer = tracing._UNSET  # read the settings afresh, as a new process does
    try:
        run = finished(run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"}))
        assert tracing.tracing_flush()
    finally:
        tracing.tracing_configure()

    assert run.status == "succeeded"
    assert receiver.received
    paths = {path for path, _, _ in receiver.received}
    assert paths == {"/v1/traces"}
    assert {kind for _, kind, _ in receiver.received} == {"application/x-protobuf"}
    spans, services = [], set()
    for _, _, request in receiver.received:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    assert services == {"studio-under-test"}
    calls = [span for span in spans if span.name.startswith("chat ")]
    assert len(calls) == 3
    attributes = {a.key: a.value for a in calls[0].attributes}
    assert attributes["gen_ai.provider.name"].string_value == "demo"
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    assert [
        v.string_value for v in attributes["gen_ai.response.finish_reasons"].array_value.values
    ] == ["stop"]
    assert len({span.trace_id for span in spans}) == 1


def test_tracing_off_loads_no_sdk_and_hands_out_one_shared_no_op() -> None:
    script = (
        "import django, sys; django.setup();"
        "from a2a_site import tracing;"
        "assert tracing.run_span('r') is tracing.step_span('r', 'k', 'n', 't', 1);"
        "tracing.model_call_record(provider_kind='demo', model='m', call_id='c', latency_ms=1);"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules), 'sdk loaded'"
    )
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.services
@pytest.mark.slow
def test_a_worker_process_configured_by_its_environment_exports_its_runs(
    personas: Personas, pipeline: Any, receiver: Any, llm_server: Any, settings: Any
) -> None:
    import uuid

    from tests.support.processes import start_celery_worker
    from tests.support.waiting import wait_for
    from workflows.models import Run

    settings.EXECUTION_MODE = "celery"
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    worker = start_celery_worker(
        f"traced-{uuid.uuid4().hex[:6]}",
        A2A_DEMO_MODEL_URL=llm_server.url,
        A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1",
        A2A_OTEL_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME="studio-worker",
    )
    try:
        run = run_start(workflow=pipeline, user=personas.owner, inputs={"topic": "tea"})
        wait_for(
            lambda: (
                (worker.assert_running(), Run.objects.get(pk=run.pk).status)[1]
                in ("succeeded", "failed")
            ),
            timeout=60,
            what="the run to finish",
        )
    finally:
        worker.stop()  # a warm shutdown flushes what the batch still holds

    spans = [
        span
        for _, _, request in receiver.received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    names = sorted(span.name for span in spans)
    assert names.count("run") == 1
    assert len([name for name in names if name.startswith("chat ")]) == 3
