"""Celery tasks of the workflows app: thin, and they take ids only."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workflows.tasks.run_execute", ignore_result=True)
def run_execute(run_id: str) -> None:
    """Takes the run's lease and hands the run to this worker process's event loop.

    Waits while the process already executes its maximum of runs (so prefetch stays honest),
    then returns, and the message is acknowledged: from then on the lease and the reaper, not
    the broker, make sure the run finishes.
    """
    from celery.exceptions import Reject

    from workflows.executor import process_executor

    executor = process_executor()
    if executor.draining:
        # Over its memory limit and about to restart: another worker takes the run.
        raise Reject("this worker is over its memory limit", requeue=True)
    executor.take(run_id)


@shared_task(name="workflows.tasks.runs_reap", ignore_result=True)
def runs_reap() -> None:
    from workflows.services.reaper import runs_reap as reap

    reap()


@shared_task(name="workflows.tasks.runs_retention_enforce", ignore_result=True)
def runs_retention_enforce() -> None:
    from workflows.services.history import runs_retention_enforce as enforce

    enforce()


@shared_task(name="workflows.tasks.webhook_delivery_send", ignore_result=True)
def webhook_delivery_send(delivery_id: int) -> None:
    from workflows.webhooks.delivery import webhook_delivery_attempt

    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="workflows.tasks.webhooks_round", ignore_result=True)
def webhooks_round() -> None:
    from workflows.webhooks.delivery import webhooks_send_due

    webhooks_send_due()
