"""`python -m agents.fakellm [--host H] [--port N] [--script FILE] [--name NAME]`, no Django."""

from __future__ import annotations

import argparse
import sys

from .script import ScriptError, load_script
from .server import DEFAULT_PORT, check_host, serve


def describe(url: str) -> str:
    return (
        f"fakellm listening on {url}\n"
        f"  OpenAI base URL:    {url}/v1\n"
        f"  Anthropic base URL: {url}\n"
        f"  Ollama base URL:    {url}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.fakellm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--script", help="JSON script file")
    parser.add_argument("--name", default="fakellm", help="shown in the x-fakellm-node header")
    parser.add_argument("--allow-remote", action="store_true", help="listen beyond loopback")
    args = parser.parse_args(argv)
    try:
        check_host(args.host, args.allow_remote)
        script = load_script(args.script) if args.script else None
    except (ValueError, ScriptError) as exc:
        parser.error(str(exc))

    def ready(url: str) -> None:
        sys.stdout.write(describe(url))
        sys.stdout.flush()

    try:
        serve(
            args.host, args.port, script, args.name, allow_remote=args.allow_remote, on_ready=ready
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        sys.stderr.write(f"fakellm: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
