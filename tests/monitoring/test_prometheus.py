"""`/metrics`: refused unless configured, and its counters equal the ledger, across processes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.monitoring.factories import make_run, make_workflow
from tests.monitoring.ledger_rows import ledger_rows

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def scrape(client: Client, **headers: str) -> Any:
    return client.get("/metrics", **headers)


# --- who may scrape ------------------------------------------------------------------------------


def test_metrics_are_refused_to_everyone_until_configured(client: Client) -> None:
    response = scrape(client)

    assert response.status_code == 403
    assert "A2A_METRICS_TOKEN" in response.content.decode()


def test_a_scrape_with_the_token_is_answered_and_a_wrong_one_is_not(
    client: Client, settings: Any
) -> None:
    settings.METRICS_TOKEN = "s3cret-scrape-token"

    assert scrape(client).status_code == 401
    wrong = scrape(client, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert "s3cret" not in wrong.content.decode()
    right = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain; version=")
    assert "a2a_runs" in right.content.decode()


def test_an_allowed_network_may_scrape_without_a_token_and_others_may_not(
    client: Client, settings: Any
) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert scrape(client).status_code == 403  # the test client comes from 127.0.0.1

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.1"]
    assert scrape(client).status_code == 200
    assert scrape(client, REMOTE_ADDR="10.2.3.4").status_code == 200
    assert scrape(client, REMOTE_ADDR="192.168.1.9").status_code == 403


def test_a_malformed_allowed_network_is_a_configuration_error(settings: Any) -> None:
    from a2a_site.checks import check_metrics_networks

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "the office"]

    errors = check_metrics_networks()

    assert [error.id for error in errors] == ["a2a.E012"]
    assert "the office" in errors[0].msg


# --- what it says --------------------------------------------------------------------------------


@pytest.fixture
def scraper(client: Client, settings: Any) -> Client:
    settings.METRICS_TOKEN = "t"
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer t"
    return client


def test_model_calls_tokens_and_cost_equal_the_ledger_and_unknown_prices_stay_unknown(
    personas: Personas, scraper: Client
) -> None:
    demo = make_provider(personas.workspace)
    local = make_provider(personas.workspace, kind="ollama", name="Lab")
    ledger_rows(
        personas.workspace,
        [
            {"at": AT, "provider": demo, "latency_ms": 120},
            {"at": AT, "provider": demo, "latency_ms": 2000, "cost": Decimal("0.03")},
            {
                "at": AT,
                "provider": demo,
                "status": "failed",
                "error_kind": "rate_limited",
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost": Decimal(0),
                "latency_ms": 30,
            },
            # A price nobody knows: its tokens are counted apart, its "0" cost is not a cost.
            {
                "at": AT,
                "provider": local,
                "model": "llama3.2",
                "price_source": "unknown",
                "cost": Decimal(0),
                "prompt_tokens": 70,
                "completion_tokens": 30,
                "latency_ms": 900,
                "first_token_ms": 180,
            },
        ],
    )

    found = samples(scrape(scraper).content.decode())

    gpt = {"provider": "demo", "model": "gpt-4o-mini"}
    llama = {"provider": "ollama", "model": "llama3.2"}
    assert value(found, "a2a_model_calls_total", **gpt, status="ok") == 2
    assert value(found, "a2a_model_calls_total", **gpt, status="rate_limited") == 1
    assert value(found, "a2a_model_calls_total", **llama, status="ok") == 1
    assert value(found, "a2a_model_tokens_total", **gpt, kind="prompt") == 200
    assert value(found, "a2a_model_tokens_total", **gpt, kind="completion") == 100
    assert value(found, "a2a_model_cost_usd_total", **gpt) == pytest.approx(0.04)
    assert value(found, "a2a_model_unpriced_tokens_total", **gpt) == 0
    assert value(found, "a2a_model_unpriced_tokens_total", **llama) == 100
    assert value(found, "a2a_model_unpriced_calls_total", **llama) == 1
    # The histogram: cumulative buckets in seconds, a count and a sum.
    bucket = "a2a_model_call_duration_seconds_bucket"
    assert value(found, bucket, **gpt, le="0.05") == 1
    assert value(found, bucket, **gpt, le="0.15") == 2
    assert value(found, bucket, **gpt, le="1.5") == 2
    assert value(found, bucket, **gpt, le="2.25") == 3
    assert value(found, bucket, **gpt, le="+Inf") == 3
    assert value(found, "a2a_model_call_duration_seconds_count", **gpt) == 3
    assert value(found, "a2a_model_call_duration_seconds_sum", **gpt) == pytest.approx(2.15)
    assert value(found, "a2a_model_time_to_first_token_seconds_count", **llama) == 1
    assert ("a2a_model_time_to_first_token_seconds_count", tuple(sorted(gpt.items()))) not in found


def test_runs_are_counted_by_status_and_this_process_reports_itself(
    personas: Personas, scraper: Client
) -> None:
    from django.utils import timezone

    workflow = make_workflow(personas.workspace, "Flow")
    runs = [make_run(workflow, status=status) for status in ("succeeded", "succeeded", "failed")]
    waiting = make_run(workflow, status="waiting")
    waiting.steps.create(key="h", node_id="h", node_type="human", started_at=timezone.now())
    assert runs[0].steps.exists()  # make_run records the runs' steps

    found = samples(scrape(scraper).content.decode())

    # Only the steps of the run under way.
    active = sum(v for (name, _), v in found.items() if name == "a2a_active_run_steps")
    assert active == waiting.steps.count() >= 1
    assert value(found, "a2a_active_run_steps", status="running", type="human") == 1
    assert value(found, "a2a_runs", status="succeeded") == 2
    assert value(found, "a2a_runs", status="failed") == 1
    assert value(found, "a2a_runs", status="waiting") == 1
    assert value(found, "a2a_runs", status="queued") == 0
    # This process's own figures; processes an earlier test of this process started (a daphne
    # kept for the session) may be reporting too.
    from a2a_site.process_gauges import gauges

    memory = [
        v
        for (name, labels), v in found.items()
        if name == "a2a_process_resident_memory_bytes" and ("process", gauges.name) in labels
    ]
    assert len(memory) == 1 and memory[0] > 10 * 2**20


# --- several processes ---------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_counters_and_process_figures_are_right_across_two_worker_processes(
    personas: Personas, llm_server: Any, settings: Any, client: Client
) -> None:
    import socket
    import uuid

    from agents.models import LedgerEntry
    from tests.support.processes import start_celery_worker
    from tests.support.waiting import wait_for
    from tests.workflows.conftest import research_agents
    from workflows.graph import examples
    from workflows.models import TERMINAL_STATUSES, Run
    from workflows.services.runs import run_start
    from workflows.services.workflows import workflow_create, workflow_publish

    settings.EXECUTION_MODE = "celery"
    settings.METRICS_TOKEN = "t"
    researcher, analyst, writer = research_agents(personas)
    graph = examples.research_pipeline(str(researcher.pk), str(analyst.pk), str(writer.pk))
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="W", graph=graph
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    llm_server.set_script({"rules": [{"reply": "Noted.", "delay_ms": 100}]})
    names = [f"metrics-{index}-{uuid.uuid4().hex[:6]}" for index in range(2)]
    workers = [
        start_celery_worker(
            name, A2A_DEMO_MODEL_URL=llm_server.url, A2A_OUTBOUND_ALLOWED_HOSTS="127.0.0.1"
        )
        for name in names
    ]
    try:
        runs = [
            run_start(workflow=workflow, user=personas.owner, inputs={"topic": f"t{index}"})
            for index in range(4)
        ]

        def all_finished() -> bool:
            for worker in workers:
                worker.assert_running()
            return Run.objects.filter(
                pk__in=[run.pk for run in runs], status__in=TERMINAL_STATUSES
            ).count() == len(runs)

        wait_for(all_finished, timeout=90, what="the runs to finish")

        # The two workers by their process names: this test process reports itself as a
        # "celery" process too once an earlier test ran an executor in it.
        ours = {f"{socket.gethostname()}:{worker.process.pid}" for worker in workers}

        def both_workers_reported() -> dict[Any, float] | None:
            found = samples(scrape(client, HTTP_AUTHORIZATION="Bearer t").content.decode())
            celery = {
                dict(labels)["process"]
                for (name, labels), _ in found.items()
                if name == "a2a_process_resident_memory_bytes" and ("kind", "celery") in labels
            }
            return found if ours <= celery else None

        found = wait_for(both_workers_reported, timeout=30, what="both workers in /metrics")
    finally:
        for worker in workers:
            worker.stop()

    assert Run.objects.filter(pk__in=[run.pk for run in runs], status="succeeded").count() == 4
    calls = LedgerEntry.objects.filter(run_id__in=[run.pk for run in runs]).count()
    scraped = sum(v for (name, _), v in found.items() if name == "a2a_model_calls_total")
    assert scraped == calls == 12
    assert value(found, "a2a_runs", status="succeeded") == 4
    lags = [
        v
        for (name, labels), v in found.items()
        if name == "a2a_process_event_loop_lag_seconds" and dict(labels)["process"] in ours
    ]
    # A worker's loop starts with its first run; one that received none has no lag to report.
    assert lags and all(0 <= lag < 5 for lag in lags)
    assert value(found, "a2a_redis_up") == 1
    assert value(found, "a2a_celery_queue_messages", queue="celery") == 0


def test_a_late_call_on_a_past_day_shows_at_the_next_scrape(
    personas: Personas, scraper: Client
) -> None:
    """The sums of past days are kept between scrapes; a change to such a day retires them."""
    provider = make_provider(personas.workspace)
    ledger_rows(personas.workspace, [{"at": AT, "provider": provider}])
    gpt = {"provider": "demo", "model": "gpt-4o-mini", "status": "ok"}
    assert value(samples(scrape(scraper).content.decode()), "a2a_model_calls_total", **gpt) == 1
    assert value(samples(scrape(scraper).content.decode()), "a2a_model_calls_total", **gpt) == 1

    ledger_rows(personas.workspace, [{"at": AT, "provider": provider}])

    assert value(samples(scrape(scraper).content.decode()), "a2a_model_calls_total", **gpt) == 2
