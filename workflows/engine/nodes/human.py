"""human nodes: input and approval, answered from outside while the run waits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft
from workflows.engine.nodes import (
    NodeError,
    NodeResult,
    ParsedNode,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.templating import as_text
from workflows.graph.nodes import HumanConfig

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext

# The answer the Django side records when a human step's timeout passes without an answer.
HUMAN_TIMEOUT: Mapping[str, Any] = {"timed_out": True}


def is_timeout(answer: Any) -> bool:
    return isinstance(answer, Mapping) and answer.get("timed_out") is True


def approval_output(approved: bool, answer: Any) -> tuple[dict[str, Any], str]:
    comment = answer.get("comment", "") if isinstance(answer, Mapping) else ""
    return {"approved": approved, "comment": comment}, "approved" if approved else "rejected"


def is_approval(answer: Any) -> bool:
    """A person's yes: True, "approved"/"approve"/"yes", or {"approved": true}."""
    if isinstance(answer, Mapping):
        answer = answer.get("approved", answer.get("decision"))
    if isinstance(answer, str):
        return answer.strip().lower() in {"approved", "approve", "yes", "y", "true", "ok"}
    return answer is True


def answer_sentence(config: HumanConfig, output: Any, *, timed_out: bool) -> str:
    """The answer as the transcript says it: "Approved.", "Rejected: too long", "topic: x"."""
    if config.kind == "approval" and isinstance(output, Mapping):
        said = "Approved" if output.get("approved") else "Rejected"
        comment = str(output.get("comment") or "").strip()
        sentence = f"{said}: {comment}" if comment else f"{said}."
    elif isinstance(output, Mapping):
        sentence = "\n".join(f"{name}: {as_text(value)}" for name, value in output.items())
    else:
        sentence = as_text(output)
    if timed_out:
        return f"No answer within {config.timeout_s} s, so: {sentence}"
    return sentence


def answer_result(config: HumanConfig, answer: Any, key: str, by: str = "") -> StepDone:
    branch: str | None = None
    if is_timeout(answer):
        policy = config.on_timeout
        if policy == "fail":
            raise NodeError(f"No answer within {config.timeout_s} s")
        if policy == "default_value":
            output: Any = config.default_value
            if config.kind == "approval":
                output, branch = approval_output(is_approval(output), output)
        else:
            output, branch = approval_output(policy == "approve", answer)
    elif config.kind == "approval":
        output, branch = approval_output(is_approval(answer), answer)
    else:
        output = answer
    timed_out = is_timeout(answer)
    who = "no answer" if timed_out else (by or "a person")
    text = answer_sentence(config, output, timed_out=timed_out)
    events = [EventDraft("message", {"agent": who, "role": "human", "text": text}, key)]
    return StepDone(output, branch, variables=output_update(config, output), events=events)


@executor("human")
async def run_human(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    config = node.config
    assert isinstance(config, HumanConfig)
    key = scope.key(node.id)
    notes: list[EventDraft] = []
    request = {
        "kind": config.kind,
        "prompt": ctx.render(config.prompt, scope, notes, key),
        "node_id": node.id,
        "field": config.field.model_dump(mode="json") if config.field else None,
        "timeout_s": config.timeout_s,
    }
    record = await ctx.human_step(
        key, node, request, lambda answer: answer_result(config, answer, key, ctx.answerer(key))
    )
    return NodeResult(record.output, record.branch)
