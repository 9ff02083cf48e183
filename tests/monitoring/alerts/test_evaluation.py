"""Rules fire once and resolve once, whatever the number of evaluators.

Every test here runs in both passes: SQLite (embedded) and PostgreSQL (services).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from a2a_site.accounts.models import Workspace
from agents.budgets.enforcement import SpendScope, budgets_reserve, budgets_settle
from agents.budgets.models import Budget
from agents.models import LedgerEntry, OllamaNode
from agents.rollups import rollups_rebuild
from monitoring.alerts.evaluation import (
    PERIODIC_KINDS,
    alert_defaults_ensure,
    alerts_evaluate,
    incident_acknowledge,
    incident_resolve,
    rule_evaluate,
)
from monitoring.alerts.kinds import DEFAULT_RULES
from monitoring.alerts.models import (
    AlertIncident,
    AlertRule,
    IncidentState,
    Notification,
    RuleKind,
    WorkspaceAlerts,
)
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.monitoring.alerts.conftest import ledger_call
from workflows.models import Run, RunStatus, Worker


def quiet(workspace: Workspace) -> None:
    """The workspace without its default rules, so a test watches only its own rule."""
    alert_defaults_ensure(workspace=workspace)
    AlertRule.objects.filter(workspace=workspace).delete()


def make_rule(workspace: Workspace, kind: str, threshold: str, **extra: Any) -> AlertRule:
    quiet(workspace)
    return AlertRule.objects.create(
        workspace=workspace, name=f"{kind} rule", kind=kind, threshold=Decimal(threshold), **extra
    )


def later(moment: datetime) -> datetime:
    return moment + timedelta(seconds=settings.ALERTS_EVALUATE_SECONDS)


def events_of(rule: AlertRule) -> list[str]:
    return list(
        Notification.objects.filter(incident__rule=rule)
        .order_by("id")
        .values_list("event", flat=True)
    )


def make_run(workspace: Workspace, user: Any, **fields: Any) -> Run:
    from workflows.services.workflows import EMPTY_GRAPH, workflow_create, workflow_publish

    workflow = workflow_create(workspace=workspace, user=user, name="Flow", graph=EMPTY_GRAPH)
    version = workflow_publish(workflow=workflow, user=user)
    return Run.objects.create(workspace=workspace, workflow=workflow, version=version, **fields)


# --- each kind, fired and resolved once -----------------------------------------------------------


@dataclass
class Scenario:
    kind: str
    threshold: str
    trouble: Callable[[Personas, datetime], Any]  # makes the measure cross the threshold
    recovery: Callable[[Personas, datetime, Any], datetime]  # undoes it; returns when to look
    window_minutes: int = 15


def _errors(p: Personas, now: datetime) -> None:
    for n in range(10):
        ledger_call(p.workspace, at=now - timedelta(minutes=1), failed=n < 3)


def _errors_gone(p: Personas, now: datetime, _: Any) -> datetime:
    after = now + timedelta(minutes=20)
    for _n in range(10):
        ledger_call(p.workspace, at=after - timedelta(minutes=1))
    return after


def _slow(p: Personas, now: datetime) -> None:
    for _n in range(10):
        ledger_call(p.workspace, at=now - timedelta(minutes=2), latency_ms=45_000)


def _fast_again(p: Personas, now: datetime, _: Any) -> datetime:
    after = now + timedelta(minutes=20)
    for _n in range(10):
        ledger_call(p.workspace, at=after - timedelta(minutes=1), latency_ms=900)
    return after


def _spending(p: Personas, now: datetime) -> None:
    for _n in range(3):
        ledger_call(p.workspace, at=now - timedelta(minutes=1), cost="0.5")
    # A call without a known price: never counted as $0, nor as anything else.
    ledger_call(
        p.workspace, at=now - timedelta(minutes=1), price_source=LedgerEntry.PriceSource.UNKNOWN
    )


def _spending_stops(p: Personas, now: datetime, _: Any) -> datetime:
    return now + timedelta(minutes=20)


def _spike(p: Personas, now: datetime) -> None:
    for hour in range(1, 25):  # the usual: a cent an hour over the day before
        ledger_call(p.workspace, at=now - timedelta(hours=hour, minutes=30), cost="0.01")
    ledger_call(p.workspace, at=now - timedelta(minutes=5), cost="0.10")
    rollups_rebuild(p.workspace.pk)  # the usual is read from the dashboards' rollups


def _spike_over(p: Personas, now: datetime, _: Any) -> datetime:
    return now + timedelta(minutes=61)


def _heavy_worker(p: Personas, now: datetime) -> Worker:
    return Worker.objects.create(
        name="celery@big",
        kind=Worker.Kind.CELERY,
        hostname="big",
        pid=42,
        started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(seconds=5),
        rss_bytes=2 * 2**30,
    )


def _worker_lighter(p: Personas, now: datetime, worker: Worker) -> datetime:
    after = now + timedelta(minutes=20)
    Worker.objects.filter(pk=worker.pk).update(rss_bytes=300 * 2**20, last_seen_at=after)
    return after


def _node_down(p: Personas, now: datetime) -> OllamaNode:
    provider = make_provider(p.workspace, kind="ollama", name="Fleet")
    return OllamaNode.objects.create(
        provider=provider, name="gpu-1", base_url="http://10.0.0.5:11434", status="down"
    )


def _node_up(p: Personas, now: datetime, node: OllamaNode) -> datetime:
    OllamaNode.objects.filter(pk=node.pk).update(status="up")
    return now + timedelta(minutes=20)


def _waiting_long(p: Personas, now: datetime) -> Run:
    since = (now - timedelta(hours=2)).isoformat()
    return make_run(
        p.workspace,
        p.owner,
        status=RunStatus.WAITING,
        waiting_request={"step_key": "approve", "since": since},
    )


def _answered(p: Personas, now: datetime, run: Run) -> datetime:
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, waiting_request=None)
    return now + timedelta(minutes=20)


SCENARIOS = {
    RuleKind.ERROR_RATE: Scenario(RuleKind.ERROR_RATE, "10", _errors, _errors_gone),
    RuleKind.LATENCY_P95: Scenario(RuleKind.LATENCY_P95, "30", _slow, _fast_again),
    RuleKind.SPEND_RATE: Scenario(RuleKind.SPEND_RATE, "1", _spending, _spending_stops),
    RuleKind.SPEND_SPIKE: Scenario(RuleKind.SPEND_SPIKE, "3", _spike, _spike_over, 60),
    RuleKind.WORKER_MEMORY: Scenario(
        RuleKind.WORKER_MEMORY, "1024", _heavy_worker, _worker_lighter, 5
    ),
    RuleKind.OLLAMA_DOWN: Scenario(RuleKind.OLLAMA_DOWN, "0", _node_down, _node_up),
    RuleKind.RUN_WAITING: Scenario(RuleKind.RUN_WAITING, "60", _waiting_long, _answered),
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_each_kind_fires_once_and_resolves_once(
    kind: str, personas: Personas, now: datetime
) -> None:
    scenario = SCENARIOS[kind]
    rule = make_rule(
        personas.workspace, kind, scenario.threshold, window_minutes=scenario.window_minutes
    )
    made = scenario.trouble(personas, now)

    alerts_evaluate(now=now)
    alerts_evaluate(now=later(now))  # still true: nothing new

    incident = AlertIncident.objects.get(rule=rule)
    assert incident.state == IncidentState.OPEN
    assert events_of(rule) == ["alert.fired"]

    recovered_at = scenario.recovery(personas, now, made)
    alerts_evaluate(now=recovered_at)
    alerts_evaluate(now=later(recovered_at))  # still fine: nothing new

    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert incident.resolved_by is None and incident.resolved_at == recovered_at
    assert AlertIncident.objects.filter(rule=rule).count() == 1
    assert events_of(rule) == ["alert.fired", "alert.resolved"]


def test_a_figure_that_says_nothing_changes_nothing(personas: Personas, now: datetime) -> None:
    rule = make_rule(personas.workspace, RuleKind.ERROR_RATE, "10")
    for _n in range(2):  # below the rule's five calls: no verdict, not "0 %"
        ledger_call(personas.workspace, at=now - timedelta(minutes=1), failed=True)

    alerts_evaluate(now=now)

    rule.refresh_from_db()
    assert not AlertIncident.objects.filter(rule=rule).exists()
    assert rule.last_value is None
    assert "needs 5" in rule.last_note


def test_spend_counts_unknown_prices_apart(personas: Personas, now: datetime) -> None:
    rule = make_rule(personas.workspace, RuleKind.SPEND_RATE, "1")
    _spending(personas, now)

    alerts_evaluate(now=now)

    incident = AlertIncident.objects.get(rule=rule)
    assert incident.value == Decimal("1.5")
    assert "1 call(s) with an unknown price are not counted" in incident.summary


# --- defaults -------------------------------------------------------------------------------------


def test_a_new_workspace_gets_the_default_rules_once(personas: Personas, now: datetime) -> None:
    alerts_evaluate(now=now)
    alerts_evaluate(now=later(now))

    rules = AlertRule.objects.filter(workspace=personas.workspace)
    assert sorted(rules.values_list("name", flat=True)) == sorted(d.name for d in DEFAULT_RULES)
    assert rules.filter(is_default=True).count() == len(DEFAULT_RULES)
    error_rate = rules.get(kind=RuleKind.ERROR_RATE)
    assert error_rate.threshold == 10 and error_rate.window_minutes == 15
    assert rules.get(kind=RuleKind.LATENCY_P95).threshold == 30
    assert rules.get(kind=RuleKind.WORKER_MEMORY).threshold == 1024

    # A default someone deleted stays deleted.
    error_rate.delete()
    alerts_evaluate(now=later(later(now)))
    assert not rules.filter(kind=RuleKind.ERROR_RATE).exists()
    assert WorkspaceAlerts.objects.filter(workspace=personas.workspace).count() == 1


def test_default_rules_catch_an_error_burst_without_configuration(
    personas: Personas, now: datetime
) -> None:
    _errors(personas, now)

    alerts_evaluate(now=now)

    incident = AlertIncident.objects.get(workspace=personas.workspace)
    assert incident.rule.name == "Error rate above 10 %"
    assert "3 of 10 calls failed" in incident.summary


# --- exactly once ---------------------------------------------------------------------------------


def _together(count: int, work: Callable[[], Any]) -> list[Any]:
    """Runs `work` in `count` threads released at the same moment; returns what each returned."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    return results


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluators_evaluate_each_rule_once(
    personas: Personas, now: datetime
) -> None:
    rule = make_rule(personas.workspace, RuleKind.ERROR_RATE, "10")
    _errors(personas, now)

    counts = _together(2, lambda: alerts_evaluate(now=now))

    # Each due rule (this one, and the defaults of the other workspace) was evaluated by one of
    # the two: the other found it claimed.
    due = AlertRule.objects.filter(enabled=True, kind__in=PERIODIC_KINDS).count()
    assert sum(counts) == due
    assert AlertIncident.objects.filter(rule=rule).count() == 1
    assert events_of(rule) == ["alert.fired"]


