"""Graph builders and a harness wiring an Engine to the in-memory contracts."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from workflows.engine import Engine, RunOutcome
from workflows.engine.memory import (
    EchoTools,
    InMemoryStore,
    MemoryRun,
    RecordingLive,
    ScriptedAgents,
    ScriptedSubworkflows,
)
from workflows.graph.examples import edge, node

NAMES = {"ann": "Ann", "bob": "Bob", "cy": "Cy", "dee": "Dee", "sel": "Selector"}

__all__ = ["edge", "node"]


def graph(
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]],
    variables: list[dict[str, Any]] | None = None,
    output: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "schema_version": 1,
        "nodes": nodes,
        "edges": edges,
        "variables": variables or [],
        "inputs": {"fields": [{"name": "topic", "type": "text"}]},
    }
    if output is not None:
        found["output"] = output
    if settings is not None:
        found["settings"] = settings
    return found


def var(name: str, kind: str = "string", reducer: str = "replace") -> dict[str, Any]:
    return {"name": name, "type": kind, "reducer": reducer}


def chain(*middle: dict[str, Any], output: str | None = None, **extra: Any) -> dict[str, Any]:
    """start → each node in order → end."""
    nodes = [node("start", "start", 0, 0), *middle, node("end", "end", 0, 0)]
    if output is not None:
        nodes[-1]["config"]["output"] = output
    ids = [item["id"] for item in nodes]
    edges = [edge(a, b) for a, b in zip(ids, ids[1:], strict=False)]
    return graph(nodes, edges, **extra)


def agent(node_id: str, agent_id: str, template: str = "{{ input }}", **config: Any) -> dict:
    return node(node_id, "agent", 0, 0, agent_id=agent_id, input_template=template, **config)


def event_signature(events: Any) -> Counter[str]:
    """Events by content, without seq: what a viewer sees, for comparing runs."""
    return Counter(
        json.dumps([event.kind, event.data, event.step_key], sort_keys=True, default=str)
        for event in events
    )


@dataclass
class Harness:
    store: InMemoryStore = field(default_factory=InMemoryStore)
    agents: ScriptedAgents = field(default_factory=lambda: ScriptedAgents(NAMES))
    tools: EchoTools = field(default_factory=EchoTools)
    subworkflows: ScriptedSubworkflows = field(default_factory=ScriptedSubworkflows)
    live: RecordingLive = field(default_factory=RecordingLive)
    sleeps: list[float] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [1000.0])

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    def engine(self, **options: Any) -> Engine:
        options.setdefault("sleep", self.sleep)
        options.setdefault("clock", lambda: self.now[0])
        options.setdefault("heartbeat", None)
        return Engine(self.store, self.agents, self.tools, self.subworkflows, self.live, **options)

    def add(self, graph_doc: dict[str, Any], run_id: str = "r1", **options: Any) -> MemoryRun:
        inputs = options.pop("inputs", {"topic": "tea"})
        return self.store.add_run(run_id, graph_doc, inputs, **options)

    async def run(self, run_id: str = "r1", **options: Any) -> RunOutcome:
        return await self.engine(**options).run(run_id)

    def events(self, run_id: str = "r1", kind: str | None = None) -> list[Any]:
        found = self.store.runs[run_id].events
        return [event for event in found if kind is None or event.kind == kind]


@pytest.fixture
def harness() -> Harness:
    return Harness()
