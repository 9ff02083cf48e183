"""Celery tasks of the workflows app: thin, and they take ids only."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


def run_execute_strategy(task: Any, app: Any, consumer: Any, **options: Any) -> Any:
    """How a worker with the solo pool takes a run's message: it hands the run to the process's
    executor and acknowledges the message (nothing to do for the run queues, taken without
    acknowledgements), as Celery's own path does with late acks, without the request object,
    the pool's and the tracer's bookkeeping and the task signals around a call that only
    hands an id over (most of the consumer's CPU per run, before the run could begin). The
    lease and the reaper, not the message, make sure the run finishes.

    What still goes Celery's way: any other pool (prefork executes tasks in its children), a
    message with an ETA or an expiry, one whose id was revoked, one of another protocol, and a
    worker with per-message callbacks (the autoscaler). The "received" line is logged as
    Celery logs it. Not counted in `celery inspect active` (the run is executing on the loop
    by then; the monitoring pages read the workers' own rows)."""
    from celery.app.trace import LOG_RECEIVED
    from celery.concurrency.solo import TaskPool as SoloPool
    from celery.worker.strategy import default
    from celery.worker.strategy import logger as strategy_logger

    celerys = default(task, app, consumer, **options)
    if not isinstance(consumer.pool, SoloPool):
        return celerys
    revoked = consumer.controller.state.revoked
    errors = consumer.connection_errors
    informs = strategy_logger.isEnabledFor(logging.INFO)
    name = task.name

    def handle(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any) -> Any:
        headers = message.headers
        if (
            body is not None
            or callbacks
            or headers.get("eta")
            or headers.get("expires")
            or headers.get("id") in revoked
        ):
            return celerys(message, body, ack, reject, callbacks)
        try:
            run_id = str(message.decode()[0][0])
        except Exception:  # noqa: BLE001 - not a run's message as sent: Celery's path says why
            return celerys(message, body, ack, reject, callbacks)
        if informs:
            context = {"id": headers.get("id"), "name": name, "args": headers.get("argsrepr")}
            context.update(kwargs=headers.get("kwargsrepr"), eta=None)
            strategy_logger.info(LOG_RECEIVED, context, extra={"data": context})
        try:
            if not _hand_over(run_id):
                _send_again(run_id)
        except Exception:
            # As Celery does for a failed task with late acks: acknowledged. The run is queued
            # in the database: the reaper sends it again.
            logger.exception("Run message %s could not be handed over", headers.get("id"))
        ack(strategy_logger, errors)
        return None

    return handle


def _hand_over(run_id: str) -> bool:
    """The run to this process's executor (blocking while it is full); False if the process
    is over its memory limit and about to restart: another worker takes the message."""
    from workflows.executor import process_executor

    executor = process_executor()
    if executor.draining:
        return False
    executor.submit(run_id, block=True)
    return True


def _send_again(run_id: str) -> None:
    """A message this worker will not take (it is over its memory limit) goes back for another
    worker, as a new message on its priority's queue: a message read from a run queue without
    acknowledgements cannot be rejected back to it."""
    from workflows.services.dispatch import dispatch_run

    dispatch_run(run_id)


@shared_task(  # type: ignore[call-overload]  # Strategy: a Task attribute, not in the stubs
    name="workflows.tasks.run_execute",
    ignore_result=True,
    Strategy="workflows.tasks:run_execute_strategy",
)
def run_execute(run_id: str) -> None:
    """Hands the run to this worker process's event loop (see `run_execute_strategy` for the
    solo pool's way; this is every other pool's).

    Waits while the process already executes its maximum of runs (so prefetch stays honest),
    then returns: the lease and the reaper, not the broker, make sure the run finishes.
    """
    if not _hand_over(run_id):
        # Over its memory limit and about to restart: another worker takes the run.
        _send_again(run_id)


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