@pytest.mark.django_db(transaction=True)
def test_evaluations_that_both_see_trouble_open_one_incident(
    personas: Personas, now: datetime
) -> None:
    # Past the claim (a rule edited between two rounds is evaluated by both): the unique index
    # on unresolved incidents still lets only one through.
    rule = make_rule(personas.workspace, RuleKind.ERROR_RATE, "10")
    _errors(personas, now)

    opened = _together(3, lambda: rule_evaluate(rule=rule, now=now))

    assert sum(incident is not None for incident in opened) == 1
    assert AlertIncident.objects.filter(rule=rule).count() == 1
    assert events_of(rule) == ["alert.fired"]


# --- people ---------------------------------------------------------------------------------------


def test_acknowledge_then_resolve_by_a_person(personas: Personas, now: datetime) -> None:
    rule = make_rule(personas.workspace, RuleKind.ERROR_RATE, "10")
    _errors(personas, now)
    alerts_evaluate(now=now)
    incident = AlertIncident.objects.get(rule=rule)

    assert incident_acknowledge(incident=incident, user=personas.editor)
    assert not incident_acknowledge(incident=incident, user=personas.owner)
    incident.refresh_from_db()
    assert incident.state == IncidentState.ACKNOWLEDGED
    assert incident.acknowledged_by == personas.editor

    # Acknowledged still counts as unresolved: the next round does not open another.
    alerts_evaluate(now=later(now))
    assert AlertIncident.objects.filter(rule=rule).count() == 1

    assert incident_resolve(incident=incident, user=personas.editor)
    assert not incident_resolve(incident=incident, user=personas.owner)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED and incident.resolved_by == personas.editor
    assert events_of(rule) == ["alert.fired", "alert.resolved"]


