"""E-mails and webhooks: signed, retried with backoff, logged, redelivered, under the outbound
policy. Webhooks reach a real HTTP server on loopback; e-mail goes to Django's locmem outbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from agents.crypto import credential_decrypt
from monitoring.alerts.deliveries import deliveries_send_due, delivery_attempt, delivery_redeliver
from monitoring.alerts.evaluation import alerts_evaluate
from monitoring.alerts.models import AlertChannel, AlertDelivery, DeliveryStatus
from monitoring.alerts.services import alert_channel_create
from tests.conftest import Personas
from tests.monitoring.alerts.conftest import (
    WebhookReceiver,
    ledger_call,
    standard_webhook_verify,
)
from workflows.webhooks.signing import webhook_signature


@pytest.fixture
def allow_loopback_hooks(settings: Any) -> None:
    """An administrator allow-listed this machine, as for a local receiver."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


def hook(personas: Personas, url: str) -> tuple[AlertChannel, str]:
    return alert_channel_create(
        workspace=personas.workspace,
        kind="webhook",
        data={"name": "Hook", "enabled": True, "url": url},
    )


def fire_error_alert(personas: Personas, now: datetime) -> None:
    """The default error-rate rule fires: 3 of 10 calls failed."""
    for n in range(10):
        ledger_call(personas.workspace, at=now - timedelta(minutes=1), failed=n < 3)
    alerts_evaluate(now=now)


def test_signature_follows_standard_webhooks() -> None:
    # The example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    assert (
        webhook_signature(
            secret=secret,
            message_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body=body,
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_secret_is_stored_encrypted(personas: Personas) -> None:
    channel, secret = hook(personas, "https://hooks.example.com/a2a")
    assert secret.startswith("whsec_")
    assert secret not in channel.secret_encrypted
    assert credential_decrypt(channel.secret_encrypted) == secret


def test_a_key_rotation_re_encrypts_the_secrets(personas: Personas, settings: Any) -> None:
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old]
    channel, secret = hook(personas, "https://hooks.example.com/a2a")
    settings.CREDENTIAL_KEYS = [new, old]
    call_command("rotate_credential_keys", verbosity=0)
    settings.CREDENTIAL_KEYS = [new]
    channel.refresh_from_db()
    assert credential_decrypt(channel.secret_encrypted) == secret


def test_an_alert_reaches_a_webhook_signed(
    personas: Personas, now: datetime, webhook_receiver: WebhookReceiver, allow_loopback_hooks: None
) -> None:
    _, secret = hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)

    assert deliveries_send_due(now=now) == 1

    (received,) = webhook_receiver.requests
    assert standard_webhook_verify(secret, received)
    assert not standard_webhook_verify("whsec_" + "A" * 44, received)
    delivery = AlertDelivery.objects.get()
    assert received.headers["webhook-id"] == delivery.message_id
    assert received.body == delivery.body
    payload = json.loads(received.body)
    assert payload["type"] == "alert.fired"
    assert payload["data"]["rule"]["name"] == "Error rate above 10 %"
    assert payload["data"]["value"] == "30"
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert delivery.log[0]["status_code"] == 200


def test_failures_are_retried_with_backoff_under_one_id(
    personas: Personas,
    now: datetime,
    webhook_receiver: WebhookReceiver,
    allow_loopback_hooks: None,
    settings: Any,
) -> None:
    settings.ALERTS_DELIVERY_BACKOFF_SECONDS = 30
    webhook_receiver.answers = [500, 503]
    _, secret = hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)
    delivery = AlertDelivery.objects.get()

    assert delivery_attempt(delivery_id=delivery.pk, now=now)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at == now + timedelta(seconds=30)
    assert "HTTP 500" in delivery.last_error

    # Not due before its time.
    assert deliveries_send_due(now=now + timedelta(seconds=29)) == 0
    assert deliveries_send_due(now=now + timedelta(seconds=30)) == 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == now + timedelta(seconds=30 + 60)  # doubled

    assert deliveries_send_due(now=now + timedelta(seconds=90)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [entry["status_code"] for entry in delivery.log] == [500, 503, 200]
    assert {r.headers["webhook-id"] for r in webhook_receiver.requests} == {delivery.message_id}
    assert all(standard_webhook_verify(secret, r) for r in webhook_receiver.requests)


def test_a_delivery_gives_up_then_is_redelivered(
    personas: Personas,
    now: datetime,
    webhook_receiver: WebhookReceiver,
    allow_loopback_hooks: None,
    settings: Any,
) -> None:
    settings.ALERTS_DELIVERY_ATTEMPTS = 2
    webhook_receiver.answers = [500, 500]
    hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)
    delivery = AlertDelivery.objects.get()

    assert delivery_attempt(delivery_id=delivery.pk, now=now)
    assert delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(hours=1))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    assert not delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(hours=2))

    delivery_redeliver(delivery=delivery, now=now + timedelta(hours=2))
    assert deliveries_send_due(now=now + timedelta(hours=2)) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(delivery.log) == 3
    assert len({r.headers["webhook-id"] for r in webhook_receiver.requests}) == 1


