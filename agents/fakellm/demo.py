"""What the demo model does on its own, so every feature of a template shows without a script.

When no script rule says otherwise:

* offered hand-off tools (`transfer_to_<name>`) at the start of a conversation, it hands off to
  the colleague whose name fits the request best (billing for a charge, technical for an error);
  an agent the conversation was handed to answers instead of handing it on;
* offered built-in tools, it calls each once before answering, with sensible arguments:
  the sum in the request for `calculator`, UTC for `current_time`, the topic's encyclopaedia
  page for `http_get`; then it answers in its role, saying what the tools gave (or that one
  failed, offline);
* told to "Answer with exactly one of: a, b, c" (routers, speaker selectors), it answers with
  one of them: a selector gives the floor to whoever has spoken least, a router takes the route
  the request's words point to.

Everything is a function of the request, so the same conversation gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import quote

TRANSFER_PREFIX: Final = "transfer_to_"
# The swarm's hand-off to the person: a choice for people, not for the demo.
TO_USER: Final = "transfer_to_user"

# Words that point a request to a colleague, by a word of the colleague's tool name.
_LEANINGS: Final[dict[str, tuple[str, ...]]] = {
    "billing": (
        "bill",
        "charg",
        "invoice",
        "refund",
        "pay",
        "price",
        "subscription",
        "money",
        "card",
    ),
    "technical": (
        "error",
        "crash",
        "bug",
        "log in",
        "login",
        "password",
        "install",
        "slow",
        "broken",
        "not working",
    ),
    "sales": ("buy", "quote", "plan", "upgrade", "discount"),
}

_CHOICE_RE = re.compile(r"Answer with exactly one of: ([^\n]+?)\.?\s*$", re.M)
_SPEAKER_RE = re.compile(r"^([A-Z][\w .'-]{0,40}): ")
_EXPRESSION_RE = re.compile(r"\d+(?:\.\d+)?(?:\s*(?:[-+*/×x^]|\*\*)\s*\d+(?:\.\d+)?)+")
# How the built-in tools' errors begin (the wire does not say a tool result is an error).
_FAILED_RE = re.compile(
    r"(?i)(refused|the request (failed|timed out)|unknown |division by zero|only |"
    r"the expression|this is not|not a valid|error|tool .* (failed|not found))"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.+-]+)?|\d{1,2}:\d{2}(?::\d{2})?")
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w|\.\d)")


def _seed(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]


def _last_user(messages: Sequence[tuple[str, str]]) -> str:
    return next((text for role, text in reversed(messages) if role == "user"), "")


def handoff_target(tools: Sequence[str], messages: Sequence[tuple[str, str]]) -> str | None:
    """The transfer tool to call, or None: only the agent that opens the conversation hands it
    off (one that was handed it — a tool message says so — answers)."""
    transfers = [name for name in tools if name.startswith(TRANSFER_PREFIX) and name != TO_USER]
    if not transfers or any(role == "tool" for role, _ in messages):
        return None
    if not messages or messages[-1][0] != "user":
        return None
    asked = _last_user(messages).lower()

    def score(name: str) -> int:
        words = _words(name[len(TRANSFER_PREFIX) :])
        hits = sum(1 for word in words if len(word) > 2 and word in asked)
        for word in words:
            hits += sum(1 for needle in _LEANINGS.get(word, ()) if needle in asked)
        return hits

    return max(transfers, key=lambda name: (score(name), -transfers.index(name)))


def handoff_words(tool: str) -> str:
    """What an agent says as it hands the conversation over."""
    colleague = " ".join(_words(tool[len(TRANSFER_PREFIX) :])) or "a colleague"
    return f"Thanks for explaining. I am passing you to {colleague}, who can sort this out."


def _expression(text: str) -> tuple[str, str]:
    """An arithmetic expression worth computing for `text`, and what it means."""
    # Dates and times are not sums ("2026-12-07"), and "07" is not a number to Python.
    text = _DATE_RE.sub(" ", text)
    text = re.sub(r"\b0+(\d)", r"\1", text)
    found = _EXPRESSION_RE.search(text)
    if found:
        expression = found.group(0).replace("×", "*").replace("x", "*").replace("^", "**")
        return expression, f"{found.group(0)} as asked"
    numbers = _NUMBER_RE.findall(text)
    if len(numbers) >= 2:
        first, second = numbers[:2]
        return f"({first} + {second}) / 2", f"the average of {first} and {second}"
    words = len(text.split()) or 1
    sentences = len([s for s in re.split(r"[.!?]+", text) if s.strip()]) or 1
    return f"{words} / {sentences}", "the average sentence length in words"


def _topic_page(topic: str) -> str:
    title = topic.strip().capitalize() or "Main Page"
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe="_()")


def builtin_calls(
    tools: Sequence[str], messages: Sequence[tuple[str, str]], topic: str
) -> list[tuple[str, dict[str, Any]]]:
    """One call of each built-in tool offered, when a request arrives (not after results)."""
    if not messages or messages[-1][0] != "user":
        return []
    asked = _last_user(messages)
    if "calculator" in tools and _EXPRESSION_RE.search(_DATE_RE.sub(" ", asked)):
        # A sum to work out: the calculator is the tool for it.
        return [("calculator", {"expression": _expression(asked)[0]})]
    calls: list[tuple[str, dict[str, Any]]] = []
    for name in tools:
        if name == "calculator":
            calls.append((name, {"expression": _expression(asked)[0]}))
        elif name == "current_time":
            calls.append((name, {"timezone": "UTC"}))
        elif name == "http_get":
            calls.append((name, {"url": _topic_page(topic)}))
    return calls


def tool_notes(messages: Sequence[tuple[str, str]]) -> str:
    """What the tool results just returned add to the answer, in a sentence each."""
    results: list[str] = []
    for role, text in reversed(messages):
        if role != "tool":
            break
        if not text.startswith("Transferred to "):  # a hand-off, not a tool's answer
            results.insert(0, text)
    notes = [_note(result) for result in results]
    return " ".join(note for note in notes if note)


def _note(result: str) -> str:
    text = " ".join(result.split())
    try:
        data = json.loads(result)
    except ValueError:
        data = None
    if isinstance(data, dict) and "time" in data:
        return f"(Checked the clock: it is {data.get('weekday', '')} {data['time']}.)"
    if isinstance(data, int | float) and not isinstance(data, bool):
        return f"(The calculator gives {data}.)"
    if text.startswith("HTTP "):
        header, _, body = result.partition("\n\n")
        status = header.splitlines()[0]
        excerpt = " ".join(body.split())[:140]
        return f"(I read the source page: {status}{'; it says: ' + excerpt if excerpt else ''}.)"
    short = text if len(text) <= 140 else text[:137].rstrip() + "..."
    if _FAILED_RE.match(text):
        return f"(A tool could not help: {short} This answer rests on what I already know.)"
    return f"(The tool returned: {short})"


def choice(system: str, messages: Sequence[tuple[str, str]]) -> str | None:
    """One of the options a router or a speaker selector was told to answer with, or None."""
    asked = _last_user(messages)
    found = _CHOICE_RE.search(asked) or _CHOICE_RE.search(system)
    if found is None:
        return None
    options = [option.strip() for option in found.group(1).split(",") if option.strip()]
    if not options:
        return None
    if "speak next" in system or "speak next" in asked:
        spoken = dict.fromkeys(options, 0)
        for role, text in messages:
            speaker = _SPEAKER_RE.match(text) if role == "user" else None
            if speaker and speaker.group(1) in spoken:
                spoken[speaker.group(1)] += 1
        return min(options, key=lambda option: (spoken[option], options.index(option)))
    text = " ".join(body for role, body in messages if role == "user").lower()

    def score(option: str) -> int:
        hits = sum(1 for word in _words(option) if len(word) > 2 and word in text)
        for word in _words(option):
            hits += sum(1 for needle in _LEANINGS.get(word, ()) if needle in text)
        return hits

    best = max(options, key=lambda option: (score(option), -options.index(option)))
    if score(best) == 0:
        return options[_seed(system, text) % len(options)]
    return best
