"""What one span of a trace sent and received, as the inspector beside the waterfall shows it.

Everything shown passes through `redact_secrets` here, whatever was stored: payloads are redacted
when kept, but step inputs, outputs, variables and events were not written for display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents.llm.redaction import redact_secrets
from agents.models import CallPayload, LedgerEntry
from monitoring.trace.types import Span, Trace, seconds_text
from workflows.models import RunEvent, Step

# Longer values are cut for display (the whole value stays stored).
DISPLAY_LIMIT = 20_000


def shown(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """`value` as readable, redacted text: strings as they are, anything else as indented JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        # Named texts (a prompt, a variable's new value) read better as text than as JSON with
        # its escaped newlines.
        text = "\n\n".join(f"{name}:\n{item}" for name, item in value.items())
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    text = redact_secrets(text)
    if len(text) > limit:
        return f"{text[:limit]}\n… [{len(text) - limit:,} more characters not shown]"
    return text


@dataclass
class Message:
    role: str
    content: str
    extra: str = ""  # tool calls asked for, or the tool call answered


@dataclass
class Section:
    title: str
    text: str = ""
    messages: list[Message] = field(default_factory=list)
    tools: list[tuple[str, str, str]] = field(default_factory=list)  # name, description, schema
    testid: str = ""


