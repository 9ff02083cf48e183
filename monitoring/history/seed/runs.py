"""One seeded run's rows, in the order and shape the engine writes them."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from agents.models import LedgerEntry
from monitoring.history.seed.vocabulary import ASKS, ERRORS, SAYS, TOPICS
from monitoring.history.seed.world import Batch, World
from workflows.models import LaunchedVia, Step
from workflows.search import search_text_of

LONG_RUN_ID = uuid.UUID("5eed2000-0000-4000-8000-000000000200")
LONG_RUN_TOPIC = "seed-history: 200-step run"
LONG_RUN_STEPS = 200
HISTORY_DAYS = 90


class _RunWriter:
    """Builds one run's rows in the order the engine writes them."""

    def __init__(self, world: World, batch: Batch, rng: random.Random, run_id: uuid.UUID):
        self.world = world
        self.batch = batch
        self.rng = rng
        self.run_id = run_id
        self.seq = 0
        self.steps_completed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = Decimal(0)
        self.calls = 0
        # The workflow and launching user, as the engine records them on each ledger row.
        self.dimensions: dict[str, str] = {}
        self.messages: list[str] = []
        self.facets: dict[str, set[str]] = {
            "models": set(),
            "providers": set(),
            "agents": set(),
            "errors": set(),
        }

    def event(self, at: datetime, step_key: str, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.batch.events.append(
            {
                "run": self.run_id,
                "seq": self.seq,
                "step_key": step_key,
                "kind": kind,
                "data": data,
                "created_at": at,
            }
        )

    def step(
        self,
        *,
        key: str,
        node_id: str,
        node_type: str,
        start: datetime,
        end: datetime | None,
        status: str,
        input: Any,
        output: Any = None,
        error: str = "",
        attempt: int = 1,
    ) -> None:
        if status == Step.Status.COMPLETED:
            self.steps_completed += 1
        self.batch.steps.append(
            {
                "run": self.run_id,
                "key": key,
                "node_id": node_id,
                "node_type": node_type,
                "status": status,
                "attempt": attempt,
                "input": input,
                "output": output,
                "branch": "",
                "variables": {},
                "error": error,
                "started_at": start,
                "finished_at": end,
            }
        )

    def call(
        self, *, at: datetime, step_key: str, agent_id: str, fail: tuple[str, int | None] | None
    ) -> tuple[datetime, dict[str, Any]]:
        """One provider attempt; returns when it ended and the usage a message carries."""
        provider, model, price_source, prices = self.world.agents[agent_id]
        rng = self.rng
        latency = int(rng.lognormvariate(7.2, 0.6))  # median ~1.3 s
        prompt = rng.randint(80, 2400)
        completion = 0 if fail else rng.randint(40, 700)
        cost = Decimal(0)
        if fail is None and prices is not None:
            cost = (Decimal(prices[0]) * prompt + Decimal(prices[1]) * completion) / 1000
            cost = cost.quantize(Decimal("0.00000001"))
        end = at + timedelta(milliseconds=latency)
        self.batch.ledger.append(
            {
                "call_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "workspace": self.world.workspace.pk,
                "provider": provider.pk,
                "deployment_id": f"{provider.pk}:{model}",
                "provider_kind": provider.kind,
                "model": model,
                "attempt": 1,
                "status": LedgerEntry.Status.FAILED if fail else LedgerEntry.Status.COMPLETED,
                "prompt_tokens_estimate": prompt,
                "prompt_tokens": 0 if fail else prompt,
                "completion_tokens": completion,
                "cached_tokens": 0,
                "cost": cost,
                "cost_estimated": False,
                "price_source": "" if fail else price_source,
                "latency_ms": latency,
                "first_token_ms": None if fail else min(latency, 150 + latency // 10),
                "error_kind": fail[0] if fail else "",
                "http_status": fail[1] if fail else 200,
                "run_id": self.run_id,
                "source": {
                    "step_key": step_key,
                    "agent_id": agent_id,
                    "agent_version": "1",
                    "source": "run",
                    **self.dimensions,
                },
                "started_at": at,
                "finished_at": end,
            }
        )
        self.calls += 1
        self.facets["models"].add(model)
        self.facets["providers"].add(str(provider.pk))
        self.facets["agents"].add(agent_id)
        if fail:
            self.facets["errors"].add(fail[0])
        if not fail:
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.cost += cost
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": str(cost),
            "model": model,
            "deployment": provider.name,
            "latency_ms": latency,
            "retries": 0,
            "fallbacks": 0,
        }
        return end, usage

    def agent_turn(
        self,
        *,
        at: datetime,
        key: str,
        node_id: str,
        node_type: str,
        agent_id: str,
        prompt: str,
        topic: str,
        fail_with: tuple[str, int | None, str] | None,
        record_step: bool = True,
    ) -> tuple[datetime, bool]:
        """A model call (retried once on a transient error); returns (end, succeeded)."""
        rng = self.rng
        end = at
        retries = 0
        if fail_with is None and rng.random() < 0.06:
            kind, status, _ = ERRORS[rng.choice((0, 1, 2))]
            end, _ = self.call(at=end, step_key=key, agent_id=agent_id, fail=(kind, status))
            end += timedelta(milliseconds=rng.randint(200, 2000))  # the back-off
            retries = 1
        if fail_with is not None:
            kind, status, message = fail_with
            end, _ = self.call(at=end, step_key=key, agent_id=agent_id, fail=(kind, status))
            error = f"{message} ({self.world.agent_names[agent_id]})"
            if record_step:
                self.step(
                    key=key,
                    node_id=node_id,
                    node_type=node_type,
                    start=at,
                    end=end,
                    status=Step.Status.FAILED,
                    input={"prompt": prompt},
                    error=error,
                )
            self.event(end, key, "node_failed", {"node_id": node_id, "error": error})
            return end, False
        end, usage = self.call(at=end, step_key=key, agent_id=agent_id, fail=None)
        usage["retries"] = retries
        text = rng.choice(SAYS).format(t=topic)
        self.messages.append(text)
        if record_step:
            self.step(
                key=key,
                node_id=node_id,
                node_type=node_type,
                start=at,
                end=end,
                status=Step.Status.COMPLETED,
                input={"prompt": prompt},
                output=text,
            )
        name = self.world.agent_names[agent_id]
        self.event(
            end,
            key,
            "message",
            {"agent": name, "agent_id": agent_id, "text": text, "usage": usage},
        )
        return end, True


def _agents_of(node: dict[str, Any]) -> list[str]:
    config = node.get("config") or {}
    if config.get("agent_id"):
        return [config["agent_id"]]
    return list(config.get("members") or config.get("agents") or config.get("voters") or [])


def run_rows(world: World, batch: Batch, index: int, *, long_run: bool = False) -> None:
    rng = random.Random(f"seed-history-{index}")  # ints seed by their absolute value
    run_id = LONG_RUN_ID if long_run else uuid.UUID(int=rng.getrandbits(128), version=4)
    workflow, versions = world.workflows[0 if long_run else rng.randrange(len(world.workflows))]
    if long_run:
        workflow, versions = next(
            (w, v)
            for w, v in world.workflows
            if any(n["type"] == "group_chat" for n in v[-1].graph["nodes"])
        )
    version = versions[-1] if long_run else rng.choices(versions, weights=(2, 3, 5))[0]
    graph = version.graph
    topic = LONG_RUN_TOPIC if long_run else rng.choice(TOPICS)
    fields = (graph.get("inputs") or {}).get("fields") or [{"name": "topic"}]
    inputs = {fields[0]["name"]: topic if long_run else rng.choice(ASKS).format(t=topic)}
    age = (
        timedelta(minutes=1) if long_run else timedelta(seconds=rng.random() * HISTORY_DAYS * 86400)
    )
    created = world.now - age
    has_human = any(n["type"] == "human" for n in graph["nodes"])
    roll = rng.random()
    outcome = "succeeded"
    if long_run:
        pass
    elif has_human and roll < 0.4 and age < timedelta(days=14):
        outcome = "waiting"
    elif roll < 0.09:
        outcome = "failed"
    elif roll < 0.13:
        outcome = "cancelled"
    via_roll = rng.random()
    person = rng.choices(world.people[:3], weights=(5, 3, 2))[0]
    if via_roll < 0.70:
        via, created_by = LaunchedVia.WEB, person
    elif via_roll < 0.85:
        via, created_by = LaunchedVia.API, person
    elif via_roll < 0.93:
        via, created_by = LaunchedVia.SCHEDULE, None
    elif via_roll < 0.98:
        via, created_by = LaunchedVia.COMMAND_LINE, None
    else:
        via, created_by = LaunchedVia.A2A, None

    writer = _RunWriter(world, batch, rng, run_id)
    writer.dimensions = {
        "workflow_id": str(workflow.pk),
        "user_id": str(created_by.pk) if created_by else "",
    }
    started = created + timedelta(milliseconds=rng.randint(20, 900))
    at = started
    nodes = [n for n in graph["nodes"] if n["type"] not in ("start", "end", "parallel")]
    # Nodes right after a parallel node run in branch b (edge order): their key is `node[b]`.
    fans = {n["id"] for n in graph["nodes"] if n["type"] == "parallel"}
    branch_of: dict[str, int] = {}
    for edge in graph["edges"]:
        if edge["source"] in fans:
            branch_of[edge["target"]] = len([t for t in branch_of if t])
    # Where a failure or a cancel strikes: somewhere among the model calls.
    failing: tuple[str, int | None, str] | None = None
    if outcome == "failed":
        failing = rng.choices(ERRORS, weights=(3, 3, 4, 1, 1, 1, 1))[0]
    stop = False
    output: Any = None
    waiting_request = None
    for node in nodes:
        if stop:
            break
        node_id, node_type = node["id"], node["type"]
        agents = _agents_of(node)
        last = node is nodes[-1] or (has_human and node_type == "human")
        fail_here = failing if failing and (last or rng.random() < 0.4) else None
        if node_type == "agent" and agents:
            if outcome == "cancelled" and rng.random() < 0.5:
                stop = True
                break
            key = f"{node_id}[{branch_of[node_id]}]" if node_id in branch_of else node_id
            at, ok = writer.agent_turn(
                at=at,
                key=key,
                node_id=node_id,
                node_type=node_type,
                agent_id=agents[0],
                prompt=f"{inputs[fields[0]['name']]}",
                topic=topic,
                fail_with=fail_here,
            )
            output = writer.messages[-1] if ok else output
            stop = not ok
        elif node_type == "human":
            step_key = node_id
            request = {
                "kind": "approval",
                "prompt": f"Publish this draft about {topic}?",
                "node_id": node_id,
                "field": None,
                "timeout_s": None,
            }
            writer.event(at, step_key, "human_request", {"key": step_key, **request})
            if outcome == "waiting":
                waiting_request = {"step_key": step_key, **request, "since": at.isoformat()}
                writer.step(
                    key=step_key,
                    node_id=node_id,
                    node_type=node_type,
                    start=at,
                    end=None,
                    status=Step.Status.RUNNING,
                    input=request,
                )
                stop = True
                break
            answered = at + timedelta(minutes=rng.randint(1, 600))
            text = "Approved."
            writer.event(
                answered,
                step_key,
                "message",
                {
                    "agent": created_by.username if created_by else "reviewer",
                    "role": "human",
                    "text": text,
                },
            )
            writer.step(
                key=step_key,
                node_id=node_id,
                node_type=node_type,
                start=at,
                end=answered,
                status=Step.Status.COMPLETED,
                input=request,
                output="approved",
            )
            at = answered
            break  # the approved branch ends the run
        elif agents:  # a team: group chat, hand-off desk or vote
            turns = (
                LONG_RUN_STEPS - 1
                if long_run
                else len(agents)
                if node_type == "vote"
                else rng.randint(8, 28)
            )
            team_start = at
            for turn in range(1, turns + 1):
                if outcome == "cancelled" and turn > 1 and rng.random() < 0.2:
                    stop = True
                    break
                agent_id = agents[(turn - 1) % len(agents)]
                if node_type == "vote":
                    key = f"{node_id}/voter-{turn - 1}"
                elif node_type == "handoff":
                    key = f"{node_id}/agent-{(turn - 1) % len(agents)}-{turn}"
                else:
                    key = f"{node_id}/turn-{turn}"
                fail_turn = fail_here if fail_here and turn == turns else None
                at, ok = writer.agent_turn(
                    at=at,
                    key=key,
                    node_id=node_id,
                    node_type="agent",
                    agent_id=agent_id,
                    prompt=f"{inputs[fields[0]['name']]}",
                    topic=topic,
                    fail_with=fail_turn,
                )
                if not ok:
                    stop = True
                    break
                if node_type == "vote":
                    writer.event(
                        at,
                        key,
                        "vote",
                        {"voter": writer.world.agent_names[agent_id], "choice": "adopt"},
                    )
                elif node_type == "handoff" and turn < turns:
                    writer.event(
                        at,
                        key,
                        "handoff",
                        {
                            "from": writer.world.agent_names[agent_id],
                            "to": writer.world.agent_names[agents[turn % len(agents)]],
                        },
                    )
            if stop:
                break
            output = writer.messages[-1] if writer.messages else None
            result = (
                {"result": "adopt", "decided": True, "counts": {"adopt": turns}}
                if node_type == "vote"
                else {"node_id": node_id, "turns": turns}
            )
            writer.event(at, node_id, "vote" if node_type == "vote" else "node_finished", result)
            writer.step(
                key=node_id,
                node_id=node_id,
                node_type=node_type,
                start=team_start,
                end=at,
                status=Step.Status.COMPLETED,
                input=None,
                output=output,
            )
        else:  # a join or router: bookkeeping, quick
            end = at + timedelta(milliseconds=rng.randint(1, 20))
            writer.step(
                key=node_id,
                node_id=node_id,
                node_type=node_type,
                start=at,
                end=end,
                status=Step.Status.COMPLETED,
                input=None,
                output=output,
            )
            at = end
    finished: datetime | None = at + timedelta(milliseconds=rng.randint(5, 80))
    reason = ""
    status = outcome
    if outcome == "failed":
        reason = f"A step failed: {failing[2] if failing else 'unknown error'}"
        output = None
    elif outcome == "cancelled":
        reason = "Cancelled by a user"
        output = None
    elif outcome == "waiting":
        finished = None
    batch.runs.append(
        {
            "id": run_id,
            "workspace": world.workspace.pk,
            "workflow": workflow.pk,
            "version": version.pk,
            "status": status,
            "reason": reason,
            "inputs": inputs,
            "output": output,
            "variables": {},
            "answers": {},
            "answered_by": {},
            "waiting_request": waiting_request,
            "cancel_requested": outcome == "cancelled",
            "lease_owner": "",
            "lease_until": None,
            "attempts": 1,
            "parent": None,
            "parent_step_key": "",
            "depth": 0,
            "prompt_tokens": writer.prompt_tokens,
            "completion_tokens": writer.completion_tokens,
            "cost": writer.cost,
            "model_calls": writer.calls,
            "steps_completed": writer.steps_completed,
            "last_seq": writer.seq,
            "deadline": created + timedelta(hours=1),
            "created_by": created_by.pk if created_by else None,
            "launched_via": via,
            "pinned": (not long_run) and rng.random() < 0.005,
            "search_text": search_text_of(inputs=inputs, output=output, messages=writer.messages),
            "facets": {name: sorted(values) for name, values in writer.facets.items()},
            "created_at": created,
            "dispatched_at": created,
            "started_at": started,
            "finished_at": finished,
        }
    )
