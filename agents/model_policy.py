"""Model policies: which model one turn of an agent uses, chosen by rules or a classifier.

Rules are tried in order and the first that holds wins; none holding leaves the agent's own
model. "The input" is the text of the turn's messages (its history), so a long conversation
counts as a long input. A classifier policy asks a cheap model whether the input is simple or
complex, through the gateway like any call (it is ledgered, priced and traced as part of the
turn's step); an answer naming neither, or a classifier that fails, leaves the agent's model,
and the reason says so. Every choice comes with a reason a person can read in the transcript
and the trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.config import AgentConfig, ModelChoice, ModelPolicy, PolicyRule

CLASSIFIER_PROMPT = (
    "You sort requests for a team of AI agents. Answer with one word: simple (a short, routine "
    "request a small model handles well) or complex (long, multi-step, subtle or high-stakes "
    "reasoning)."
)
# The classifier reads at most this much of the input: it is meant to be cheap.
CLASSIFIER_INPUT_CHARS = 4000


@dataclass(frozen=True)
class PolicyChoice:
    model: ModelChoice
    reason: str


def policy_input(history: Sequence[Mapping[str, Any]]) -> str:
    """The text a policy judges: every message's text content, in order."""
    parts = []
    for message in history:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "\n".join(part for part in parts if part)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def rule_holds(
    rule: PolicyRule, *, text: str, variables: Mapping[str, Any], role: str, node_type: str
) -> bool:
    if rule.when == "input_longer_than":
        return len(text) > int(rule.value)
    if rule.when == "input_shorter_than":
        return len(text) < int(rule.value)
    if rule.when == "input_contains":
        return str(rule.value).lower() in text.lower()
    if rule.when == "variable_equals":
        assert rule.variable is not None
        if rule.variable not in variables:
            return False
        return _as_text(variables[rule.variable]).strip() == str(rule.value).strip()
    wanted = str(rule.value).strip().lower()
    return wanted in (role.lower(), node_type.lower())


def describe_rule(rule: PolicyRule) -> str:
    if rule.when == "input_longer_than":
        return f"input longer than {rule.value} characters"
    if rule.when == "input_shorter_than":
        return f"input shorter than {rule.value} characters"
    if rule.when == "input_contains":
        return f"input contains “{rule.value}”"
    if rule.when == "variable_equals":
        return f"{rule.variable} = {rule.value}"
    return f"role is {rule.value}"


def rules_choose(
    policy: ModelPolicy,
    default: ModelChoice,
    *,
    text: str,
    variables: Mapping[str, Any],
    role: str,
    node_type: str,
) -> PolicyChoice:
    for index, rule in enumerate(policy.rules, start=1):
        if rule_holds(rule, text=text, variables=variables, role=role, node_type=node_type):
            return PolicyChoice(
                rule.use, f"rule {index} ({describe_rule(rule)}) → {rule.use.model}"
            )
    return PolicyChoice(default, f"no rule held → {default.model}")


def classifier_messages(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": CLASSIFIER_PROMPT},
        {"role": "user", "content": text[:CLASSIFIER_INPUT_CHARS]},
    ]


def classifier_verdict(answer: str) -> str | None:
    """ "simple", "complex", or None when the answer names neither (or both)."""
    lowered = answer.lower()
    simple, complex_ = "simple" in lowered, "complex" in lowered
    if simple == complex_:
        return None
    return "simple" if simple else "complex"


def classifier_choose(config: AgentConfig, answer: str | None, error: str = "") -> PolicyChoice:
    policy = config.model_policy
    assert policy is not None and policy.complex_model is not None
    if error:
        return PolicyChoice(config.model, f"classifier failed ({error}) → {config.model.model}")
    verdict = classifier_verdict(answer or "")
    if verdict == "complex":
        return PolicyChoice(
            policy.complex_model, f"classifier: complex → {policy.complex_model.model}"
        )
    if verdict == "simple":
        return PolicyChoice(config.model, f"classifier: simple → {config.model.model}")
    return PolicyChoice(config.model, f"classifier answered neither → {config.model.model}")
