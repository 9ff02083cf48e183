"""Celery tasks of the agents app: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from agents.services.nodes import fleet_probe


@shared_task(name="agents.tasks.ollama_fleet_probe", ignore_result=True)
def ollama_fleet_probe() -> int:
    return fleet_probe()


@shared_task(name="agents.tasks.ollama_pull", ignore_result=True)
def ollama_pull(node_id: int, model: str) -> None:
    from agents.services.pull import node_pull_run

    node_pull_run(node_id, model)
