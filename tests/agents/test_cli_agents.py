"""Command-line agents: allow-list, argument vector, stream-json parsing, isolation and stopping."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from agents.cli_agents import (
    CliAgentError,
    CliAgentRefused,
    CliCommand,
    CliEvent,
    cli_agent_run,
    cli_command_allowed,
    cli_command_argv,
    cli_parse_event,
)

FAKE = str(Path(__file__).with_name("fake_claude.py"))
ALLOWED = [sys.executable]
TEMPLATE = (
    sys.executable,
    FAKE,
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


def fake(**options: Any) -> CliCommand:
    return CliCommand(argv_template=TEMPLATE, **{"timeout_s": 30.0, **options})


class Recorder:
    def __init__(self) -> None:
        self.events: list[CliEvent] = []

    def __call__(self, event: CliEvent) -> None:
        self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def first(self, kind: str) -> CliEvent:
        return next(event for event in self.events if event.kind == kind)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed process whose parent died may wait a while for a reaper: dead all the same.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def until_dead(*pids: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.02)


def hang_pids(recorder: Recorder) -> tuple[int, int]:
    leader = recorder.first("init").raw["pid"]
    child = int(recorder.first("text").text.removeprefix("child pid "))
    return leader, child


@pytest.mark.asyncio
async def test_a_run_streams_events_in_order_and_reports_usage_and_cost() -> None:
    recorder = Recorder()

    result = await cli_agent_run(
        fake(),
        prompt="Summarise the repository",
        max_turns=4,
        allowed_tools=["Bash", "Read"],
        model="claude-opus-4-1",
        system="Be brief.",
        on_event=recorder,
        allowed=ALLOWED,
    )

    assert recorder.kinds == ["init", "text", "tool_use", "tool_result", "text", "result"]
    init = recorder.first("init")
    assert init.raw["tools"] == ["Bash", "Read"]
    assert init.raw["max_turns"] == 4
    assert init.raw["system"] == "Be brief."
    assert recorder.events[1].text == "You said: Summarise the repository"
    tool_use = recorder.first("tool_use")
    assert (tool_use.tool_name, tool_use.tool_use_id) == ("Bash", "toolu_01")
    assert tool_use.tool_input == {"command": "ls", "description": "List files"}
    tool_result = recorder.first("tool_result")
    assert (tool_result.tool_use_id, tool_result.text, tool_result.is_error) == (
        "toolu_01",
        "README.md\n",
        False,
    )
    assert result.text == "All done."
    assert (result.is_error, result.subtype, result.num_turns) == (False, "success", 3)
    assert (result.input_tokens, result.output_tokens) == (36, 90)
    assert (result.cache_read_tokens, result.cache_creation_tokens) == (4800, 1200)
    assert result.cost_usd == Decimal("0.0123456")
    assert result.duration_ms == 4213
    assert result.session_id == "3f1c2d9e-5b7a-4c1e-9f0a-8d2b6e4a1c07"
    assert result.model == "claude-opus-4-1"
    assert (result.events, result.exit_code) == (6, 0)


@pytest.mark.asyncio
async def test_an_async_callback_is_awaited_and_max_turns_is_reported() -> None:
    seen: list[str] = []

    async def on_event(event: CliEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.kind)

    result = await cli_agent_run(
        fake(), prompt="MAXTURNS", max_turns=2, on_event=on_event, allowed=ALLOWED
    )

    assert seen[-1] == "result"
    assert (result.is_error, result.subtype, result.num_turns) == (True, "error_max_turns", 2)


@pytest.mark.asyncio
async def test_commands_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CliAgentRefused) as refused:
        await cli_agent_run(fake(), prompt="hi", allowed=["claude"])

    assert refused.value.kind == "refused"
    assert "A2A_CLI_AGENT_COMMANDS" in str(refused.value)
    with override_settings(CLI_AGENT_COMMANDS=["claude"]), pytest.raises(CliAgentRefused):
        await cli_agent_run(fake(), prompt="hi")
    with override_settings(CLI_AGENT_COMMANDS=ALLOWED):
        assert (await cli_agent_run(fake(), prompt="hi")).text == "All done."


def test_allow_list_matching_is_by_name_or_resolved_path() -> None:
    git = shutil.which("git")
    assert git is not None

    assert cli_command_allowed("git", ["git"]) == git
    assert cli_command_allowed(git, ["git"]) == git
    assert cli_command_allowed("git", [git]) == git
    with pytest.raises(CliAgentRefused):
        cli_command_allowed("gitk", ["git"])
    with pytest.raises(CliAgentRefused):
        cli_command_allowed("git", [""])
    with override_settings(CLI_AGENT_COMMANDS=[]), pytest.raises(CliAgentRefused):
        cli_command_allowed("git")


@pytest.mark.asyncio
async def test_an_allowed_command_that_does_not_exist_fails_to_start() -> None:
    command = CliCommand(argv_template=("/nonexistent/claude", "-p", "{prompt}"))

    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(command, prompt="hi", allowed=["/nonexistent/claude"])

    assert failed.value.kind == "start"


@pytest.mark.asyncio
async def test_the_prompt_arrives_verbatim_as_one_argument() -> None:
    prompt = "; rm -rf / $(whoami) `id` && echo 'quoted' \"double\" | cat > /tmp/x\nnext line"
    recorder = Recorder()

    await cli_agent_run(fake(), prompt=prompt, on_event=recorder, allowed=ALLOWED)

    argv = recorder.first("init").raw["argv"]
    assert argv[argv.index("-p") + 1] == prompt
    assert recorder.events[1].text == f"You said: {prompt}"


def test_placeholders_fill_whole_arguments_and_empty_options_are_left_out() -> None:
    command = CliCommand()

    argv = cli_command_argv(command, prompt="-rf everything", max_turns=3)

    assert argv == [
        "claude",
        "-p",
        " -rf everything",
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        "3",
    ]
    full = cli_command_argv(
        command, prompt="hi", allowed_tools=["Bash", "Read"], model="m", system="s"
    )
    assert full[-6:] == [
        "--allowedTools",
        "Bash,Read",
        "--model",
        "m",
        "--append-system-prompt",
        "s",
    ]


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (("claude", "--model={model}"), "whole argument"),
        (("claude", "{shell}"), "Unknown placeholder"),
        (("{prompt}",), "executable"),
        ((), "executable"),
    ],
)
def test_bad_templates_are_rejected(template: tuple[str, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        CliCommand(argv_template=template)
    with pytest.raises(ValueError, match="repository"):
        CliCommand(workdir_mode="worktree")


@pytest.mark.asyncio
async def test_a_timeout_kills_the_whole_process_group() -> None:
    recorder = Recorder()

    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(fake(timeout_s=3.0), prompt="HANG", on_event=recorder, allowed=ALLOWED)

    assert failed.value.kind == "timeout"
    assert "within 3 s" in str(failed.value)
    await until_dead(*hang_pids(recorder))


@pytest.mark.asyncio
async def test_processes_that_ignore_sigterm_are_killed_after_the_grace_period() -> None:
    recorder = Recorder()

    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(
            fake(timeout_s=3.0, kill_grace_s=0.2),
            prompt="HANG IGNORETERM",
            on_event=recorder,
            allowed=ALLOWED,
        )

    assert failed.value.kind == "timeout"
    await until_dead(*hang_pids(recorder))


@pytest.mark.asyncio
async def test_cancel_stops_the_run() -> None:
    cancel = asyncio.Event()
    recorder = Recorder()

    def on_event(event: CliEvent) -> None:
        recorder(event)
        if event.text.startswith("child pid"):
            cancel.set()

    started = time.monotonic()
    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(
            fake(), prompt="HANG", on_event=on_event, cancel=cancel, allowed=ALLOWED
        )

    assert failed.value.kind == "cancelled"
    assert time.monotonic() - started < 20
    await until_dead(*hang_pids(recorder))


@pytest.mark.asyncio
async def test_cancelling_the_calling_task_stops_the_processes() -> None:
    recorder = Recorder()
    running = asyncio.Event()

    def on_event(event: CliEvent) -> None:
        recorder(event)
        if event.text.startswith("child pid"):
            running.set()

    task = asyncio.create_task(
        cli_agent_run(fake(), prompt="HANG", on_event=on_event, allowed=ALLOWED)
    )
    await asyncio.wait_for(running.wait(), timeout=20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await until_dead(*hang_pids(recorder))


@pytest.mark.asyncio
async def test_a_failing_command_reports_its_exit_code_and_stderr() -> None:
    recorder = Recorder()

    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(fake(), prompt="FAIL", on_event=recorder, allowed=ALLOWED)

    assert failed.value.kind == "exit"
    assert failed.value.exit_code == 1
    assert "exited with code 1" in str(failed.value)
    assert "Invalid API key" in str(failed.value)
    assert [event.text for event in recorder.events if event.kind == "stderr"] == [
        "Starting up",
        "Error: Invalid API key · Please run /login",
    ]


@pytest.mark.asyncio
async def test_a_command_without_a_result_event_fails() -> None:
    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(fake(), prompt="NORESULT", allowed=ALLOWED)

    assert failed.value.kind == "no_result"
    assert failed.value.exit_code == 0


@pytest.mark.asyncio
async def test_non_json_lines_become_unparsed_events() -> None:
    recorder = Recorder()

    result = await cli_agent_run(fake(), prompt="GARBAGE", on_event=recorder, allowed=ALLOWED)

    assert result.text == "All done."
    unparsed = [event for event in recorder.events if event.kind == "unparsed"]
    assert [event.text for event in unparsed] == [
        "npm WARN deprecated something@1.0.0",
        "{not json",
        "[1, 2, 3]",
    ]
    assert recorder.kinds[:4] == ["init", "unparsed", "unparsed", "unparsed"]


@pytest.mark.asyncio
async def test_an_overlong_line_is_cut_and_the_run_goes_on() -> None:
    recorder = Recorder()

    result = await cli_agent_run(fake(), prompt="LONGLINE", on_event=recorder, allowed=ALLOWED)

    assert result.text == "All done."
    unparsed = recorder.first("unparsed")
    assert unparsed.text.endswith("y [truncated]")
    assert len(unparsed.text) < 2000


@pytest.mark.asyncio
async def test_the_studio_environment_is_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_TEST_STUDIO_SECRET", "do not leak")
    recorder = Recorder()

    await cli_agent_run(
        fake(env={"ANTHROPIC_API_KEY": "sk-test"}), prompt="hi", on_event=recorder, allowed=ALLOWED
    )

    environ = recorder.first("init").raw["environ"]
    assert "ANTHROPIC_API_KEY" in environ
    assert "PATH" in environ
    assert "A2A_TEST_STUDIO_SECRET" not in environ


@pytest.mark.asyncio
async def test_the_run_happens_in_a_fresh_directory_that_is_removed() -> None:
    recorder = Recorder()
    during: list[bool] = []

    def on_event(event: CliEvent) -> None:
        recorder(event)
        if event.text.startswith("cwd: "):
            during.append(Path(event.text.split("\n")[0].removeprefix("cwd: ")).is_dir())

    await cli_agent_run(fake(), prompt="WRITEFILE", on_event=on_event, allowed=ALLOWED)

    opening = recorder.events[1].text.split("\n")
    workdir = opening[0].removeprefix("cwd: ")
    assert workdir != os.getcwd()
    assert Path(workdir).name.startswith("a2a-cli-")
    assert opening[1] == "files: written-by-agent.txt"
    assert during == [True]
    assert not Path(workdir).exists()


def git(*arguments: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def git_repository(path: Path) -> Path:
    path.mkdir()
    git("init", "-q", cwd=path)
    (path / "README.md").write_text("# Project\n")
    git("add", "README.md", cwd=path)
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    git(*identity, "commit", "-q", "-m", "Initial", cwd=path)
    return path


def worktrees(repository: Path) -> list[str]:
    listing = git("worktree", "list", "--porcelain", cwd=repository)
    return [
        line.removeprefix("worktree ")
        for line in listing.splitlines()
        if line.startswith("worktree ")
    ]


@pytest.mark.asyncio
async def test_the_worktree_mode_runs_in_a_detached_worktree_that_is_removed(
    tmp_path: Path,
) -> None:
    repository = git_repository(tmp_path / "repo")
    recorder = Recorder()
    listed_during: list[list[str]] = []

    def on_event(event: CliEvent) -> None:
        recorder(event)
        if event.text.startswith("cwd: "):
            listed_during.append(worktrees(repository))

    await cli_agent_run(
        fake(workdir_mode="worktree", repository=str(repository)),
        prompt="WRITEFILE",
        on_event=on_event,
        allowed=ALLOWED,
    )

    opening = recorder.events[1].text.split("\n")
    workdir = opening[0].removeprefix("cwd: ")
    assert opening[1] == "files: .git,README.md,written-by-agent.txt"
    assert [Path(path).resolve() for path in listed_during[0]] == [
        repository.resolve(),
        Path(workdir).resolve(),
    ]
    assert not Path(workdir).exists()
    assert not Path(workdir).parent.exists()
    assert worktrees(repository) == [str(repository)]
    assert not (repository / "written-by-agent.txt").exists()


@pytest.mark.asyncio
async def test_the_worktree_is_removed_after_a_failure_too(tmp_path: Path) -> None:
    repository = git_repository(tmp_path / "repo")

    with pytest.raises(CliAgentError, match="exited with code 1"):
        await cli_agent_run(
            fake(workdir_mode="worktree", repository=str(repository)),
            prompt="FAIL",
            allowed=ALLOWED,
        )

    assert worktrees(repository) == [str(repository)]


@pytest.mark.asyncio
async def test_a_repository_without_commits_cannot_give_a_worktree(tmp_path: Path) -> None:
    repository = tmp_path / "empty"
    repository.mkdir()
    git("init", "-q", cwd=repository)

    with pytest.raises(CliAgentError) as failed:
        await cli_agent_run(
            fake(workdir_mode="worktree", repository=str(repository)), prompt="hi", allowed=ALLOWED
        )

    assert failed.value.kind == "start"
    assert "git worktree add failed" in str(failed.value)


def test_parsing_tolerates_other_shapes() -> None:
    [user] = cli_parse_event('{"type": "user", "message": {"role": "user", "content": "plain"}}')
    [result] = cli_parse_event(
        '{"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t",'
        ' "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],'
        ' "is_error": true}]}}'
    )
    [other] = cli_parse_event('{"type": "system", "subtype": "compact_boundary"}')

    assert (user.kind, user.text) == ("text", "plain")
    assert (result.kind, result.text, result.is_error) == ("tool_result", "a\nb", True)
    assert other.kind == "unparsed"
    assert (
        cli_parse_event('{"type": "assistant", "message": {"content": [{"type": "thinking"}]}}')
        == []
    )
