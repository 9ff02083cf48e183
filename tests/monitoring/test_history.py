"""The run history: filters that combine, search, sorts by keyset, counts, bad URLs, the tab."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from monitoring.history import selectors
from monitoring.history.query import SORTS, HistoryQuery, cursor_decode
from monitoring.history.selectors import history_page
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.monitoring.factories import make_run, make_workflow, row_ids


@pytest.fixture
def history(personas: Personas) -> dict[str, object]:
    """A small history in the personas' workspace: two workflows, failures, a wait, a pin."""
    ws = personas.workspace
    triage, report = make_workflow(ws, "Triage"), make_workflow(ws, "Report")
    partner = make_provider(
        ws, kind="openai_compatible", name="Partner", base_url="https://p.example/v1"
    )
    runs = {
        "refund": make_run(
            triage,
            text="Customer wants a refund for invoice 42",
            by=personas.owner,
            answer="Refund approved under the returns policy",
            cost="0.05",
            tokens=900,
            duration=timedelta(seconds=40),
        ),
        "outage": make_run(
            triage,
            text="Database outage in the night",
            status="failed",
            error_kind="rate_limit",
            model="gpt-4o",
            ago=timedelta(days=3),
            by=personas.editor,
            cost="0.20",
            tokens=3000,
            duration=timedelta(seconds=7),
        ),
        "waiting": make_run(
            triage,
            text="Approve the press release",
            status="waiting",
            via="api",
            by=personas.editor,
            ago=timedelta(minutes=5),
        ),
        "partner": make_run(
            report,
            text="Quarterly numbers",
            model="partner-large",
            provider=partner,
            price_source="unknown",
            cost="0",
            via="schedule",
            ago=timedelta(days=20),
            duration=timedelta(minutes=3),
        ),
        "old": make_run(
            report,
            text="Summer planning",
            ago=timedelta(days=80),
            pinned=True,
            duration=timedelta(seconds=11),
            cost="1.50",
            tokens=12000,
        ),
    }
    # A sub-workflow's run is shown in its parent, not as a row of its own.
    make_run(report, text="child of refund", parent=runs["refund"])
    return {"triage": triage, "report": report, "partner_provider": partner, **runs}