def test_one_attempt_is_made_once(
    personas: Personas, now: datetime, webhook_receiver: WebhookReceiver, allow_loopback_hooks: None
) -> None:
    hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)
    delivery = AlertDelivery.objects.get()

    assert delivery_attempt(delivery_id=delivery.pk, now=now)
    assert not delivery_attempt(delivery_id=delivery.pk, now=now)  # delivered: nothing to do
    assert len(webhook_receiver.requests) == 1


def test_a_private_address_is_refused_and_not_retried(
    personas: Personas, now: datetime, webhook_receiver: WebhookReceiver
) -> None:
    # No allow-list: loopback is off limits to webhooks, as for any outbound call.
    hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)

    deliveries_send_due(now=now)

    delivery = AlertDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REFUSED
    assert "loopback" in delivery.last_error and "A2A_OUTBOUND_ALLOWED_HOSTS" in delivery.last_error
    assert webhook_receiver.requests == []
    assert deliveries_send_due(now=now + timedelta(hours=1)) == 0


def test_an_alert_is_e_mailed(personas: Personas, now: datetime, settings: Any) -> None:
    settings.SITE_URL = "https://studio.example.com"
    alert_channel_create(
        workspace=personas.workspace,
        kind="email",
        data={
            "name": "On call",
            "enabled": True,
            "email_to": "ops@example.com, olivia@example.com",
        },
    )
    fire_error_alert(personas, now)

    deliveries_send_due(now=now)

    (message,) = mail.outbox
    assert message.subject == "[A2A Studio] Alert: Error rate above 10 %"
    assert message.to == ["ops@example.com", "olivia@example.com"]
    assert "3 of 10 calls failed" in message.body
    assert "https://studio.example.com/alerts/" in message.body
    assert AlertDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_disabled_channels_get_nothing(personas: Personas, now: datetime) -> None:
    channel, _ = hook(personas, "https://hooks.example.com/a2a")
    AlertChannel.objects.filter(pk=channel.pk).update(enabled=False)
    fire_error_alert(personas, now)
    assert not AlertDelivery.objects.exists()
    assert Decimal(1)  # the incident itself is there: see test_evaluation


def test_old_notifications_and_finished_deliveries_are_forgotten(
    personas: Personas, now: datetime, settings: Any
) -> None:
    from monitoring.alerts.models import AlertIncident, Notification
    from monitoring.alerts.services import alerts_forget_old

    settings.ALERTS_KEEP_DAYS = 30
    hook(personas, "https://hooks.example.com/a2a")
    fire_error_alert(personas, now)
    AlertDelivery.objects.update(status=DeliveryStatus.FAILED)

    assert alerts_forget_old(now=now + timedelta(days=29)) == 0
    assert alerts_forget_old(now=now + timedelta(days=31)) == 2
    assert not Notification.objects.exists() and not AlertDelivery.objects.exists()
    assert AlertIncident.objects.count() == 1  # the history stays


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_one_attempt(
    personas: Personas, now: datetime, webhook_receiver: WebhookReceiver, allow_loopback_hooks: None
) -> None:
    from tests.monitoring.alerts.test_evaluation import _together

    hook(personas, webhook_receiver.url)
    fire_error_alert(personas, now)
    delivery = AlertDelivery.objects.get()

    made = _together(2, lambda: delivery_attempt(delivery_id=delivery.pk, now=now))

    assert sorted(made) == [False, True]
    assert len(webhook_receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
