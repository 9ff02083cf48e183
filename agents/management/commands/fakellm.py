"""`manage.py fakellm`: serves the fake LLM provider in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.fakellm import DEFAULT_PORT, ScriptError, check_host, load_script, serve


class Command(BaseCommand):
    help = (
        "Run the fake LLM server (OpenAI, Anthropic and Ollama protocols) for the offline demo "
        "model and gateway tests. Serves until Ctrl-C."
    )
    # It needs neither the database nor the checks, and should start at once.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 = any free"
        )
        parser.add_argument("--script", help="JSON script file (rules, models, api_key)")
        parser.add_argument("--name", default="fakellm", help="sent in the x-fakellm-node header")
        parser.add_argument(
            "--allow-remote",
            action="store_true",
            help="listen on a non-loopback address (anyone who can reach it can use it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        port: int = options["port"]
        try:
            check_host(host, options["allow_remote"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        script = None
        if options["script"]:
            try:
                script = load_script(options["script"])
            except ScriptError as exc:
                raise CommandError(f"bad script: {exc}") from None

        def ready(url: str) -> None:
            self.stdout.write(f"fakellm '{options['name']}' listening on {url}")
            self.stdout.write(f"  OpenAI base URL:    {url}/v1")
            self.stdout.write(f"  Anthropic base URL: {url}")
            self.stdout.write(f"  Ollama base URL:    {url}")
            self.stdout.write("Press Ctrl-C to stop.")
            self.stdout.flush()

        try:
            serve(
                host,
                port,
                script,
                options["name"],
                allow_remote=options["allow_remote"],
                on_ready=ready,
            )
        except KeyboardInterrupt:
            self.stdout.write("fakellm stopped.")
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
