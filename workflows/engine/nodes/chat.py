"""A group chat's running state and the choice of who speaks next.

Selection by an agent comes in two shapes. Without a selector prompt the selector reads the chat
so far and is told the candidates' names; an answer naming none falls back to round robin. With
a selector prompt (AutoGen's SelectorGroupChat) the prompt alone is the request, with {roles},
{participants} and {history} filled in as AutoGen fills them; the answer must mention exactly one
participant, the selector is asked again with AutoGen's feedback up to max_selector_attempts,
and then the previous speaker (or the first candidate) speaks, as in AutoGen. In both shapes a
single candidate (one member, or two without repeats) speaks without asking the selector.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft
from workflows.engine.nodes import ParsedNode, StepDone
from workflows.engine.nodes.flow import pick_named
from workflows.graph.nodes import (
    AllOf,
    AnyOf,
    CostBudget,
    GroupChatConfig,
    MaxMessages,
    TextMention,
    TokenBudget,
)
from workflows.graph.nodes import Timeout as TimeoutCondition

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext


def chat_history(task: str, transcript: list[dict[str, Any]], speaker: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = [{"role": "user", "content": task}]
    for message in transcript:
        if message["agent_id"] == speaker:
            history.append({"role": "assistant", "content": message["text"]})
        else:
            history.append({"role": "user", "content": f"{message['agent']}: {message['text']}"})
    return history


class ChatState:
    def __init__(self, started: float, task: str, task_counts: bool = False) -> None:
        self.started = started
        self.task = task
        self.task_counts = task_counts
        self.transcript: list[dict[str, Any]] = []
        # AutoGen's MaxMessageTermination sees the task as the first message.
        self.agent_messages = 1 if task_counts else 0
        self.tokens = 0
        self.cost = Decimal(0)

    def restarted(self, now: float, task: str) -> ChatState:
        """Counts that start over, as in AutoGen when the user's answer begins a new run."""
        fresh = ChatState(now, task, self.task_counts)
        fresh.transcript = self.transcript
        return fresh

    def holds(self, condition: Any, now: float) -> bool:
        if isinstance(condition, AnyOf):
            return any(self.holds(part, now) for part in condition.any_of)
        if isinstance(condition, AllOf):
            return all(self.holds(part, now) for part in condition.all_of)
        if self.transcript:
            last = self.transcript[-1]["text"]
        else:
            last = self.task if self.task_counts else ""
        if isinstance(condition, MaxMessages):
            return self.agent_messages >= condition.max_messages
        if isinstance(condition, TextMention):
            return condition.text_mention in last
        if isinstance(condition, TokenBudget):
            return self.tokens >= condition.token_budget
        if isinstance(condition, CostBudget):
            return self.cost >= Decimal(str(condition.cost_budget_usd))
        if isinstance(condition, TimeoutCondition):
            # Measured on this process's clock: replayed turns take no time.
            return now - self.started >= condition.timeout_s
        return False  # handoff_to_human pauses the chat, it never ends it


def mentioned(text: str, names: list[str]) -> list[str]:
    """The names a selector's answer mentions, matched as AutoGen does: whole words, with an
    underscore also matching a space or an escaped underscore."""
    padded = f" {text} "
    found = []
    for name in names:
        forms = (name, name.replace("_", " "), name.replace("_", r"\_"))
        pattern = r"(?<=\W)(" + "|".join(re.escape(form) for form in forms) + r")(?=\W)"
        if re.search(pattern, padded):
            found.append(name)
    return found


def fill_selector_prompt(
    prompt: str, names: list[str], candidates: list[str], state: ChatState
) -> str:
    lines = [f"user: {state.task}".rstrip() + "\n\n"]
    lines += [f"{m['agent']}: {m['text']}".rstrip() + "\n\n" for m in state.transcript]
    filled = {
        # The importer writes AutoGen's "name: description" lines in; names are the fallback.
        "{roles}": "\n".join(names),
        "{participants}": "[" + ", ".join(repr(name) for name in candidates) + "]",
        "{history}": "\n".join(lines),
    }
    return re.sub(r"\{roles\}|\{participants\}|\{history\}", lambda m: filled[m.group(0)], prompt)


