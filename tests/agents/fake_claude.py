#!/usr/bin/env python3
# ruff: noqa: T201 -- a command-line program: printing is its output.
"""A stand-in for Claude Code's headless mode (`claude -p PROMPT --output-format stream-json`).

It prints a realistic stream-json event sequence. Markers in the prompt pick a behaviour:
FAIL (exit 1 with stderr), HANG (start a child, report its pid, sleep forever), IGNORETERM (with
HANG: ignore SIGTERM), GARBAGE (non-JSON lines mixed in), NORESULT (exit 0 without a result),
WRITEFILE (write a file in the working directory and report the directory and its files),
MAXTURNS (end with error_max_turns), LONGLINE (one line longer than the runner keeps).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

SESSION = "3f1c2d9e-5b7a-4c1e-9f0a-8d2b6e4a1c07"


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def assistant(content: list, message_id: str) -> dict:
    return {
        "type": "assistant",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": content,
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 30},
        },
        "parent_tool_use_id": None,
        "session_id": SESSION,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="claude")
    parser.add_argument("-p", "--print", dest="prompt", required=True)
    parser.add_argument("--output-format", choices=["text", "json", "stream-json"], default="text")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--allowedTools", default="")
    parser.add_argument("--model", default="claude-sonnet-4-5")
    parser.add_argument("--append-system-prompt", default="")
    args = parser.parse_args()
    if args.output_format != "stream-json" or not args.verbose:
        print("Error: stream-json output requires --verbose", file=sys.stderr)
        return 1
    prompt = args.prompt
    tools = [tool for tool in args.allowedTools.replace(",", " ").split() if tool]

    if "FAIL" in prompt:
        print("Starting up", file=sys.stderr)
        print("Error: Invalid API key · Please run /login", file=sys.stderr, flush=True)
        return 1

    emit(
        {
            "type": "system",
            "subtype": "init",
            "cwd": os.getcwd(),
            "session_id": SESSION,
            "tools": tools or ["Bash", "Read", "Edit"],
            "mcp_servers": [],
            "model": args.model,
            "permissionMode": "default",
            # Not in Claude Code's events: lets the tests see the argument vector as received.
            "argv": sys.argv[1:],
            "pid": os.getpid(),
            "environ": sorted(os.environ),
            "max_turns": args.max_turns,
            "system": args.append_system_prompt,
        }
    )

    if "HANG" in prompt:
        if "IGNORETERM" in prompt:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        emit(assistant([{"type": "text", "text": f"child pid {child.pid}"}], "msg_hang"))
        while True:
            time.sleep(60)

    if "GARBAGE" in prompt:
        print("npm WARN deprecated something@1.0.0", flush=True)
        print("{not json", flush=True)
        print("", flush=True)
        print("[1, 2, 3]", flush=True)

    if "LONGLINE" in prompt:
        print("y" * (5 * 1024 * 1024), flush=True)

    if "WRITEFILE" in prompt:
        with open("written-by-agent.txt", "w") as file:
            file.write("hello\n")
        files = ",".join(sorted(os.listdir(".")))
        opening = f"cwd: {os.getcwd()}\nfiles: {files}"
    else:
        opening = f"You said: {prompt}"

    emit(assistant([{"type": "text", "text": opening}], "msg_01"))
    emit(
        assistant(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "Bash",
                    "input": {"command": "ls", "description": "List files"},
                }
            ],
            "msg_02",
        )
    )
    emit(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "README.md\n",
                        "is_error": False,
                    }
                ],
            },
            "parent_tool_use_id": None,
            "session_id": SESSION,
        }
    )
    emit(assistant([{"type": "text", "text": "All done."}], "msg_03"))
    if "NORESULT" in prompt:
        return 0

    max_turns = "MAXTURNS" in prompt
    emit(
        {
            "type": "result",
            "subtype": "error_max_turns" if max_turns else "success",
            "is_error": max_turns,
            "duration_ms": 4213,
            "duration_api_ms": 3900,
            "num_turns": args.max_turns if max_turns else 3,
            "result": "" if max_turns else "All done.",
            "session_id": SESSION,
            "total_cost_usd": 0.0123456,
            "usage": {
                "input_tokens": 36,
                "cache_creation_input_tokens": 1200,
                "cache_read_input_tokens": 4800,
                "output_tokens": 90,
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
