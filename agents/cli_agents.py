"""Command-line agents: run an allow-listed agent CLI (Claude Code's headless mode) for one step.

The command runs without a shell, in a fresh working directory (a temporary directory or a git
worktree), in its own process group so that a timeout or a cancel stops everything it started,
and with a trimmed environment so that the studio's own secrets do not reach it. Its stdout is
read as Claude Code's stream-json: one JSON event per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from django.conf import settings

logger = logging.getLogger(__name__)

PLACEHOLDERS: Final = frozenset({"prompt", "max_turns", "allowed_tools", "model", "system"})
_PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")

CLAUDE_CODE_ARGV: Final = (
    "claude",
    "-p",
    "{prompt}",
    "--output-format",
    "stream-json",
    "--verbose",
    "--max-turns",
    "{max_turns}",
    "--allowedTools",
    "{allowed_tools}",
    "--model",
    "{model}",
    "--append-system-prompt",
    "{system}",
)

# What a CLI agent needs from our environment to find itself and its login; everything else
# (the secret key, database URL, credential keys) stays with the studio.
INHERITED_ENV: Final = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SHELL",
    "TERM",
)

MAX_LINE_BYTES: Final = 4 * 1024 * 1024
MAX_OUTPUT_BYTES: Final = 64 * 1024 * 1024
STDERR_TAIL_BYTES: Final = 20 * 1024
STDERR_MESSAGE_LINES: Final = 10
STDERR_MESSAGE_CHARS: Final = 2000
READ_CHUNK: Final = 64 * 1024
# After the command exits, its pipes should reach end of file at once; a process that escaped
# the group may hold them open, and we do not wait for it.
DRAIN_S: Final = 5.0
GIT_TIMEOUT_S: Final = 60.0

WorkdirMode = Literal["tempdir", "worktree"]
CliEventKind = Literal["init", "text", "tool_use", "tool_result", "result", "stderr", "unparsed"]
CliErrorKind = Literal["refused", "start", "timeout", "exit", "no_result", "cancelled", "output"]


class CliAgentError(Exception):
    def __init__(
        self,
        kind: CliErrorKind,
        message: str,
        *,
        exit_code: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class CliAgentRefused(CliAgentError):
    def __init__(self, message: str) -> None:
        super().__init__("refused", message)


@dataclass(frozen=True)
class CliCommand:
    argv_template: tuple[str, ...] = CLAUDE_CODE_ARGV
    timeout_s: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict)
    workdir_mode: WorkdirMode = "tempdir"
    repository: str = ""
    inherit_env: tuple[str, ...] = INHERITED_ENV
    # How long a process group gets between SIGTERM and SIGKILL.
    kill_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.argv_template or not self.argv_template[0]:
            raise ValueError("The command needs an executable.")
        if "{" in self.argv_template[0]:
            raise ValueError("The executable cannot be a placeholder.")
        for argument in self.argv_template:
            for name in _PLACEHOLDER.findall(argument):
                if name not in PLACEHOLDERS:
                    raise ValueError(f"Unknown placeholder {{{name}}} in {argument!r}.")
                if argument != f"{{{name}}}":
                    raise ValueError(
                        f"{argument!r}: a placeholder must be a whole argument, e.g. "
                        f"'--model', '{{model}}'."
                    )
        if self.workdir_mode not in ("tempdir", "worktree"):
            raise ValueError(f"Unknown workdir mode {self.workdir_mode!r}.")
        if self.workdir_mode == "worktree" and not self.repository:
            raise ValueError("The worktree mode needs a repository path.")
        if self.timeout_s <= 0:
            raise ValueError("The timeout must be positive.")


@dataclass(frozen=True)
class CliEvent:
    kind: CliEventKind
    text: str = ""
    tool_name: str = ""
    tool_use_id: str = ""
    tool_input: Any = None
    is_error: bool = False
    session_id: str = ""
    # The decoded JSON event (None for stderr and non-JSON lines), for whatever we do not model.
    raw: Any = None


@dataclass(frozen=True)
class CliRunResult:
    text: str
    is_error: bool
    subtype: str
    num_turns: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: Decimal
    duration_ms: int
    session_id: str
    model: str
    events: int
    exit_code: int | None
    stderr_tail: str = ""


def cli_command_allowed(executable: str, allowed: Sequence[str] | None = None) -> str:
    """The path to execute for `executable`, or CliAgentRefused if it is not allow-listed.

    Entries of the allow-list (settings.CLI_AGENT_COMMANDS) are executable names or absolute
    paths; `executable` matches an entry by the same name, or when both resolve on PATH to the
    same absolute path.
    """
    entries = list(getattr(settings, "CLI_AGENT_COMMANDS", []) if allowed is None else allowed)
    resolved = _resolve(executable)
    for entry in entries:
        if not entry:
            continue
        if executable == entry or (resolved is not None and resolved == _resolve(entry)):
            return resolved or executable
    raise CliAgentRefused(
        f"{executable!r} is not an allowed command-line agent. An administrator can allow it by "
        "adding its name or absolute path to A2A_CLI_AGENT_COMMANDS (settings.CLI_AGENT_COMMANDS)."
    )


def _resolve(executable: str) -> str | None:
    found = shutil.which(executable)
    return os.path.abspath(found) if found else None


def cli_command_argv(
    command: CliCommand,
    *,
    prompt: str,
    max_turns: int = 5,
    allowed_tools: Sequence[str] = (),
    model: str = "",
    system: str = "",
) -> list[str]:
    """The argument vector with the placeholders filled in; each value stays one argument.

    An option whose value is empty is left out together with its flag (`--model {model}` without
    a model), since most CLIs refuse an empty value. Values starting with "-" get a leading space
    so that the CLI cannot read a prompt as one of its own options.
    """
    values = {
        "prompt": prompt,
        "max_turns": str(max_turns),
        "allowed_tools": ",".join(allowed_tools),
        "model": model,
        "system": system,
    }
    argv: list[str] = []
    for argument in command.argv_template:
        match = _PLACEHOLDER.fullmatch(argument)
        if match is None:
            argv.append(argument)
            continue
        value = values[match.group(1)]
        if not value and match.group(1) != "prompt":
            if len(argv) > 1 and argv[-1].startswith("-"):
                argv.pop()
            continue
        argv.append(" " + value if value.startswith("-") else value)
    return argv


def cli_parse_event(line: str) -> list[CliEvent]:
    """Claude Code's stream-json events for one line of output; never raises."""
    try:
        event = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return [CliEvent(kind="unparsed", text=line)]
    if not isinstance(event, dict):
        return [CliEvent(kind="unparsed", text=line, raw=event)]
    session_id = _str(event.get("session_id"))
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        return [
            CliEvent(kind="init", text=_str(event.get("model")), session_id=session_id, raw=event)
        ]
    if kind == "result":
        return [
            CliEvent(
                kind="result",
                text=_str(event.get("result")),
                is_error=bool(event.get("is_error")),
                session_id=session_id,
                raw=event,
            )
        ]
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if kind in ("assistant", "user") and isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if kind not in ("assistant", "user") or not isinstance(content, list):
        return [CliEvent(kind="unparsed", text=line, session_id=session_id, raw=event)]
    events: list[CliEvent] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        block_type = block.get("type")
        if block_type == "text":
            events.append(
                CliEvent(
                    kind="text", text=_str(block.get("text")), session_id=session_id, raw=event
                )
            )
        elif block_type == "tool_use":
            events.append(
                CliEvent(
                    kind="tool_use",
                    tool_name=_str(block.get("name")),
                    tool_use_id=_str(block.get("id")),
                    tool_input=block.get("input"),
                    session_id=session_id,
                    raw=event,
                )
            )
        elif block_type == "tool_result":
            events.append(
                CliEvent(
                    kind="tool_result",
                    text=_flatten(block.get("content")),
                    tool_use_id=_str(block.get("tool_use_id")),
                    is_error=bool(block.get("is_error")),
                    session_id=session_id,
                    raw=event,
                )
            )
        # Thinking blocks and future block types are not shown.
    return events


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            _str(block.get("text")) for block in content if isinstance(block, dict)
        ).strip()
    return ""


