"""The alerts pages as people use them: history, acknowledge and resolve, rules and channels with
validation, the header's unread count rendered by the server."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from monitoring.alerts.evaluation import alerts_evaluate
from monitoring.alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertIncident,
    AlertRule,
    IncidentState,
    Notification,
)
from tests.conftest import Personas
from tests.monitoring.alerts.conftest import ledger_call


def fire(personas: Personas, now: datetime) -> AlertIncident:
    for n in range(10):
        ledger_call(personas.workspace, at=now - timedelta(minutes=1), failed=n < 3)
    alerts_evaluate(now=now)
    return AlertIncident.objects.get(workspace=personas.workspace)


def test_a_newcomer_sees_the_default_rules_and_an_empty_history(
    personas: Personas, client_for: Any
) -> None:
    page = client_for(personas.owner).get(reverse("alert_list"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "All quiet" in text
    assert "“Error rate above 10 %”" in text  # what is watched without any set-up
    rules = client_for(personas.owner).get(reverse("alert_rule_list")).content.decode()
    assert "made for this workspace when it started" in rules
    assert (
        rules.count(">default<") == AlertRule.objects.filter(workspace=personas.workspace).count()
    )


def test_an_open_alert_is_shown_and_counted_in_the_header(
    personas: Personas, client_for: Any, now: datetime
) -> None:
    fire(personas, now)
    viewer = client_for(personas.viewer)

    home = viewer.get(reverse("home")).content.decode()
    assert "data-unread-count>1</span>" in home

    history = viewer.get(reverse("alert_list")).content.decode()
    assert "3 of 10 calls failed" in history
    assert ">Acknowledge</button>" not in history  # viewers see, editors act
    # Reading the history marks the notifications read.
    assert "data-unread-count hidden>0</span>" in viewer.get(reverse("home")).content.decode()
    # Someone else's count is their own.
    assert (
        "data-unread-count>1</span>"
        in client_for(personas.editor).get(reverse("home")).content.decode()
    )


def test_an_editor_acknowledges_then_resolves(
    personas: Personas, client_for: Any, now: datetime
) -> None:
    incident = fire(personas, now)
    editor = client_for(personas.editor)
    assert ">Acknowledge</button>" in editor.get(reverse("alert_list")).content.decode()

    editor.post(reverse("alert_acknowledge", args=[incident.pk]))
    incident.refresh_from_db()
    assert incident.state == IncidentState.ACKNOWLEDGED

    answer = editor.post(reverse("alert_resolve", args=[incident.pk]), follow=True)
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED and incident.resolved_by == personas.editor
    assert "resolved" in answer.content.decode()
    resolved = editor.get(reverse("alert_list") + "?state=resolved").content.decode()
    assert "by eddie" in resolved


def test_viewers_cannot_act_on_alerts(personas: Personas, client_for: Any, now: datetime) -> None:
    incident = fire(personas, now)
    answer = client_for(personas.viewer).post(reverse("alert_resolve", args=[incident.pk]))
    assert answer.status_code == 403
    incident.refresh_from_db()
    assert incident.state == IncidentState.OPEN
    other = client_for(personas.outsider).post(reverse("alert_acknowledge", args=[incident.pk]))
    assert other.status_code == 404


@pytest.mark.parametrize(
    "query", ["?state=everything", "?before=abc", "?before=-1", "?before=99999999999999999999"]
)
def test_a_malformed_query_is_refused_with_a_reason(
    query: str, personas: Personas, client_for: Any
) -> None:
    answer = client_for(personas.owner).get(reverse("alert_list") + query)
    assert answer.status_code == 400
    assert b"state" in answer.content or b"before" in answer.content


def test_history_pages_by_keyset(personas: Personas, client_for: Any, now: datetime) -> None:
    from monitoring.alerts import selectors

    rule = AlertRule.objects.create(
        workspace=personas.workspace, name="Old", kind="error_rate", threshold=10
    )
    AlertIncident.objects.bulk_create(
        AlertIncident(
            workspace=personas.workspace,
            rule=rule,
            subject=f"s{n}",
            state=IncidentState.RESOLVED,
            summary=f"number {n}",
            threshold=10,
            opened_at=now,
        )
        for n in range(selectors.PAGE_SIZE + 3)
    )
    client = client_for(personas.owner)
    first = client.get(reverse("alert_list") + "?state=resolved").content.decode()
    assert first.count('data-testid="incident"') == selectors.PAGE_SIZE
    oldest_shown = AlertIncident.objects.order_by("-id")[selectors.PAGE_SIZE - 1].pk
    assert f"before={oldest_shown}" in first
    rest = client.get(reverse("alert_list") + f"?state=resolved&before={oldest_shown}")
    assert rest.content.decode().count('data-testid="incident"') == 3


# --- rules ----------------------------------------------------------------------------------------


def rule_data(**extra: str) -> dict[str, str]:
    return {
        "name": "Spend over $5 an hour",
        "kind": "spend_rate",
        "threshold": "5",
        "window_minutes": "60",
        "min_calls": "5",
        "enabled": "on",
        **extra,
    }


def test_an_editor_creates_and_edits_a_rule(personas: Personas, client_for: Any) -> None:
    editor = client_for(personas.editor)
    answer = editor.post(reverse("alert_rule_create"), rule_data())
    assert answer.status_code == 302
    rule = AlertRule.objects.get(name="Spend over $5 an hour")
    assert rule.workspace == personas.workspace and rule.threshold == 5

    editor.post(reverse("alert_rule_edit", args=[rule.pk]), rule_data(threshold="7.5", enabled=""))
    rule.refresh_from_db()
    assert rule.threshold == 7.5 and not rule.enabled

    editor.post(reverse("alert_rule_delete", args=[rule.pk]))
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "error_rate", "threshold": "150"}, "A percentage goes up to 100."),
        ({"threshold": "-1"}, "greater than or equal to 0"),
        ({"threshold": "lots"}, "Enter a number."),
        ({"kind": "spend_spike", "threshold": "0.5"}, "give a ratio above 1"),
        ({"kind": "nonsense"}, "Select a valid choice."),
        ({"window_minutes": "0"}, "greater than or equal to 1"),
        ({"window_minutes": "99999"}, "less than or equal to 10080"),
        ({"name": ""}, "This field is required."),
    ],
)
def test_a_bad_rule_is_refused_with_a_reason(
    data: dict[str, str], message: str, personas: Personas, client_for: Any
) -> None:
    before = AlertRule.objects.count()
    answer = client_for(personas.editor).post(reverse("alert_rule_create"), rule_data(**data))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert AlertRule.objects.count() == before


def test_disabling_a_rule_resolves_its_alert(
    personas: Personas, client_for: Any, now: datetime
) -> None:
    incident = fire(personas, now)
    rule = incident.rule
    client_for(personas.editor).post(
        reverse("alert_rule_edit", args=[rule.pk]),
        rule_data(kind=rule.kind, threshold="10", window_minutes="15", enabled=""),
    )
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert incident.resolved_summary == "The rule was disabled."


# --- channels -------------------------------------------------------------------------------------


def test_a_webhook_secret_is_shown_once(personas: Personas, client_for: Any) -> None:
    editor = client_for(personas.editor)
    answer = editor.post(
        reverse("alert_channel_create"),
        {"kind": "webhook", "name": "Pager", "url": "https://8.8.8.8/hooks", "enabled": "on"},
    )
    assert answer.status_code == 200
    text = answer.content.decode()
    channel = AlertChannel.objects.get(name="Pager")
    start = text.index("whsec_")
    secret = text[start : text.index("<", start)]
    assert len(secret) > 40
    assert secret not in channel.secret_encrypted
    again = editor.get(reverse("alert_channel_detail", args=[channel.pk])).content.decode()
    assert "whsec_" not in again


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://127.0.0.1:9000/hook"}, "loopback address"),
        ({"url": "http://10.1.2.3/hook"}, "private address"),
        ({"url": "http://169.254.169.254/latest"}, "never calls"),
        ({"url": "ftp://8.8.8.8/x"}, "Only http and https"),
        ({"url": ""}, "Give the URL"),
        ({"kind": "email", "email_to": "ops@example.com, not-an-address"}, "is not an e-mail"),
        ({"kind": "email", "email_to": ""}, "Give at least one address."),
        ({"kind": "pigeon"}, "Select a valid choice."),
    ],
)
def test_a_bad_channel_is_refused_with_a_reason(
    data: dict[str, str], message: str, personas: Personas, client_for: Any
) -> None:
    form = {"kind": "webhook", "name": "Hook", "enabled": "on", **data}
    answer = client_for(personas.editor).post(reverse("alert_channel_create"), form)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not AlertChannel.objects.exists()


def test_test_message_and_redeliver_from_the_page(
    personas: Personas, client_for: Any, settings: Any
) -> None:
    from django.core import mail

    from monitoring.alerts.deliveries import deliveries_send_due

    editor = client_for(personas.editor)
    editor.post(
        reverse("alert_channel_create"),
        {"kind": "email", "name": "Ops", "email_to": "ops@example.com", "enabled": "on"},
    )
    channel = AlertChannel.objects.get()
    editor.post(reverse("alert_channel_test", args=[channel.pk]))
    deliveries_send_due()
    assert [m.subject for m in mail.outbox] == ["[A2A Studio] Test: Test"]
    delivery = AlertDelivery.objects.get()
    page = editor.get(reverse("alert_channel_detail", args=[channel.pk])).content.decode()
    assert 'data-status="delivered"' in page and "Redeliver" in page
    assert "1 attempt</summary>" in page and "sent ·" in page

    editor.post(reverse("alert_delivery_redeliver", args=[delivery.pk]))
    deliveries_send_due()
    assert len(mail.outbox) == 2
    assert Notification.objects.count() == 0  # a test message is not an alert


def test_the_history_reads_a_fixed_number_of_queries(
    personas: Personas, client_for: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    fire(personas, now)
    rule = AlertRule.objects.get(kind="error_rate", workspace=personas.workspace)
    AlertIncident.objects.bulk_create(
        AlertIncident(
            workspace=personas.workspace,
            rule=rule,
            subject=f"s{n}",
            state=IncidentState.RESOLVED,
            summary="old",
            threshold=10,
            opened_at=now,
            acknowledged_by=personas.editor,
            resolved_by=personas.owner,
        )
        for n in range(30)
    )
    client = client_for(personas.editor)
    client.get(reverse("alert_list"))  # session and defaults settled
    with django_assert_max_num_queries(20):
        answer = client.get(reverse("alert_list") + "?state=all")
    assert answer.content.decode().count('data-testid="incident"') == 31