async def next_speaker(
    ctx: RunContext,
    node: ParsedNode,
    config: GroupChatConfig,
    key: str,
    turn: int,
    state: ChatState,
    names: list[str],
) -> str:
    members = list(config.members)
    spoken = [message for message in state.transcript if message["agent_id"] is not None]
    previous = spoken[-1]["agent_id"] if spoken else None
    # Round robin continues after whoever spoke last, so rules and selectors can fall back to it.
    after = members.index(previous) + 1 if previous else 0
    round_robin = members[after % len(members)]
    if config.speaker_selection == "rules" and spoken:
        last = spoken[-1]
        for rule in config.speaker_rules:
            if rule.after_speaker == last["agent_id"] and (
                rule.when_contains is None or rule.when_contains in last["text"]
            ):
                return rule.next_speaker
        return round_robin
    if config.speaker_selection != "llm_selector":
        return round_robin
    candidates = [
        member
        for member in members
        if config.allow_repeated_speaker or member != previous or len(members) == 1
    ]
    if len(candidates) == 1:
        return candidates[0]
    if config.selector_prompt:
        return await _select_by_prompt(
            ctx, node, config, key, turn, state, names, candidates, previous
        )
    return await _select_by_chat(
        ctx, node, config, key, turn, state, names, candidates, round_robin
    )


async def _select_by_chat(
    ctx: RunContext,
    node: ParsedNode,
    config: GroupChatConfig,
    key: str,
    turn: int,
    state: ChatState,
    names: list[str],
    candidates: list[str],
    round_robin: str,
) -> str:
    members = list(config.members)
    candidate_names = [names[members.index(member)] for member in candidates]
    history = chat_history(state.task, state.transcript, str(config.selector_agent_id))
    instructions = "Who should speak next? Answer with exactly one of: " + ", ".join(
        candidate_names
    )

    def choose(text: str) -> tuple[str | None, str]:
        chosen = pick_named(text, candidate_names)
        if chosen is None:
            return None, "Answer with exactly one of: " + ", ".join(candidate_names) + "."
        return candidates[candidate_names.index(chosen)], ""

    return await _selection_step(
        ctx, node, config, key, turn, history, instructions, choose, round_robin, names
    )


async def _select_by_prompt(
    ctx: RunContext,
    node: ParsedNode,
    config: GroupChatConfig,
    key: str,
    turn: int,
    state: ChatState,
    names: list[str],
    candidates: list[str],
    previous: str | None,
) -> str:
    members = list(config.members)
    candidate_names = [names[members.index(member)] for member in candidates]
    assert config.selector_prompt is not None
    prompt = fill_selector_prompt(config.selector_prompt, names, candidate_names, state)
    listed = "[" + ", ".join(repr(name) for name in candidate_names) + "]"

    def choose(text: str) -> tuple[str | None, str]:
        # Every member's name counts, so naming the previous speaker is caught, not ignored.
        found = mentioned(text, names)
        if not found:
            return None, f"No valid name was mentioned. Please select from: {listed}."
        if len(found) > 1:
            return None, (
                f"Expected exactly one name to be mentioned. Please select only one from: {listed}."
            )
        member = members[names.index(found[0])]
        if member not in candidates:
            return None, (
                f"Repeated speaker is not allowed, please select a different name from: {listed}."
            )
        return member, ""

    fallback = previous or candidates[0]
    history = [{"role": "user", "content": prompt}]
    return await _selection_step(ctx, node, config, key, turn, history, "", choose, fallback, names)


async def _selection_step(
    ctx: RunContext,
    node: ParsedNode,
    config: GroupChatConfig,
    key: str,
    turn: int,
    history: list[dict[str, Any]],
    instructions: str,
    choose: Any,
    fallback: str,
    names: list[str],
) -> str:
    assert config.selector_agent_id is not None
    selector = config.selector_agent_id
    select_key = f"{key}/select-{turn}"

    async def work() -> StepDone:
        asked = list(history)
        events: list[EventDraft] = []
        tokens = 0
        cost = Decimal(0)
        answers: list[str] = []
        member: str | None = None
        for attempt in range(config.max_selector_attempts):
            attempt_key = select_key if attempt == 0 else f"{select_key}/retry-{attempt}"
            reply, _ = await ctx.agent_turn(
                attempt_key, selector, asked, instructions=instructions, role="selector"
            )
            events += reply.events
            tokens += reply.prompt_tokens + reply.completion_tokens
            cost += reply.cost
            answers.append(reply.text.strip()[:200])
            member, feedback = choose(reply.text)
            if member is not None:
                break
            asked += [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": feedback},
            ]
        # An answer naming no candidate falls back, recorded so a replay agrees.
        reason = "answered " + ", then ".join(repr(answer) for answer in answers)
        data = {
            "node_id": node.id,
            "speaker": member or fallback,
            "reason": reason,
            "fallback": member is None,
            # For the transcript, which knows members by name, not by id.
            "speaker_name": names[list(config.members).index(member or fallback)],
        }
        events.append(EventDraft("state", data, select_key))
        return StepDone(member or fallback, events=events, tokens=tokens, cost=cost)

    record = await ctx.step(select_key, node, None, work)
    return str(record.output)