def _cost(value: Any) -> Decimal:
    # Through str: Decimal(0.1) would carry the float's binary noise into billing.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return Decimal(0)
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return cost if cost.is_finite() else Decimal(0)


class _OutputTooLarge(Exception):
    pass


async def _lines(
    stream: asyncio.StreamReader, budget: list[int] | None = None
) -> AsyncIterator[tuple[bytes, bool]]:
    """(line, truncated) pairs; lines longer than MAX_LINE_BYTES are cut, the rest discarded.

    `budget` is a one-element list of bytes still allowed; running out raises _OutputTooLarge.
    """
    pending = bytearray()
    truncated = False

    def keep(piece: bytes) -> None:
        nonlocal truncated
        if truncated:
            return
        room = MAX_LINE_BYTES - len(pending)
        pending.extend(piece[:room])
        truncated = len(piece) > room

    while chunk := await stream.read(READ_CHUNK):
        if budget is not None:
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _OutputTooLarge
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            keep(chunk[start:end])
            yield bytes(pending), truncated
            pending.clear()
            truncated = False
            start = end + 1
        keep(chunk[start:])
    if pending or truncated:
        yield bytes(pending), truncated


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _terminate(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM to the whole group, then SIGKILL to whatever is left after the grace period."""
    if process.returncode is None:
        _kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=grace_s)
    # Children may ignore SIGTERM, or outlive a leader that obeyed it.
    _kill_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


async def _git(*arguments: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "git",
        *arguments,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=GIT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CliAgentError("start", f"git {arguments[0]} timed out.") from None
    if process.returncode != 0:
        detail = stderr.decode("utf-8", errors="replace").strip()[-STDERR_MESSAGE_CHARS:]
        raise CliAgentError("start", f"git {' '.join(arguments[2:4])} failed: {detail}")


@contextlib.asynccontextmanager
async def _workdir(command: CliCommand) -> AsyncIterator[str]:
    parent = tempfile.mkdtemp(prefix="a2a-cli-")
    try:
        if command.workdir_mode == "tempdir":
            yield parent
            return
        repository = os.path.abspath(command.repository)
        worktree = os.path.join(parent, "worktree")
        await _git("-C", repository, "worktree", "add", "--detach", worktree, "HEAD")
        try:
            yield worktree
        finally:
            # Shielded: a cancelled step must still give the repository its worktree list back.
            await asyncio.shield(_remove_worktree(repository, worktree))
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, parent, ignore_errors=True))


async def _remove_worktree(repository: str, worktree: str) -> None:
    try:
        await _git("-C", repository, "worktree", "remove", "--force", worktree)
    except (CliAgentError, OSError):
        logger.warning("Could not remove the worktree %s; pruning instead", worktree, exc_info=True)
        await asyncio.to_thread(shutil.rmtree, worktree, ignore_errors=True)
        with contextlib.suppress(CliAgentError, OSError):
            await _git("-C", repository, "worktree", "prune")


class _Run:
    """The state of one run: the event stream, the stderr tail and the final result event."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        on_event: Callable[[CliEvent], Awaitable[None] | None] | None,
    ) -> None:
        self.process = process
        self.on_event = on_event
        self.events = 0
        self.result: dict[str, Any] | None = None
        self.session_id = ""
        self.model = ""
        self.stderr: deque[str] = deque()
        self.stderr_size = 0
        self.output_too_large = False

    async def emit(self, event: CliEvent) -> None:
        self.events += 1
        if self.on_event is not None:
            outcome = self.on_event(event)
            if inspect.isawaitable(outcome):
                await outcome

    async def read_stdout(self) -> None:
        assert self.process.stdout is not None
        budget = [MAX_OUTPUT_BYTES]
        try:
            async for raw, truncated in _lines(self.process.stdout, budget):
                line = raw.decode("utf-8", errors="replace").strip()
                if truncated:
                    await self.emit(CliEvent(kind="unparsed", text=line[:1000] + " [truncated]"))
                    continue
                if not line:
                    continue
                for event in cli_parse_event(line):
                    self.note(event)
                    await self.emit(event)
        except _OutputTooLarge:
            self.output_too_large = True
            _kill_group(self.process.pid, signal.SIGKILL)
        except BaseException:
            # Nobody reads its output any more: a blocked writer would otherwise hang to timeout.
            _kill_group(self.process.pid, signal.SIGKILL)
            raise

    def note(self, event: CliEvent) -> None:
        if event.session_id:
            self.session_id = event.session_id
        if event.kind == "init":
            self.model = event.text
        elif event.kind == "result":
            self.result = event.raw

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            async for raw, _ in _lines(self.process.stderr):
                line = raw.decode("utf-8", errors="replace").rstrip()[:STDERR_TAIL_BYTES]
                self.stderr.append(line)
                self.stderr_size += len(line) + 1
                while self.stderr_size > STDERR_TAIL_BYTES and len(self.stderr) > 1:
                    self.stderr_size -= len(self.stderr.popleft()) + 1
                await self.emit(CliEvent(kind="stderr", text=line))
        except BaseException:
            _kill_group(self.process.pid, signal.SIGKILL)
            raise

    def stderr_tail(self) -> str:
        return "\n".join(self.stderr)

    def stderr_summary(self) -> str:
        lines = list(self.stderr)[-STDERR_MESSAGE_LINES:]
        summary = "\n".join(lines)
        if len(summary) > STDERR_MESSAGE_CHARS:
            summary = "…" + summary[-STDERR_MESSAGE_CHARS:]
        return summary or "(nothing on stderr)"

    async def collect(self, readers: Sequence[asyncio.Task[None]]) -> int:
        returncode = await self.process.wait()
        # Whatever the command left running must not outlive the step (nor hold our pipes).
        _kill_group(self.process.pid, signal.SIGKILL)
        done, pending = await asyncio.wait(readers, timeout=DRAIN_S)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()
        return returncode


