"""Celery tasks of the monitoring app: thin, and they take ids only."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="monitoring.tasks.alerts_round", ignore_result=True)
def alerts_round() -> None:
    from monitoring.alerts.rounds import alerts_round as run_round

    run_round()


@shared_task(name="monitoring.tasks.alert_delivery_send", ignore_result=True)
def alert_delivery_send(delivery_id: int) -> None:
    from monitoring.alerts.deliveries import delivery_attempt

    delivery_attempt(delivery_id=delivery_id)
