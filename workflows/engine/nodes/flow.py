"""parallel, join, router, loop and subworkflow nodes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft, RunFailed, RunWaiting, SubrunWaiting
from workflows.engine.nodes import (
    BranchResult,
    NodeError,
    NodeFailed,
    NodeResult,
    ParsedNode,
    Reached,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.nodes.basic import message_event, reply_done
from workflows.engine.templating import MISSING, as_text, lookup, render_value
from workflows.graph.nodes import (
    JoinConfig,
    LoopConfig,
    RouterConfig,
    RouterRule,
    SubworkflowConfig,
    TextMentionCondition,
    VariablePredicateCondition,
)

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext


@executor("parallel")
async def run_parallel(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    join_id = ctx.join_for(node.id)
    join_config = ctx.nodes[join_id].config if join_id else None
    tolerant = isinstance(join_config, JoinConfig) and join_config.strategy == "first_success"
    tasks = [
        asyncio.create_task(ctx.walk(edge.target, scope.in_branch(index, join_id)))
        for index, edge in enumerate(ctx.outgoing[node.id])
    ]
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.cancelled():
                    raise asyncio.CancelledError()
                error = task.exception()
                tolerated = isinstance(error, RunWaiting) or (
                    tolerant and isinstance(error, NodeFailed)
                )
                if error is not None and not tolerated:
                    raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if any(isinstance(task.exception(), RunWaiting) for task in tasks):
        # Siblings ran as far as they could; their steps are recorded for the resume.
        raise RunWaiting(node.id)
    reached: list[Reached | None] = [
        task.result() if task.exception() is None else None for task in tasks
    ]
    # An end inside a branch ends the run once every branch has finished; the first branch
    # (in edge order) that reached an end gives the output.
    for found in reached:
        if found is not None and found.kind == "end":
            return NodeResult(finished=found)
    if join_id is None:
        first = next((found for found in reached if found is not None), None)
        return NodeResult(finished=first or Reached("dead_end", node.id, None))
    results = tuple(
        BranchResult(index, True, found.output)
        if found is not None
        else BranchResult(index, False, None, str(task.exception()))
        for index, (found, task) in enumerate(zip(reached, tasks, strict=True))
    )
    ctx.count_visit()
    join_scope = Scope(scope.suffix, scope.loops, scope.join, scope.last, results)
    joined = await ctx.run_node(ctx.nodes[join_id], join_scope)
    return NodeResult(joined.output, joined.branch, continue_from=join_id)


@executor("join")
async def run_join(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, JoinConfig)
    key = scope.key(node.id)
    branches = scope.branches or (BranchResult(0, True, scope.last),)
    succeeded = [branch for branch in branches if branch.ok]

    async def work() -> StepDone:
        if config.strategy == "first_success":
            if not succeeded:
                errors = "; ".join(f"branch {b.index + 1}: {b.error}" for b in branches)
                raise NodeError(f"Every branch failed ({errors})")
            output: Any = succeeded[0].output
        elif config.strategy == "list":
            output = [branch.output for branch in succeeded]
        elif config.strategy == "concatenate":
            output = "\n\n".join(as_text(branch.output) for branch in succeeded)
        else:
            assert config.agent_id is not None
            notes = "\n\n".join(
                f"Result {branch.index + 1}:\n{as_text(branch.output)}" for branch in succeeded
            )
            history = [{"role": "user", "content": f"Summarise these results:\n\n{notes}"}]
            reply, name = await ctx.agent_turn(key, config.agent_id, history)
            event = message_event(key, config.agent_id, name, reply)
            return reply_done(
                reply, reply.text, [event], variables=output_update(config, reply.text)
            )
        return StepDone(output, variables=output_update(config, output))

    record = await ctx.step(key, node, {"branches": len(branches)}, work)
    return NodeResult(record.output, record.branch)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rule_matches(rule: RouterRule, text: str, context: Mapping[str, Any], last: Any) -> bool:
    if rule.operator.startswith("json_field"):
        data = last
        if not isinstance(data, Mapping | list):
            try:
                data = json.loads(text)
            except ValueError:
                return False
        assert rule.field is not None
        found = lookup(rule.field, {"_": data} if not isinstance(data, Mapping) else data)
        if found is MISSING:
            return False
        if rule.operator == "json_field_equals":
            return bool(found == rule.value or as_text(found) == as_text(rule.value))
        number, limit = _number(found), _number(rule.value)
        if number is None or limit is None:
            return False
        return number > limit if rule.operator == "json_field_gt" else number < limit
    subject = text
    if rule.field is not None:
        found = lookup(rule.field, context)
        subject = "" if found is MISSING else as_text(found)
    wanted = as_text(rule.value)
    if rule.operator == "contains":
        return wanted in subject
    if rule.operator == "regex":
        return re.search(wanted, subject) is not None
    return subject.strip() == wanted


def pick_named(answer: str, names: list[str]) -> str | None:
    """The one name an answer means: an exact match, else the only name it mentions."""
    cleaned = answer.strip().strip("\"'`.*").strip()
    for name in names:
        if cleaned.lower() == name.lower():
            return name
    mentioned = [
        name for name in names if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", answer, re.I)
    ]
    return mentioned[0] if len(mentioned) == 1 else None


@executor("router")
async def run_router(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, RouterConfig)
    key = scope.key(node.id)
    notes: list[EventDraft] = []
    text = ctx.render(config.input_template, scope, notes, key)
    context = ctx.template_context(scope)

    def decided(route: str | None, reason: str) -> str:
        if route is None:
            if config.default_route is None:
                raise NodeError(f"{reason}, and there is no default route")
            route, reason = config.default_route, f"{reason}; took the default route"
        data = {"node_id": node.id, "mode": config.mode, "route": route, "reason": reason}
        notes.append(EventDraft("router_decision", data, key))
        return route

    async def work() -> StepDone:
        if config.mode == "rules":
            for index, rule in enumerate(config.rules, start=1):
                if rule_matches(rule, text, context, scope.last):
                    route = decided(rule.route, f"rule {index} ({rule.operator}) matched")
                    return StepDone(scope.last, branch=route, events=notes)
            route = decided(None, "no rule matched")
            return StepDone(scope.last, branch=route, events=notes)
        assert config.agent_id is not None
        choices = ", ".join(config.routes)
        instructions = f"Choose where this goes next. Answer with exactly one of: {choices}."
        history = [{"role": "user", "content": text}]
        reply, name = await ctx.agent_turn(key, config.agent_id, history, instructions=instructions)
        chosen = pick_named(reply.text, list(config.routes))
        reason = (
            f"{name} answered {chosen!r}"
            if chosen
            else f"{name} answered {reply.text.strip()[:200]!r}, which is not a route"
        )
        route = decided(chosen, reason)
        return reply_done(
            reply,
            scope.last,
            [message_event(key, config.agent_id, name, reply), *notes],
            branch=route,
        )

    record = await ctx.step(key, node, {"text": text}, work)
    return NodeResult(record.output, record.branch)


def condition_holds(config: LoopConfig, last: Any, variables: Mapping[str, Any]) -> bool:
    condition = config.condition
    if isinstance(condition, TextMentionCondition):
        return condition.value in as_text(last)
    if isinstance(condition, VariablePredicateCondition):
        value, wanted = variables.get(condition.variable), condition.value
        operator = condition.operator
        if operator == "truthy":
            return bool(value)
        if operator == "equals":
            return bool(value == wanted)
        if operator == "not_equals":
            return bool(value != wanted)
        if operator == "contains":
            return value is not None and as_text(wanted) in as_text(value)
        number, limit = _number(value), _number(wanted)
        if number is None or limit is None:
            return False
        return {"gt": number > limit, "lt": number < limit, "gte": number >= limit}.get(
            operator, number <= limit
        )
    return False


@executor("loop")
async def run_loop(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, LoopConfig)
    body = ctx.targets(node.id, "loop")
    last = scope.last
    for iteration in range(config.max_iterations):
        reached = await ctx.walk(body[0], scope.in_loop(node.id, iteration, last))
        if reached.kind != "loop_back" or reached.node_id != node.id:
            # The body left the loop by another way (an end, or an outer loop's edge).
            return NodeResult(finished=reached)
        last = reached.output
        if condition_holds(config, last, ctx.variables):
            break
    return NodeResult(last, "done")


# Output-mapping keys that take the child's whole output, whatever its type (text included).
WHOLE_OUTPUT = "*"
OUTPUT_KEY = "output"


def subworkflow_updates(
    mapping: Mapping[str, str], output: Any
) -> tuple[dict[str, Any], list[str]]:
    """The parent's variable updates from a child's output, and the keys that found nothing.

    A key names a field of an object output (a dotted path reaches inside it); "*" takes the
    whole output, and so does "output" when the output has no such field (a text, a number, a
    list): a child of any type maps back."""
    updates: dict[str, Any] = {}
    unmatched: list[str] = []
    for child, variable in mapping.items():
        if child == WHOLE_OUTPUT:
            updates[variable] = output
            continue
        found = lookup(child, output) if isinstance(output, Mapping) else MISSING
        if found is MISSING and child == OUTPUT_KEY:
            found = output
        if found is MISSING:
            unmatched.append(child)
        else:
            updates[variable] = found
    return updates, unmatched


def _parent_request(key: str, node: ParsedNode, waiting: SubrunWaiting) -> dict[str, Any]:
    """What the parent shows while its child waits: the child's question, answered from either
    run page (an answer given here goes to the child), and which child asks it."""
    asked = {
        name: value
        for name, value in waiting.request.items()
        if name not in ("step_key", "since", "timeout_s", "node_id")
    }
    return {
        **asked,
        "node_id": node.id,
        "child_run_id": waiting.child_run_id,
        "child_step_key": str(waiting.request.get("step_key") or ""),
    }


@executor("subworkflow")
async def run_subworkflow(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, SubworkflowConfig)
    key = scope.key(node.id)
    depth = ctx.snapshot.depth + 1
    if depth > config.max_depth:
        raise NodeError(
            f"Sub-workflow '{config.workflow_id}' would run at depth {depth}, "
            f"beyond max_depth {config.max_depth}"
        )
    missing: list[str] = []
    inputs = render_value(dict(config.input_mapping), ctx.template_context(scope), missing)

    async def work() -> StepDone:
        try:
            output = await ctx.engine.subworkflows.run(
                workflow_id=config.workflow_id,
                version=config.version,
                inputs=inputs,
                parent_run_id=ctx.run_id,
                step_key=key,
                depth=depth,
            )
        except RunFailed as exc:
            raise NodeError(f"Sub-workflow '{config.workflow_id}' failed: {exc.reason}") from exc
        updates, unmatched = subworkflow_updates(config.output_mapping, output)
        events = [
            EventDraft("node_finished", {"workflow_id": config.workflow_id, "depth": depth}, key)
        ]
        if unmatched:
            shape = "an object" if isinstance(output, Mapping) else f"a {type(output).__name__}"
            message = (
                f"The sub-workflow's output ({shape}) has no {', '.join(map(repr, unmatched))}: "
                f"map '{WHOLE_OUTPUT}' to take the whole output."
            )
            events.append(EventDraft("log", {"level": "warning", "message": message}, key))
        return StepDone(output, variables=updates, events=events)

    try:
        record = await ctx.step(key, node, {"inputs": inputs}, work)
    except SubrunWaiting as waiting:
        # The child's state is the truth: the parent waits, and the child's move wakes it.
        await ctx.wait(key, _parent_request(key, node, waiting))
        raise  # wait() always raises; this line is never reached
    return NodeResult(record.output, record.branch)
