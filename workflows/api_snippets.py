"""Ready-to-paste code for launching a workflow over the public API and following its run:
the workflow page's "Use it from code" panel. Pure: the page gives the base URL, the workflow's
id and its input fields; the snippets carry an example value for each input."""

from __future__ import annotations

import json
import shlex
from typing import Any

_EXAMPLES: dict[str, Any] = {
    "string": "…",
    "text": "…",
    "number": 1.5,
    "integer": 1,
    "boolean": True,
    "json": {},
}


def example_inputs(fields: list[Any]) -> dict[str, Any]:
    """A value for each input: its default, else its first choice, else one of its type."""
    inputs: dict[str, Any] = {}
    for field in fields:
        if field.default is not None:
            inputs[field.name] = field.default
        elif field.type == "choice" and field.choices:
            inputs[field.name] = field.choices[0]
        else:
            inputs[field.name] = _EXAMPLES.get(field.type, "…")
    return inputs


def api_snippets(*, base_url: str, workflow_id: Any, fields: list[Any]) -> dict[str, str]:
    base = base_url.rstrip("/")
    body = json.dumps({"inputs": example_inputs(fields)}, ensure_ascii=False)
    launch_url = f"{base}/api/v1/workflows/{workflow_id}/runs"
    curl = "\n".join(
        [
            "# A key per launch: a retry with the same key never starts a second run.",
            'KEY="launch-$(date +%s)"',
            f"RUN_ID=$(curl -sS -X POST {shlex.quote(launch_url)} \\",
            '  -H "Authorization: Bearer $A2A_TOKEN" \\',
            '  -H "Content-Type: application/json" \\',
            '  -H "Idempotency-Key: $KEY" \\',
            f"  -d {shlex.quote(body)} \\",
            "  | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"id\"])')",
            "",
            "# Follow it live: stored events, then new ones, until its final status.",
            'curl -sS -N -H "Authorization: Bearer $A2A_TOKEN" -H "Accept: text/event-stream" \\',
            f'  "{base}/api/v1/runs/$RUN_ID/events"',
        ]
    )
    python = "\n".join(
        [
            "import json, os, uuid",
            "import requests",
            "",
            f'BASE = "{base}/api/v1"',
            'HEADERS = {"Authorization": f"Bearer {os.environ[\'A2A_TOKEN\']}"}',
            "",
            "run = requests.post(",
            f'    f"{{BASE}}/workflows/{workflow_id}/runs",',
            f"    json={body},",
            '    headers={**HEADERS, "Idempotency-Key": str(uuid.uuid4())},',
            ").json()",
            "",
            "with requests.get(",
            "    f\"{BASE}/runs/{run['id']}/events\",",
            '    headers={**HEADERS, "Accept": "text/event-stream"},',
            "    stream=True,",
            ") as stream:",
            "    for line in stream.iter_lines(decode_unicode=True):",
            '        if line.startswith("data: "):',
            "            message = json.loads(line[6:])",
            '            if message["type"] == "event" and message["kind"] == "message":',
            '                print(message["data"].get("text", ""))',
            '            elif message["type"] == "status":',
            '                print("status:", message["status"])',
        ]
    )
    return {"curl": curl, "python": python}
