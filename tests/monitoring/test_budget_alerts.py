"""Budgets' thresholds reach the alerts: a budget rule opens one incident when spend crosses it."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from agents.budgets.enforcement import SpendScope, budgets_reserve, budgets_settle
from agents.budgets.models import Budget
from monitoring.alerts.evaluation import alert_defaults_ensure
from monitoring.alerts.models import AlertIncident, AlertRule, Notification, RuleKind
from tests.conftest import Personas

pytestmark = pytest.mark.django_db(transaction=True)


def _spend(personas: Personas, cost: str) -> None:
    call_id = str(uuid.uuid4())
    budgets_reserve(
        call_id=call_id,
        scope=SpendScope(workspace_id=str(personas.workspace.pk)),
        worst_case=Decimal("0.01"),
    )
    budgets_settle(call_id, Decimal(cost), "price_list")


def test_a_budget_crossing_a_rules_threshold_opens_one_incident(personas: Personas) -> None:
    alert_defaults_ensure(workspace=personas.workspace)
    AlertRule.objects.filter(workspace=personas.workspace).delete()
    rule = AlertRule.objects.create(
        workspace=personas.workspace, name="Budget 80 %", kind=RuleKind.BUDGET, threshold=80
    )
    budget = Budget.objects.create(
        workspace=personas.workspace, name="Team", period="month", hard_limit=Decimal("10")
    )

    _spend(personas, "6")  # 60 %: the 50 % announcement, below the rule
    assert not AlertIncident.objects.exists()
    _spend(personas, "2.5")  # 85 %
    _spend(personas, "3")  # 115 %: the incident is open already

    incident = AlertIncident.objects.get(rule=rule)
    # One incident per budget and period: the subject names both.
    assert incident.subject.startswith(f"budget:{budget.pk}:")
    assert "Team reached 80 % of its limit ($8.5 of $10" in incident.summary
    assert Notification.objects.filter(incident=incident).count() == 1
