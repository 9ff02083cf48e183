"""The dashboards page, its agent and workflow tabs, and the per-agent report downloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from monitoring.dashboards import agent_report, dashboard_scope, top_lists
from tests.agents.factories import make_agent
from tests.conftest import Personas
from tests.monitoring.ledger_rows import ledger_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(personas: Personas) -> dict[str, Any]:
    writer = make_agent(personas.workspace, name="Writer")
    critic = make_agent(personas.workspace, name="=Critic")  # a name a spreadsheet would run
    recent = timezone.now() - timedelta(hours=2)
    ledger_rows(
        personas.workspace,
        [
            *[{"at": recent, "agent_id": str(writer.pk), "latency_ms": 800}] * 3,
            {
                "at": recent,
                "agent_id": str(writer.pk),
                "status": "failed",
                "cost": 0,
                "error_kind": "timeout",
                "price_source": "",
            },
            {
                "at": recent,
                "agent_id": str(critic.pk),
                "model": "house",
                "cost": 0,
                "price_source": "unknown",
            },
        ],
    )
    return {"writer": writer, "critic": critic}


def region(client: Any, url: str, name: str, **params: str) -> str:
    """One region of the page, as its script asks for it."""
    response = client.get(url, {**params, "region": name}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_a_new_workspace_is_told_how_to_get_figures(personas: Personas, client_for: Any) -> None:
    client = client_for(personas.owner)
    page = "".join(region(client, reverse("dashboards"), name) for name in ("headline", "agents"))

    assert "No model calls in this range yet" in page
    assert reverse("workflow_list") in page
    assert "No agent made a call in this range" in page


def test_the_dashboard_shows_the_ranges_figures_and_the_agent_report(
    calls: dict[str, Any], personas: Personas, client_for: Any
) -> None:
    client = client_for(personas.viewer)
    page = client.get(reverse("dashboards"), {"range": "24h"})
    html = "".join(
        region(client, reverse("dashboards"), name, range="24h")
        for name in ("headline", "agents", "costs", "slow")
    )

    assert page.status_code == 200
    assert page.content.decode().count('class="card chart"') == 10
    assert 'data-testid="dashboard-headline"' in html
    assert "$0.0300" in html  # three priced calls
    assert "+ price unknown" in html  # the critic's call has no known price, not $0
    assert "Writer" in html and "75.0 %" in html  # 3 of 4 calls succeeded
    assert "timeout at" in html
    assert "Costliest agents" in html and "Slowest models" in html


def test_an_agents_tab_shows_that_agent_only(
    calls: dict[str, Any], personas: Personas, client_for: Any
) -> None:
    critic = calls["critic"]
    client = client_for(personas.viewer)
    url = reverse("agent_dashboard", args=[critic.pk])
    html = client.get(url).content.decode()
    report = region(client, url, "agents")

    assert f'data-fixed-agent="{critic.pk}"' in html
    assert "Critic" in report and "Writer" not in report
    assert 'name="agent"' not in html  # the agent is fixed: no agent filter to change
    assert "narrowed by workflow and user only" in region(client, url, "costs")


def test_the_agent_report_downloads_as_csv_and_markdown(
    calls: dict[str, Any], personas: Personas, client_for: Any
) -> None:
    client = client_for(personas.viewer)
    csv = client.get(reverse("dashboard_report", args=["csv"]), {"range": "24h"})
    markdown = client.get(reverse("dashboard_report", args=["md"]), {"range": "24h"})

    lines = csv.content.decode().splitlines()
    assert csv["Content-Disposition"].startswith('attachment; filename="agents-')
    assert lines[0].startswith("Agent,Calls,Success rate")
    assert any(line.startswith("Writer,4,75.0 %") for line in lines)
    assert any(line.startswith("'=Critic,1") for line in lines)  # text, not a formula
    assert "price unknown" in csv.content.decode()
    text = markdown.content.decode()
    assert text.startswith("# Agents, ")
    assert "| Writer | 4 | 75.0 % |" in text


def test_the_slow_lists_rank_models_by_p95_and_deployments_by_retries(
    personas: Personas,
) -> None:
    now = timezone.now()
    ledger_rows(
        personas.workspace,
        [
            # Whole days (the daily rollups) and today's hours (the hourly ones) both count.
            *[{"at": now - timedelta(days=40), "model": "slow-model", "latency_ms": 9000}] * 4,
            {"at": now - timedelta(hours=1), "model": "slow-model", "latency_ms": 9000},
            *[{"at": now - timedelta(days=3), "model": "quick-model", "latency_ms": 200}] * 3,
            {"at": now - timedelta(days=3), "model": "quick-model", "attempt": 2},
            {"at": now - timedelta(days=3), "model": "quick-model", "attempt": 3},
        ],
    )
    scope = dashboard_scope(QueryDict("range=90d"))

    top = top_lists(personas.workspace.pk, scope, "slow")

    assert [(model, calls) for model, _, calls in top.slowest_models] == [
        ("slow-model", 5),
        ("quick-model", 5),
    ]
    assert top.slowest_models[0][1] is not None and top.slowest_models[0][1] > 5000
    assert [(retries, calls) for _, retries, calls in top.retried_deployments] == [(2, 5)]
    assert top.retried_deployments[0][0].endswith("quick-model")


def test_the_report_names_each_agents_latest_error_in_the_range(personas: Personas) -> None:
    writer = make_agent(personas.workspace, name="Writer")
    critic = make_agent(personas.workspace, name="Critic")
    quiet = make_agent(personas.workspace, name="Quiet")
    now = timezone.now()

    def failed(agent: Any, at: Any, kind: str) -> dict[str, Any]:
        return {
            "at": at,
            "agent_id": str(agent.pk),
            "status": "failed",
            "error_kind": kind,
            "cost": 0,
            "price_source": "",
        }

    ledger_rows(
        personas.workspace,
        [
            failed(writer, now - timedelta(days=30), "timeout"),
            failed(writer, now - timedelta(hours=3, minutes=10), "rate_limited"),
            failed(writer, now - timedelta(hours=3, minutes=20), "server_error"),
            failed(critic, now - timedelta(days=20), "rate_limited"),
            failed(critic, now - timedelta(days=12), "auth"),
            {"at": now - timedelta(days=1), "agent_id": str(critic.pk)},
            {"at": now - timedelta(hours=1), "agent_id": str(quiet.pk)},
            failed(quiet, now - timedelta(days=100), "timeout"),  # before the range
        ],
    )

    report = {
        row.name: row.last_error
        for row in agent_report(personas.workspace.pk, dashboard_scope(QueryDict("range=90d")))
    }

    assert report["Writer"].startswith("rate_limited at ")
    assert report["Critic"].startswith("auth at ")
    assert report["Quiet"] == ""


def test_a_bad_range_is_refused_with_the_reason(personas: Personas, client_for: Any) -> None:
    client = client_for(personas.viewer)
    page = client.get(reverse("dashboards"), {"from": "2026-13-45"})
    report = client.get(reverse("dashboard_report", args=["pdf"]))
    unknown = client.get(reverse("dashboards"), {"region": "nav"}, HTTP_HX_REQUEST="true")

    assert unknown.status_code == 400
    assert page.status_code == 400
    assert "is not a date" in page.content.decode()
    assert report.status_code == 404