# --- budgets ---------------------------------------------------------------------------------


def _spend(personas: Personas, cost: str, now: datetime) -> None:
    """One call reserved and settled against the workspace's budgets, as the gateway does."""
    call_id = str(uuid.uuid4())
    budgets_reserve(
        call_id=call_id,
        scope=SpendScope(workspace_id=str(personas.workspace.pk)),
        worst_case=Decimal("0.01"),
        model="gpt-4o-mini",
        now=now,
    )
    budgets_settle(call_id, Decimal(cost), "price_list")


@pytest.mark.django_db(transaction=True)
def test_a_budget_crossing_its_threshold_alerts_once_per_period(personas: Personas) -> None:
    # The default rule fires at 80 %; the budgets announce 50, 80 and 100 % after each commit.
    alert_defaults_ensure(workspace=personas.workspace)
    rule = AlertRule.objects.get(workspace=personas.workspace, kind=RuleKind.BUDGET)
    now = timezone.now()
    Budget.objects.create(
        workspace=personas.workspace, name="Lab spend", period="day", hard_limit=Decimal("1")
    )

    _spend(personas, "0.55", now)
    assert not AlertIncident.objects.filter(rule=rule).exists()  # 50 %: below the rule
    _spend(personas, "0.30", now)  # 85 %
    _spend(personas, "0.30", now)  # 115 %: the period's incident is open already

    incident = AlertIncident.objects.get(rule=rule)
    assert "Lab spend reached 80 % of its limit ($0.85 of $1)" in incident.summary
    assert events_of(rule) == ["alert.fired"]

    # The same period: still open. The next day, spend starts again: resolved, once.
    alerts_evaluate(now=now)
    assert AlertIncident.objects.get(rule=rule).state == IncidentState.OPEN
    alerts_evaluate(now=now + timedelta(days=1))
    alerts_evaluate(now=now + timedelta(days=1, minutes=5))
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert "a new period began" in incident.resolved_summary
    assert events_of(rule) == ["alert.fired", "alert.resolved"]


# --- scheduling -----------------------------------------------------------------------------------


def test_beat_and_the_embedded_executor_both_run_the_rounds(
    personas: Personas, now: datetime
) -> None:
    from a2a_site.celery import app
    from monitoring.tasks import alerts_round
    from workflows.housekeeping import housekeeping_duties

    entry = settings.CELERY_BEAT_SCHEDULE["alerts-round"]
    assert entry["task"] == alerts_round.name and entry["task"] in app.tasks
    (duty,) = [duty for duty in housekeeping_duties() if duty.name == "alerts"]
    assert duty.every_seconds() == settings.ALERTS_ROUND_SECONDS

    _errors(personas, now)
    duty.run()  # what either scheduler calls

    assert AlertIncident.objects.filter(workspace=personas.workspace).count() == 1
