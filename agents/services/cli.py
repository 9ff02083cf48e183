"""Checks of command-line agent providers: is the program allowed and installed."""

from __future__ import annotations

import shutil
from typing import Any

from django.conf import settings

from agents.connection import ConnectionCheck


def cli_provider_check(config: dict[str, Any]) -> ConnectionCheck:
    argv = config.get("argv") or []
    if not argv:
        return ConnectionCheck(False, "No command is set.")
    program = str(argv[0])
    allowed = list(getattr(settings, "CLI_AGENT_COMMANDS", []))
    resolved = shutil.which(program)
    if program not in allowed and (resolved is None or resolved not in allowed):
        return ConnectionCheck(
            False,
            f"“{program}” is not on the allow-list. An administrator can add it to "
            "A2A_CLI_AGENT_COMMANDS.",
        )
    if resolved is None:
        return ConnectionCheck(False, f"“{program}” is allowed but not installed on this server.")
    return ConnectionCheck(True, f"“{program}” is allowed and installed at {resolved}.")