async def cli_agent_run(
    command: CliCommand,
    *,
    prompt: str,
    max_turns: int = 5,
    allowed_tools: Sequence[str] = (),
    model: str = "",
    system: str = "",
    on_event: Callable[[CliEvent], Awaitable[None] | None] | None = None,
    cancel: asyncio.Event | None = None,
    allowed: Sequence[str] | None = None,
) -> CliRunResult:
    """Run the command for one step and return its result; failures raise CliAgentError."""
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1.")
    executable = cli_command_allowed(command.argv_template[0], allowed)
    argv = cli_command_argv(
        command,
        prompt=prompt,
        max_turns=max_turns,
        allowed_tools=allowed_tools,
        model=model,
        system=system,
    )
    argv[0] = executable
    env = {name: os.environ[name] for name in command.inherit_env if name in os.environ}
    env.update(command.env)
    async with _workdir(command) as workdir:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            raise CliAgentError(
                "start", f"The command-line agent could not be started: {error.strerror or error}."
            ) from None
        return await _supervise(command, process, on_event, cancel)


async def _supervise(
    command: CliCommand,
    process: asyncio.subprocess.Process,
    on_event: Callable[[CliEvent], Awaitable[None] | None] | None,
    cancel: asyncio.Event | None,
) -> CliRunResult:
    run = _Run(process, on_event)
    readers = [
        asyncio.create_task(run.read_stdout()),
        asyncio.create_task(run.read_stderr()),
    ]
    collect = asyncio.create_task(run.collect(readers))
    cancelled = asyncio.create_task(cancel.wait()) if cancel is not None else None
    waiters: set[asyncio.Task[Any]] = {collect} | ({cancelled} if cancelled else set())
    try:
        done, _ = await asyncio.wait(
            waiters, timeout=command.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if collect not in done:
            await _terminate(process, command.kill_grace_s)
            if cancel is not None and cancel.is_set():
                raise CliAgentError("cancelled", "The command-line agent was cancelled.")
            raise CliAgentError(
                "timeout",
                f"The command-line agent did not finish within {command.timeout_s:g} s; "
                "its processes were stopped.",
                stderr_tail=run.stderr_tail(),
            )
        returncode = collect.result()
    finally:
        tasks = [task for task in (cancelled, collect, *readers) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Also when our caller was cancelled: the command must not run on unsupervised.
        await _terminate(process, command.kill_grace_s)
    return _outcome(run, returncode)


def _outcome(run: _Run, returncode: int) -> CliRunResult:
    tail = run.stderr_tail()
    if run.output_too_large:
        raise CliAgentError(
            "output",
            f"The command-line agent wrote more than {MAX_OUTPUT_BYTES // 2**20} MB of output; "
            "it was stopped.",
            exit_code=returncode,
            stderr_tail=tail,
        )
    result = run.result
    if result is None:
        if returncode == 0:
            raise CliAgentError(
                "no_result",
                "The command-line agent exited without reporting a result; check that its "
                "command line asks for --output-format stream-json.",
                exit_code=returncode,
                stderr_tail=tail,
            )
        how = (
            f"was killed by signal {-returncode}"
            if returncode < 0
            else f"exited with code {returncode}"
        )
        raise CliAgentError(
            "exit",
            f"The command-line agent {how} without a result. Last lines on stderr:\n"
            + run.stderr_summary(),
            exit_code=returncode,
            stderr_tail=tail,
        )
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return CliRunResult(
        text=_str(result.get("result")),
        is_error=bool(result.get("is_error")),
        subtype=_str(result.get("subtype")),
        num_turns=_int(result.get("num_turns")),
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_creation_tokens=_int(usage.get("cache_creation_input_tokens")),
        cost_usd=_cost(result.get("total_cost_usd")),
        duration_ms=_int(result.get("duration_ms")),
        session_id=_str(result.get("session_id")) or run.session_id,
        model=run.model,
        events=run.events,
        exit_code=returncode,
        stderr_tail=tail,
    )