def _ids(client, url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return set(row_ids(response.content))


def _pk(run) -> str:
    return str(run.pk)


def test_each_filter_alone_and_combined(personas: Personas, client_for, history) -> None:
    client = client_for(personas.viewer)
    base = reverse("run_list")
    h = history
    assert _ids(client, base) == {
        _pk(h[k]) for k in ("refund", "outage", "waiting", "partner", "old")
    }
    assert _ids(client, f"{base}?status=failed") == {_pk(h["outage"])}
    assert _ids(client, f"{base}?waiting=on") == {_pk(h["waiting"])}
    assert _ids(client, f"{base}?workflow={h['report'].pk}") == {_pk(h["partner"]), _pk(h["old"])}
    assert _ids(client, f"{base}?workflow={h['report'].pk}&version=1") == {
        _pk(h["partner"]),
        _pk(h["old"]),
    }
    assert _ids(client, f"{base}?model=gpt-4o") == {_pk(h["outage"])}
    assert _ids(client, f"{base}?provider={h['partner_provider'].pk}") == {_pk(h["partner"])}
    assert _ids(client, f"{base}?by={personas.editor.pk}") == {_pk(h["outage"]), _pk(h["waiting"])}
    assert _ids(client, f"{base}?via=schedule") == {_pk(h["partner"])}
    assert _ids(client, f"{base}?error=rate_limit") == {_pk(h["outage"])}
    assert _ids(client, f"{base}?error=any") == {_pk(h["outage"])}
    assert _ids(client, f"{base}?pinned=on") == {_pk(h["old"])}
    assert _ids(client, f"{base}?min_duration=30&max_duration=100") == {_pk(h["refund"])}
    assert _ids(client, f"{base}?min_cost=0.1") == {_pk(h["outage"]), _pk(h["old"])}
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert _ids(client, f"{base}?from={week_ago}") == {
        _pk(h["refund"]),
        _pk(h["outage"]),
        _pk(h["waiting"]),
    }
    # Three at once narrow down to their intersection.
    combined = f"{base}?from={week_ago}&by={personas.editor.pk}&min_cost=0.1"
    assert _ids(client, combined) == {_pk(h["outage"])}
    assert _ids(client, f"{base}?status=failed&model=partner-large") == set()


def test_search_finds_inputs_outputs_and_messages(personas: Personas, client_for, history) -> None:
    client = client_for(personas.viewer)
    base = reverse("run_list")
    assert _ids(client, f"{base}?q=invoice") == {_pk(history["refund"])}  # input
    assert _ids(client, f"{base}?q=returns+policy") == {_pk(history["refund"])}  # output
    assert _ids(client, f"{base}?q=helper+outage") == {_pk(history["outage"])}  # message
    assert _ids(client, f"{base}?q=nothing-like-this-anywhere") == set()
    page = client.get(f"{base}?q=nothing-like-this-anywhere").content.decode()
    assert 'data-testid="history-no-results"' in page


def test_every_sort_pages_by_keyset_without_gaps(personas: Personas, history) -> None:
    for sort in SORTS:
        _pages_in_order(personas, history, sort)


def _pages_in_order(personas: Personas, history, sort: str) -> None:
    workspace_id = personas.workspace.pk
    seen: list[str] = []
    query = HistoryQuery(sort=sort)
    while True:
        page = history_page(workspace_id, query, page_size=2)
        seen += [str(run.pk) for run in page.runs]
        if page.next_cursor is None:
            break
        query = HistoryQuery(sort=sort, cursor=cursor_decode(page.next_cursor))
    keys = {
        "started": lambda r: r.created_at,
        "duration": lambda r: (r.finished_at - r.started_at) if r.finished_at else timedelta(0),
        "cost": lambda r: r.cost,
        "tokens": lambda r: r.total_tokens,
    }
    top = [history[k] for k in ("refund", "outage", "waiting", "partner", "old")]
    expected = sorted(
        top, key=lambda r: (keys[sort.lstrip("-")](r), str(r.pk)), reverse=sort.startswith("-")
    )
    assert len(seen) == len(set(seen)) == 5
    assert [seen.index(str(run.pk)) for run in expected] == list(range(5))


def test_counts_stop_at_the_cap(personas: Personas, client_for, history, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "COUNT_CAP", 3)
    page = client_for(personas.viewer).get(reverse("run_list")).content.decode()
    assert "3+</strong> runs" in page
    page = client_for(personas.viewer).get(reverse("run_list") + "?status=failed").content.decode()
    assert "<strong>1</strong> run match" in page


def test_a_first_page_holding_every_match_is_not_counted_again(personas: Personas, history) -> None:
    with CaptureQueriesContext(connection) as captured:
        page = history_page(personas.workspace.pk, HistoryQuery(statuses=("failed",)))
    assert (page.count, page.count_capped, len(page.runs)) == (1, False, 1)
    assert not any("COUNT(" in query["sql"] for query in captured.captured_queries)
    # A later page still counts every match, not only those after the cursor.
    first = history_page(personas.workspace.pk, HistoryQuery(), page_size=2)
    later = history_page(
        personas.workspace.pk,
        HistoryQuery(cursor=cursor_decode(first.next_cursor or "")),
        page_size=2,
    )
    assert (first.count, later.count, len(later.runs)) == (5, 5, 2)


def test_a_page_link_carries_the_whole_query(
    personas: Personas, client_for, history, monkeypatch
) -> None:
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    client = client_for(personas.viewer)
    url = reverse("run_list") + f"?workflow={history['triage'].pk}&sort=-cost"
    first = client.get(url)
    assert row_ids(first.content) == [_pk(history["outage"]), _pk(history["refund"])]
    next_url = first.context["next_page_url"]
    assert f"workflow={history['triage'].pk}" in next_url and "sort=-cost" in next_url
    assert row_ids(client.get(next_url).content) == [_pk(history["waiting"])]


def test_rows_say_when_a_price_is_unknown(personas: Personas, client_for, history) -> None:
    page = client_for(personas.viewer).get(reverse("run_list") + "?via=schedule").content.decode()
    assert "price unknown" in page and "$0<" not in page
    row = page.split('data-testid="history-row"')[1]
    assert "Quarterly numbers" in row and "Report" in row and "Schedule" in row


def test_rows_escape_what_people_typed(personas: Personas, client_for) -> None:
    """The rows are printed in Python (monitoring/history/rows.py), not by the template engine:
    every value a person or a run wrote must still come out escaped."""
    workflow = make_workflow(personas.workspace, 'Tri"age <b>')
    make_run(workflow, text='<script>alert("x")</script> & more', by=personas.owner)
    for user in (personas.owner, personas.viewer):
        page = client_for(user).get(reverse("run_list")).content.decode()
        row = page.split('data-testid="history-row"')[1].split("</tr>")[0]
        assert "<script>" not in row and "<b>" not in row
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in row
        assert "Tri&quot;age &lt;b&gt;" in row
        assert ('name="run"' in row) is (user == personas.owner)


@pytest.mark.parametrize(
    "query, blamed",
    [
        ("status=exploded", "status"),
        ("from=2026-13-45", "from"),
        ("min_cost=cheap", "min_cost"),
        ("min_cost=5&max_cost=1", "max_cost"),
        ("version=2", "version"),
        ("sort=DROP+TABLE", "sort"),
        ("cursor=%%%", "cursor"),
        ("cursor=WyJub3QtYS1kYXRlIiwiMSJd", "cursor"),  # decodes, but names no key
        ("workflow=not-a-uuid", "workflow"),
        ("q=" + "x" * 300, "q"),
    ],
)
def test_a_bad_query_string_is_explained_not_a_500(
    personas: Personas, client_for, query, blamed
) -> None:
    response = client_for(personas.viewer).get(reverse("run_list") + "?" + query)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-testid="history-errors"' in page and f"<code>{blamed}</code>" in page
    assert row_ids(page) == []


def test_the_workflow_tab_shows_only_its_runs(personas: Personas, client_for, history) -> None:
    client = client_for(personas.viewer)
    url = reverse("workflow_runs", args=[history["report"].pk])
    assert _ids(client, url) == {_pk(history["partner"]), _pk(history["old"])}
    # The workflow in the path wins over one in the query string.
    assert _ids(client, f"{url}?workflow={history['triage'].pk}") == {
        _pk(history["partner"]),
        _pk(history["old"]),
    }
    detail = client.get(reverse("workflow_detail", args=[history["report"].pk])).content.decode()
    assert url in detail


def test_an_outsider_never_sees_another_workspace_s_runs(
    personas: Personas, client_for, history
) -> None:
    assert _ids(client_for(personas.outsider), reverse("run_list")) == set()
    response = client_for(personas.outsider).get(
        reverse("workflow_runs", args=[history["report"].pk])
    )
    assert response.status_code == 404


def test_an_empty_workspace_guides_a_newcomer(personas: Personas, client_for) -> None:
    page = client_for(personas.viewer).get(reverse("run_list")).content.decode()
    assert 'data-testid="empty-runs"' in page and "Go to workflows" in page


def test_htmx_refresh_renders_only_the_results(personas: Personas, client_for, history) -> None:
    response = client_for(personas.viewer).get(
        reverse("run_list") + "?waiting=on", headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert "<html" not in body and 'id="history-results"' in body
    assert "data-live-url=" in body  # a waiting run is live: the region keeps refreshing


def test_search_text_and_facets_follow_the_ledger(history) -> None:
    outage = history["outage"]
    assert "Database outage" in outage.search_text
    assert outage.facets["models"] == ["gpt-4o"] and outage.facets["errors"] == ["rate_limit"]
    assert Decimal(history["old"].cost) == Decimal("1.50")


def test_a_workflow_without_runs_guides_rather_than_blames_filters(
    personas: Personas, client_for
) -> None:
    quiet = make_workflow(personas.workspace, "Quiet")
    client = client_for(personas.viewer)
    tab = client.get(reverse("workflow_runs", args=[quiet.pk])).content.decode()
    assert 'data-testid="empty-runs"' in tab and "Run this workflow" in tab
    # On the workspace's list the same workflow is a filter the reader chose.
    listed = client.get(reverse("run_list") + f"?workflow={quiet.pk}").content.decode()
    assert 'data-testid="history-no-results"' in listed
