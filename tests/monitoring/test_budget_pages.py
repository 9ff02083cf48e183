"""The budget pages: spend against the limits, forecast and history; editors change budgets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.budgets.models import Budget, BudgetPeriod
from agents.budgets.periods import period_bounds
from tests.agents.factories import make_agent
from tests.conftest import Personas

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Research",
    "scope": "workspace",
    "period": "day",
    "time_zone": "Europe/Paris",
    "soft_limit": "4",
    "hard_limit": "5",
    "on_exceed": "pause",
}


def test_a_newcomer_sees_what_budgets_are_for(personas: Personas, client_for: Any) -> None:
    page = client_for(personas.editor).get(reverse("budget_list")).content.decode()
    assert 'data-testid="empty-budgets"' in page
    assert "Create your first budget" in page
    viewer_page = client_for(personas.viewer).get(reverse("budget_list")).content.decode()
    assert "Ask an editor or owner" in viewer_page


def test_an_editor_creates_a_budget_on_an_agent(personas: Personas, client_for: Any) -> None:
    agent = make_agent(personas.workspace, name="Scout")
    response = client_for(personas.editor).post(
        reverse("budget_create"), {**FORM, "scope": "agent", "agent": str(agent.pk)}
    )

    budget = Budget.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("budget_detail", args=[budget.pk])
    assert (budget.scope, budget.target, budget.workspace) == (
        "agent",
        str(agent.pk),
        personas.workspace,
    )
    assert (budget.soft_limit, budget.hard_limit, budget.on_exceed) == (4, 5, "pause")
    assert budget.time_zone == "Europe/Paris" and budget.created_by == personas.editor
    page = client_for(personas.viewer).get(reverse("budget_list")).content.decode()
    assert "Agent “Scout”" in page and "$5.00" in page


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": " "}, "name", "Give the budget a name"),
        ({"scope": "workflow"}, "workflow", "Choose the workflow it covers"),
        ({"hard_limit": "", "soft_limit": ""}, "hard_limit", "Set a soft limit, a hard limit"),
        ({"soft_limit": "9"}, "soft_limit", "make it the lower of the two"),
        ({"hard_limit": "-1"}, "hard_limit", "greater than or equal to 0"),
        ({"hard_limit": "lots"}, "hard_limit", "Enter a number"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "is not a time zone name"),
        ({"period": "fortnight"}, "period", "Select a valid choice"),
        ({"scope": "agent", "agent": "not-an-agent"}, "agent", "Select a valid choice"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_saved(
    personas: Personas, client_for: Any, change: dict[str, str], field: str, message: str
) -> None:
    response = client_for(personas.editor).post(reverse("budget_create"), {**FORM, **change})

    assert response.status_code == 200
    assert message in str(response.context["form"].errors[field])
    assert not Budget.objects.exists()


def test_an_agent_of_another_workspace_cannot_be_budgeted_here(
    personas: Personas, client_for: Any
) -> None:
    foreign = make_agent(personas.other_workspace, name="Theirs")
    response = client_for(personas.editor).post(
        reverse("budget_create"), {**FORM, "scope": "agent", "agent": str(foreign.pk)}
    )
    assert response.status_code == 200 and not Budget.objects.exists()


def _budget(personas: Personas, **fields: Any) -> Budget:
    defaults: dict[str, Any] = {"name": "Lab", "period": "day", "hard_limit": Decimal("10")}
    return Budget.objects.create(workspace=personas.workspace, **{**defaults, **fields})


def test_the_page_shows_spend_forecast_and_history(personas: Personas, client_for: Any) -> None:
    budget = _budget(personas, soft_limit=Decimal("2"))
    now = timezone.now()
    start, end = period_bounds("day", "UTC", now)
    BudgetPeriod.objects.create(
        budget=budget, starts_at=start, ends_at=end, spent=Decimal("3"), calls=7, unpriced_calls=2
    )
    yesterday = start - timedelta(days=1)
    BudgetPeriod.objects.create(
        budget=budget, starts_at=yesterday, ends_at=start, spent=Decimal("9.5"), calls=40
    )

    page = client_for(personas.viewer).get(reverse("budget_detail", args=[budget.pk]))
    html = page.content.decode()

    assert page.status_code == 200
    assert "$3.00" in html and "30 % of $10.00" in html
    assert "over the soft limit" in html
    assert "2 calls whose price is not known" in html
    assert "$9.50" in html and "95 %" in html  # yesterday, in the history
    row = page.context["row"]
    elapsed = (now - start) / (end - start)
    if elapsed >= 0.02:
        assert row.forecast == pytest.approx(Decimal(3) / Decimal(elapsed), rel=Decimal("0.01"))
    else:
        assert "Too early" in html
    assert "Edit" not in html.split("<h1>")[1].split("</div>")[1]  # viewers may not edit


def test_an_editor_raises_the_limit_and_deletes_the_budget(
    personas: Personas, client_for: Any
) -> None:
    budget = _budget(personas)
    client = client_for(personas.editor)

    response = client.post(reverse("budget_edit", args=[budget.pk]), {**FORM, "hard_limit": "20"})
    assert response.status_code == 302
    budget.refresh_from_db()
    assert budget.hard_limit == 20 and budget.name == "Research"

    refused = client.post(reverse("budget_edit", args=[budget.pk]), {**FORM, "hard_limit": "x"})
    assert refused.status_code == 200
    budget.refresh_from_db()
    assert budget.hard_limit == 20

    assert client.post(reverse("budget_delete", args=[budget.pk])).status_code == 302
    assert not Budget.objects.exists()


def test_viewers_and_outsiders_cannot_change_a_budget(personas: Personas, client_for: Any) -> None:
    budget = _budget(personas)
    edit = reverse("budget_edit", args=[budget.pk])
    assert client_for(personas.viewer).post(edit, FORM).status_code == 403
    assert client_for(personas.outsider).post(edit, FORM).status_code == 404
    assert (
        client_for(personas.outsider).post(reverse("budget_delete", args=[budget.pk])).status_code
        == 404
    )
    budget.refresh_from_db()
    assert budget.name == "Lab"


def test_a_malformed_budget_id_is_a_404(personas: Personas, client_for: Any) -> None:
    assert client_for(personas.owner).get("/budgets/not-a-uuid/").status_code == 404