@dataclass
class Inspection:
    span: Span | None
    facts: list[tuple[str, str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fork_step: str = ""  # the step key "Run again from here" starts at
    subrun: str = ""  # the id of the sub-run whose trace this span stands for


def _usage_facts(span: Span) -> list[tuple[str, str]]:
    facts = []
    if span.start is not None:
        end = span.end
        if end is not None:
            took = seconds_text((end - span.start).total_seconds())
        else:
            took = "still going" if span.status in ("running", "waiting", "pending") else "—"
        facts.append(("Duration", took))
    if span.calls or span.kind in ("call", "attempt", "remote"):
        facts.append(("Tokens", f"{span.tokens_in:,} in · {span.tokens_out:,} out"))
        facts.append(("Cost", span.money.text))
    if span.calls and span.kind not in ("attempt",):
        facts.append(("Provider calls", str(span.calls)))
    return facts


def _content_text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return "" if content is None else str(content)


def _messages(raw: Any) -> list[Message]:
    found = []
    for message in raw if isinstance(raw, list) else []:
        if not isinstance(message, dict):
            continue
        extra = ""
        if message.get("tool_calls"):
            calls = [
                f"{(call.get('function') or {}).get('name', '?')}"
                f"({(call.get('function') or {}).get('arguments', '')})"
                for call in message["tool_calls"]
                if isinstance(call, dict)
            ]
            extra = "asks for: " + "; ".join(calls)
        elif message.get("tool_call_id"):
            extra = f"answers tool call {message['tool_call_id']}"
        found.append(
            Message(
                str(message.get("role") or "?"),
                shown(_content_text(message.get("content"))),
                redact_secrets(extra),
            )
        )
    return found


def _tools(raw: Any) -> list[tuple[str, str, str]]:
    tools = []
    for tool in raw if isinstance(raw, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            continue
        tools.append(
            (
                str(function.get("name") or "?"),
                redact_secrets(str(function.get("description") or "")),
                shown(function.get("parameters") or {}),
            )
        )
    return tools


def _inspect_attempt(span: Span, inspection: Inspection) -> None:
    call_id = span.id.split(":", 1)[1]
    entry = LedgerEntry.objects.filter(pk=call_id).first()
    if entry is not None:
        inspection.facts += [
            ("Model", entry.model),
            ("Deployment", span.detail),
            ("Attempt", str(entry.attempt)),
            ("Status", entry.get_status_display()),
            ("Latency", f"{entry.latency_ms} ms" if entry.latency_ms is not None else "—"),
            ("Price", entry.get_price_source_display() if entry.price_source else "—"),
        ]
        if entry.cost_estimated:
            inspection.notes.append("The cost of this call is an estimate.")
    payload = CallPayload.objects.filter(pk=call_id).first()
    if payload is None:
        if span.status == "running":
            inspection.notes.append(
                "This call is still in flight: what it sent and received is kept when it ends."
            )
        elif span.status == "unknown":
            inspection.notes.append(
                "The worker making this call stopped before it ended: what it sent and received "
                "was not kept."
            )
        else:
            inspection.notes.append(
                "What this call sent and received was not kept: it was made before the studio "
                "kept call payloads, or by a command-line agent."
            )
        return
    if payload.truncated:
        inspection.notes.append(
            f"This call's payload was {payload.size_bytes:,} bytes: its longest texts were "
            "shortened to keep it (each cut is marked)."
        )
    request = payload.request if isinstance(payload.request, dict) else {}
    response = payload.response if isinstance(payload.response, dict) else {}
    messages = _messages(request.get("messages"))
    if request.get("messages_dropped"):
        inspection.notes.append(
            f"{request['messages_dropped']} older messages were left out to keep the payload."
        )
    inspection.sections.append(Section("Messages sent", messages=messages, testid="sent"))
    tools = _tools(request.get("tools"))
    if tools:
        inspection.sections.append(Section("Tools offered", tools=tools, testid="tools"))
    if request.get("parameters"):
        inspection.sections.append(Section("Parameters", shown(request["parameters"])))
    if "error" in response:
        inspection.sections.append(Section("Error", shown(response["error"]), testid="error"))
    else:
        inspection.sections.append(
            Section("Response", shown(response.get("text") or ""), testid="received")
        )
        if response.get("tool_calls"):
            calls = [
                f"{call.get('name')}({call.get('arguments')})"
                for call in response["tool_calls"]
                if isinstance(call, dict)
            ]
            inspection.sections.append(Section("Tool calls asked for", shown("\n".join(calls))))
        if response.get("finish_reason"):
            inspection.facts.append(("Finish reason", str(response["finish_reason"])))


def _inspect_step(trace: Trace, span: Span, inspection: Inspection) -> None:
    step = Step.objects.filter(run_id=trace.run.pk, key=span.step_key).first()
    inspection.facts += [
        ("Node", span.node_id),
        ("Type", span.node_type),
        ("Step key", span.step_key),
    ]
    if step is None:
        inspection.notes.append("This step has not started yet.")
        return
    inspection.facts.append(("Attempt", str(step.attempt)))
    if step.branch:
        inspection.facts.append(("Branch taken", step.branch))
    if step.input is not None:
        inspection.sections.append(Section("Input", shown(step.input), testid="step-input"))
    if step.output is not None:
        inspection.sections.append(Section("Output", shown(step.output), testid="step-output"))
    if step.variables:
        inspection.sections.append(
            Section("Variable updates", shown(step.variables), testid="variables")
        )
    events = RunEvent.objects.filter(
        run_id=trace.run.pk, step_key=span.step_key, kind__in=("tool_call", "tool_result")
    ).order_by("seq")
    if span.node_type == "tool":
        for event in events:
            data = event.data if isinstance(event.data, dict) else {}
            if event.kind == "tool_call":
                inspection.sections.append(Section("Tool arguments", shown(data.get("arguments"))))
            else:
                inspection.sections.append(Section("Tool result", shown(data.get("content"))))
    if span.forkable:
        inspection.fork_step = step.key


def _inspect_tool(trace: Trace, span: Span, inspection: Inspection) -> None:
    number = int(span.id.rsplit(":", 1)[1])
    events = list(
        RunEvent.objects.filter(
            run_id=trace.run.pk, step_key=span.step_key, kind__in=("tool_call", "tool_result")
        ).order_by("seq")
    )
    calls = [event for event in events if event.kind == "tool_call"]
    if number > len(calls):
        return
    call = calls[number - 1].data or {}
    inspection.facts.append(("Tool", str(call.get("name") or "?")))
    inspection.sections.append(
        Section("Arguments", shown(call.get("arguments")), testid="tool-arguments")
    )
    result = next(
        (
            event.data
            for event in events
            if event.kind == "tool_result"
            and event.seq > calls[number - 1].seq
            and (not call.get("id") or (event.data or {}).get("id") == call.get("id"))
        ),
        None,
    )
    if result is None:
        inspection.notes.append("No result yet.")
    else:
        title = "Error" if result.get("is_error") else "Result"
        inspection.sections.append(
            Section(title, shown(result.get("content")), testid="tool-result")
        )
    if not span.timing_known:
        inspection.notes.append("This run's tool calls were made before their times were kept.")


def _inspect_wait(trace: Trace, span: Span, inspection: Inspection) -> None:
    run = trace.run
    key = span.step_key
    if span.status == "waiting":
        request = run.waiting_request or {}
        inspection.sections.append(Section("Asked", shown(request.get("prompt") or "")))
        inspection.notes.append("Still waiting: answer it on the run page.")
        return
    answer = (run.answers or {}).get(key)
    who = (run.answered_by or {}).get(key)
    if who:
        inspection.facts.append(("Answered by", str(who)))
    if answer is not None:
        inspection.sections.append(Section("Answer", shown(answer), testid="answer"))


def _inspect_run(trace: Trace, inspection: Inspection) -> None:
    run = trace.run
    inspection.facts += [
        ("Status", run.get_status_display()),
        ("Version", str(run.version.number)),
        ("Steps", str(run.steps_completed)),
    ]
    inspection.sections.append(Section("Inputs", shown(run.inputs or {}), testid="run-inputs"))
    if run.output is not None:
        inspection.sections.append(Section("Output", shown(run.output), testid="run-output"))
    if run.variables:
        inspection.sections.append(Section("Variables", shown(run.variables)))
    if run.reason and run.status != "failed":  # a failure's reason is its error, above
        inspection.notes.append(redact_secrets(run.reason))


def inspect_span(trace: Trace, span_id: str) -> Inspection:
    """The selected span's facts and what it sent and received; the run when none is selected."""
    span = trace.by_id.get(span_id or "run")
    inspection = Inspection(span)
    if span is None:
        inspection.notes.append("This run has no such span: pick one in the waterfall.")
        return inspection
    inspection.facts += _usage_facts(span)
    if span.error:
        inspection.sections.append(Section("Error", redact_secrets(span.error), testid="error"))
    if span.kind == "run":
        _inspect_run(trace, inspection)
    elif span.kind == "step":
        _inspect_step(trace, span, inspection)
    elif span.kind == "attempt" or (span.kind == "call" and span.id.startswith("call:")):
        _inspect_attempt(span, inspection)
    elif span.kind == "call" and span.children:
        inspection.notes.append(
            f"{len(span.children)} attempts; below, the last one. Select another attempt in the "
            "waterfall to see what it sent and received."
        )
        _inspect_attempt(span.children[-1], inspection)
    elif span.kind == "tool":
        _inspect_tool(trace, span, inspection)
    elif span.kind == "wait":
        _inspect_wait(trace, span, inspection)
    elif span.kind == "subrun":
        inspection.subrun = span.id.split(":", 1)[1]
        inspection.notes.append("A sub-workflow's run: its own trace shows its steps and calls.")
    elif span.kind == "group":
        inspection.notes.append("A group of steps: select one of them.")
    elif span.kind == "remote":
        inspection.facts.append(("Remote task", span.detail))
        inspection.notes.append(
            "A task on another system's A2A agent. Its cost is unknown unless that agent "
            "reports its usage; its messages are in the run's transcript."
        )
    return inspection
