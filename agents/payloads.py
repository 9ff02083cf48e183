"""What a run's model call sent and received, made fit to keep: redacted and bounded.

The trace shows, for each provider attempt, the messages (system, history, tool results), the
tools offered, the parameters, and the answer or the error. Those are kept in `CallPayload`, one
row per attempt beside the ledger row, written in the same database round trip as the row's
completion. Two rules hold for every payload:

* No secret: every string passes through `redact_secrets`, as step errors and events do.
* Bounded: a payload over `A2A_CALL_PAYLOAD_MAX_BYTES` (64 KiB by default) has its longest strings
  shortened, each with a note of how much was cut, until it fits; `truncated` is then set, and
  the trace says so. The ledger itself never grows with a prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from django.conf import settings

from agents.llm.ledger import LedgerOutcome
from agents.llm.redaction import redact_secrets

DEFAULT_MAX_BYTES: Final = 64 * 1024
# Each round shortens every string longer than this many characters, then tries again.
_STRING_CAPS: Final = (16_000, 4_000, 1_000, 250, 60)


def payload_max_bytes() -> int:
    return int(getattr(settings, "A2A_CALL_PAYLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        # PostgreSQL's jsonb holds no NUL character.
        return redact_secrets(value.replace("\x00", ""))
    if isinstance(value, Mapping):
        return {str(key): _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_secrets(str(value))


def _shortened(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        if len(value) <= cap:
            return value
        return f"{value[:cap]}… [{len(value) - cap:,} more characters not kept]"
    if isinstance(value, dict):
        return {key: _shortened(item, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item, cap) for item in value]
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


def bounded(payload: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], bool, int]:
    """(the payload, shortened to fit `max_bytes` if it must; whether it was; its whole size)."""
    whole = _size(payload)
    if whole <= max_bytes:
        return payload, False, whole
    for cap in _STRING_CAPS:
        shortened = _shortened(payload, cap)
        if _size(shortened) <= max_bytes:
            return shortened, True, whole
    # Thousands of short messages: keep the first (system) message and the most recent ones.
    request = dict(shortened.get("request") or {})
    messages = list(request.get("messages") or [])
    request["messages"] = []
    room = max_bytes - _size({**shortened, "request": {**request, "messages_dropped": 10**9}})
    sizes = [_size(message) + 2 for message in messages]
    kept_tail: list[Any] = []
    first = messages[:1]
    room -= sum(sizes[:1])
    for message, size in zip(reversed(messages[1:]), reversed(sizes[1:]), strict=True):
        if size > room:
            break
        kept_tail.append(message)
        room -= size
    kept_tail.reverse()
    request["messages"] = first + kept_tail
    request["messages_dropped"] = len(messages) - len(request["messages"])
    return {**shortened, "request": request}, True, whole


def payloads_delete_for_runs(run_ids: Iterable[Any]) -> int:
    """Deletes what the runs' calls sent and received (for whatever deletes runs: their prompts
    must not outlive them). Returns how many payloads went."""
    from agents.models import CallPayload

    deleted, _ = CallPayload.objects.filter(run_id__in=list(run_ids)).delete()
    return deleted


def call_payload(outcome: LedgerOutcome) -> dict[str, Any] | None:
    """The attempt's request and response as kept, or None when the gateway gave neither."""
    request = outcome.request
    if request is None:
        return None
    sent: dict[str, Any] = {"messages": request.messages}
    if request.tools:
        sent["tools"] = request.tools
    parameters = {
        name: getattr(request, name)
        for name in ("temperature", "top_p", "max_tokens", "seed", "stop", "tool_choice")
        if getattr(request, name) is not None
    }
    if request.response_format:
        parameters["response_format"] = request.response_format
    if parameters:
        sent["parameters"] = parameters
    received: dict[str, Any] = {}
    response = outcome.response
    if response is not None:
        received = {
            "text": response.text,
            "tool_calls": [
                {"id": call.id, "name": call.name, "arguments": call.arguments}
                for call in response.tool_calls
            ],
            "finish_reason": response.finish_reason,
            "model": response.model,
        }
    elif outcome.error_message or outcome.error_kind:
        received = {"error": outcome.error_message or outcome.error_kind}
    return _redacted({"request": sent, "response": received})
