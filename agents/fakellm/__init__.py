"""fakellm: a scriptable fake LLM provider speaking the OpenAI, Anthropic and Ollama protocols.

It powers the offline demo model and the gateway tests. No Django here: it starts fast and runs
without settings (`python -m agents.fakellm`, or `manage.py fakellm`).
"""

from .replies import default_reply, estimate_tokens, make_plan
from .script import (
    DEFAULT_MODELS,
    FAULTS,
    Fault,
    Rule,
    Script,
    ScriptError,
    ToolCallSpec,
    load_script,
    parse_fault,
)
from .server import (
    DEFAULT_PORT,
    RunningServer,
    check_host,
    create_app,
    is_loopback,
    serve,
    start_in_thread,
)

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_PORT",
    "FAULTS",
    "Fault",
    "Rule",
    "RunningServer",
    "Script",
    "ScriptError",
    "ToolCallSpec",
    "check_host",
    "create_app",
    "default_reply",
    "estimate_tokens",
    "is_loopback",
    "load_script",
    "make_plan",
    "parse_fault",
    "serve",
    "start_in_thread",
]
