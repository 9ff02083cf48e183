"""Deterministic replies: the default text, token estimates and the reply plan.

The default reply reads the persona from the system prompt ("You are a researcher...") and the
subject from the last user message ("...about solar panels"), and picks its sentences with a
hash of the conversation, so the same conversation always gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from . import demo
from .protocols.base import ChatRequest, ReplyPlan, ToolCall, dumps
from .script import Rule, ToolCallSpec


def estimate_tokens(chars: int | str) -> int:
    """About four characters per token, never less than one."""
    n = len(chars) if isinstance(chars, str) else chars
    return max(1, (n + 3) // 4)


_PERSONA_RE = re.compile(r"\byou are\s+(?:an?\s+|the\s+|my\s+|our\s+)?([a-z][a-z\s-]{0,60})", re.I)
_PERSONAS: Final = (
    ("research", "researcher"),
    ("scien", "researcher"),
    ("analy", "analyst"),
    ("copywrit", "writer"),
    ("writ", "writer"),
    ("author", "writer"),
    ("journalist", "writer"),
    ("edit", "critic"),
    ("review", "critic"),
    ("critic", "critic"),
    ("judge", "critic"),
    ("plan", "planner"),
    ("strateg", "planner"),
    ("coordinat", "planner"),
    ("orchestrat", "planner"),
    ("manag", "planner"),
    ("engineer", "engineer"),
    ("develop", "engineer"),
    ("program", "engineer"),
    ("coder", "engineer"),
    ("summar", "summarizer"),
)

_TEMPLATES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "researcher": (
        (
            "Here is a short research brief on {s}.",
            "I reviewed what is currently known about {s}.",
            "Research notes on {s} follow.",
        ),
        (
            "The most reliable sources on {s} point to steady, measurable progress, although "
            "results depend heavily on conditions and methodology.",
            "Field data on {s} tends to be more conservative than laboratory results, so headline "
            "figures should be read with care.",
            "Studies of {s} agree on the overall trend but disagree on its size, mostly because "
            "they measure different things.",
        ),
        (
            "Open questions remain around cost, durability and scale.",
            "I would confirm these points against primary sources before relying on them.",
            "A useful next step is to compare the most recent studies side by side.",
        ),
    ),
    "analyst": (
        (
            "Analysis of {s}:",
            "Here is how the numbers on {s} look.",
            "A quick analysis of {s} follows.",
        ),
        (
            "The trend for {s} is positive overall, with most of the variation explained by two "
            "or three factors.",
            "Looking at {s}, the averages hide a wide spread, so the median is the safer figure.",
            "The data on {s} supports a cautious conclusion: the effect is real but smaller than "
            "often claimed.",
        ),
        (
            "Confidence is moderate; more recent data would sharpen the estimate.",
            "The main risk is a change in the underlying assumptions.",
            "I would track these figures again next quarter.",
        ),
    ),
    "writer": (
        (
            "Here is a draft about {s}.",
            "A first draft on {s}:",
            "Draft: {s}, in brief.",
        ),
        (
            "{S} matters because it touches everyday decisions, and the clearest way in is a "
            "concrete example.",
            "Told plainly, the story of {s} is one of small improvements that add up over time.",
            "Most readers meet {s} without noticing it, which is exactly why it deserves a closer "
            "look.",
        ),
        (
            "Tell me the tone and length you want and I will revise it.",
            "I can tighten this or expand any part of it.",
            "A stronger ending could point the reader to one practical step.",
        ),
    ),
    "critic": (
        (
            "Review of the work on {s}.",
            "Feedback on {s}:",
            "Here is my review concerning {s}.",
        ),
        (
            "The main argument is clear, but the evidence behind it is thin in places.",
            "The structure works; the second half repeats points the first half already made.",
            "The claims are reasonable, though two of them need a source before they can stand.",
        ),
        (
            "Verdict: a good direction that needs one more revision.",
            "Suggested next step: add sources and cut the repetition.",
            "With those fixes it would be ready to publish.",
        ),
    ),
    "planner": (
        (
            "Plan for {s}:",
            "Here is how I would organise the work on {s}.",
            "Proposed plan for {s}.",
        ),
        (
            "1. Gather what is already known about {s}. 2. Pick the two or three questions that "
            "matter most. 3. Give each question to the right specialist and merge the results.",
            "1. Define what done looks like for {s}. 2. Split the work into independent steps. "
            "3. Review the combined result before delivering it.",
            "1. Research {s}. 2. Draft an answer from the findings. 3. Have the draft reviewed "
            "and revised once.",
        ),
        (
            "I will check progress after each step.",
            "Each step can run in parallel except the final review.",
            "The plan can be adjusted once the first findings are in.",
        ),
    ),
    "engineer": (
        (
            "Here is an approach for {s}.",
            "Technical notes on {s}:",
            "This is how I would build {s}.",
        ),
        (
            "Start with the simplest version that works, cover it with tests, then optimise the "
            "slow path once it has been measured.",
            "Keep the interface small, validate inputs at the boundary and log what the system "
            "decides, not just what it does.",
            "Split the problem into a pure core and a thin layer of input and output, so the core "
            "stays easy to test.",
        ),
        (
            "I can sketch the code for the first step next.",
            "The main risk is an edge case in the input handling.",
            "Benchmarks should confirm the design before it is tuned further.",
        ),
    ),
    "summarizer": (
        (
            "Summary of {s}:",
            "In short, on {s}:",
            "Key points about {s}.",
        ),
        (
            "The essentials fit in three points: what it is, why it matters and what is still "
            "uncertain.",
            "The main finding is consistent across sources, and the disagreements are about "
            "details rather than direction.",
            "Most of the material repeats one central idea, supported by a handful of examples.",
        ),
        (
            "Everything else is detail.",
            "That covers the core of it.",
            "I can expand any of these points.",
        ),
    ),
    "assistant": (
        (
            "Here is a short answer about {s}.",
            "Happy to help with {s}.",
            "Sure, here is an overview of {s}.",
        ),
        (
            "{S} is best understood by looking at what it does, what it costs and where it falls "
            "short.",
            "The key facts about {s} are well established, and the details depend on your "
            "situation.",
            "There are a few ways to look at {s}, but the practical one starts with your goal.",
        ),
        (
            "Let me know if you want more detail on any part.",
            "I can go deeper on whichever point is most useful.",
            "Tell me more about your situation and I can be more specific.",
        ),
    ),
}

_SENTENCE_RE = re.compile(r"[^.?!\n]+")
_ABOUT_RE = re.compile(r"\b(?:about|regarding|concerning)\s+(\S.*)", re.I)
_AFTER_RE = re.compile(r"\b(?:on|into|of|for)\s+(\S.*)", re.I)
_LEADING_RE = re.compile(
    r"^(?:(?:please|kindly|can you|could you|would you|will you|i want you to|i need you to|"
    r"i need|help me|tell me|let me know|explain|describe|summari[sz]e|write|draft|research|"
    r"analy[sz]e|review|plan|list|give me|find|compare|what (?:is|are|was|were)|"
    r"who (?:is|are|was)|how (?:do|does|can|to)|why (?:do|does|is|are))\b[\s,:]*)+",
    re.I,
)
_ARTICLE_RE = re.compile(
    r"^(?:the|a|an|some|recent|current|latest|our|my|your|this|these)\s+", re.I
)
_TRAILING_RE = re.compile(
    r"[\s,;:]+(?:please|now|today|briefly|in detail|for me|follows?|looks?)?[\s,;:]*$", re.I
)
_MAX_SUBJECT_WORDS = 6
# Words a prompt's label uses to point at what follows it rather than to name a subject.
_POINTERS: Final = frozenset(
    {"question", "topic", "task", "proposal", "request", "following", "it", "this", "these"}
)


def persona(system: str) -> str:
    lowered = system.lower()
    match = _PERSONA_RE.search(system)
    probe = match.group(1).lower() if match else lowered
    for needle, name in _PERSONAS:
        if needle in probe:
            return name
    return "assistant"


def subject(text: str) -> str:
    """The topic of a request: "Tell me about solar panels." -> "solar panels".

    Workflow prompts are often "Label: value" ("Research this topic: tidal power") or a label
    line followed by an earlier agent's text ("Analyse these findings:\n..."); the topic is
    then the value, or the topic of that text, so replies down a pipeline stay on subject.
    """
    stripped = text.strip()
    # A run's inputs passed on whole ({"task": "tidal power"}): the topic is the text in them.
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            values = [value for value in data.values() if isinstance(value, str) and value.strip()]
            if values:
                return subject(values[0])
    first_line, _, rest = stripped.partition("\n")
    label, colon, value = first_line.partition(":")
    # Only a colon inside the first sentence makes a label ("Topic: x"), not one further on.
    if colon and label.strip() and not re.search(r"[.?!]", label):
        named = _ABOUT_RE.search(label) or _AFTER_RE.search(label)
        # "A decision on this question:\n\nopen on Saturdays": the label only points at it.
        pointer = named is not None and _clean(named.group(1)).lower() in _POINTERS
        if named and not (pointer and (value.strip() or rest.strip())):
            return _clean(named.group(1))
        if value.strip():
            return subject(value)
        if rest.strip():
            return subject(rest)
    sentence = next((s.strip() for s in _SENTENCE_RE.findall(text) if s.strip()), "")
    match = _ABOUT_RE.search(sentence) or _AFTER_RE.search(sentence)
    return _clean(match.group(1) if match else _LEADING_RE.sub("", sentence))


def _clean(phrase: str) -> str:
    phrase = _ARTICLE_RE.sub("", phrase.strip())
    phrase = _TRAILING_RE.sub("", phrase)
    words = phrase.split()[:_MAX_SUBJECT_WORDS]
    text = " ".join(words)
    # "wind (sources)" or a parenthesis cut off by the word limit: the topic is before it.
    if "(" in text:
        text = text[: text.index("(")]
    return text.strip(" \"'`()[]{}") or "this topic"


def _pick(options: Sequence[str], seed: int, slot: int) -> str:
    return options[(seed >> (slot * 8)) % len(options)]


_SPEAKER_LINE = re.compile(r"^[A-Z][\w .'-]{0,40}: ")

# How long a conversation must be (messages, the task included) before an agent told to say
# TERMINATE does: a three-member debate then ends on the moderator's second turn.
TERMINATE_AFTER_MESSAGES = 5


def default_reply(system: str, messages: Sequence[tuple[str, str]]) -> str:
    """A few plausible sentences for a conversation; same input, same output."""
    h = hashlib.blake2b(digest_size=8)
    h.update(system.encode())
    for role, text in messages:
        h.update(b"\x1e" + role.encode() + b"\x1f" + text.encode())
    seed = int.from_bytes(h.digest(), "big")

    opening, body, closing = _TEMPLATES[persona(system)]
    # In a group chat the other members speak as "Name: text" user messages; the subject is the
    # task's, not a neighbour's reply.
    asked = [text for role, text in messages if role == "user"]
    user_text = next((t for t in reversed(asked) if not _SPEAKER_LINE.match(t)), "") or (
        asked[-1] if asked else ""
    )
    topic = subject(user_text)
    fill = {"s": topic, "S": topic[:1].upper() + topic[1:]}
    last_role, _ = messages[-1] if messages else ("user", "")
    reply = " ".join(
        _pick(part, seed, slot).format(**fill) for slot, part in enumerate((opening, body, closing))
    )
    if last_role == "tool":
        # The role's answer, with what its tools just returned.
        reply = f"{reply} {demo.tool_notes(messages)}".strip()
    if "TERMINATE" in system and len(messages) >= TERMINATE_AFTER_MESSAGES:
        # Agents told to end a group chat with TERMINATE do so once the chat has gone round
        # (as a moderator would), so demo chats finish with every side heard.
        reply += " TERMINATE"
    return reply


def json_reply(schema: Mapping[str, Any], text: str) -> str:
    """A JSON document for structured-output requests: `{"answer": ...}` or one fitting `schema`."""
    if not schema:
        return json.dumps({"answer": text}, ensure_ascii=False)
    first_sentence = next((s.strip() for s in _SENTENCE_RE.findall(text) if s.strip()), text)
    strings = iter([text])

    def build(node: Any, depth: int) -> Any:
        if not isinstance(node, Mapping) or depth > 12:
            return None
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = schema
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, Mapping) else None
            return build(target, depth + 1)
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return node["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            options = node.get(key)
            if isinstance(options, list) and options:
                return build(options[0], depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (kind is None and "properties" in node):
            props = node.get("properties")
            if not isinstance(props, Mapping):
                return {}
            return {name: build(sub, depth + 1) for name, sub in props.items()}
        if kind == "array":
            return [build(node.get("items", {}), depth + 1)]
        if kind == "string":
            return next(strings, first_sentence)
        if kind in ("integer", "number"):
            minimum = node.get("minimum", 0)
            return minimum if isinstance(minimum, int | float) else 0
        if kind == "boolean":
            return False
        return None

    return json.dumps(build(schema, 0), ensure_ascii=False)


_WORD_PIECE_RE = re.compile(r"\s*\S+|\s+$")


def split_text(text: str, chunks: int | None = None) -> list[str]:
    """Stream pieces whose concatenation is `text`: one word each, or `chunks` equal slices."""
    if not text:
        return []
    if chunks is None:
        return _WORD_PIECE_RE.findall(text)
    n = min(chunks, len(text))
    size, extra = divmod(len(text), n)
    pieces = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def demo_tool_calls(req: ChatRequest) -> tuple[ToolCallSpec, ...]:
    """The hand-off, or the built-in tool calls, the demo model makes for `req` unscripted."""
    if not req.tools:
        return ()
    target = demo.handoff_target(req.tools, req.messages)
    if target is not None:
        return (ToolCallSpec(target, {}),)
    topic = subject(_task_text(req.messages))
    return tuple(
        ToolCallSpec(name, arguments)
        for name, arguments in demo.builtin_calls(req.tools, req.messages, topic)
    )


def _task_text(messages: Sequence[tuple[str, str]]) -> str:
    asked = [text for role, text in messages if role == "user"]
    return next((t for t in reversed(asked) if not _SPEAKER_LINE.match(t)), "") or (
        asked[-1] if asked else ""
    )


def _id(seed: bytes, seq: int, salt: bytes) -> str:
    return hashlib.blake2b(seed + salt + seq.to_bytes(8, "big"), digest_size=12).hexdigest()


def make_plan(
    req: ChatRequest,
    rule: Rule | None,
    *,
    seq: int,
    created: int,
    started_ns: int,
    fault: str | None = None,
) -> ReplyPlan:
    """Decides the reply for a request; the protocols only shape it."""
    specs = rule.tool_calls if rule is not None else ()
    if rule is not None and rule.reply is not None:
        text = rule.reply
    elif specs:
        text = ""
    else:
        # Unscripted: the demo model shows what the request offers (demo.py).
        specs = demo_tool_calls(req)
        chosen = None if specs else demo.choice(req.system, req.messages)
        if specs:
            handing = specs[0].name.startswith(demo.TRANSFER_PREFIX)
            text = demo.handoff_words(specs[0].name) if handing else ""
        elif chosen is not None:
            text = chosen
        else:
            text = default_reply(req.system, req.messages)
            if req.json_schema is not None:
                text = json_reply(req.json_schema, text)

    digest = req.digest
    call_prefix = "toolu_" if req.protocol == "anthropic" else "call_"
    calls = []
    for n, spec in enumerate(specs):
        arguments = dict(spec.arguments)
        calls.append(
            ToolCall(
                id=call_prefix + _id(digest, seq, b"call%d" % n),
                name=spec.name,
                arguments=arguments,
                arguments_json=dumps(arguments).decode(),
            )
        )

    if rule is not None and rule.prompt_tokens is not None:
        prompt_tokens = rule.prompt_tokens
    else:
        prompt_tokens = estimate_tokens(req.prompt_text_length)
    if rule is not None and rule.completion_tokens is not None:
        completion_tokens = rule.completion_tokens
    else:
        chars = len(text) + sum(len(c.name) + len(c.arguments_json) for c in calls)
        completion_tokens = estimate_tokens(chars)

    finish = "tool_calls" if calls else "stop"
    ignore_max = rule is not None and rule.ignore_max_tokens
    if req.max_tokens is not None and completion_tokens > req.max_tokens and not ignore_max:
        text = text[: req.max_tokens * 4]
        calls = []
        completion_tokens = req.max_tokens
        finish = "length"

    chunks = rule.chunks if rule is not None else None
    return ReplyPlan(
        id_suffix=_id(digest, seq, b"msg"),
        created=created,
        started_ns=started_ns,
        text=text,
        tool_calls=calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish=finish,
        # A plain answer keeps its pieces only to take as long as they would stream.
        pieces=split_text(text, chunks)
        if req.stream or rule is not None and rule.chunk_delay_ms
        else [],
        chunk_delay=(rule.chunk_delay_ms / 1000) if rule is not None else 0.0,
        fault=fault,
    )
