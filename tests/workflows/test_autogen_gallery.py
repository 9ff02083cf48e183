"""AutoGen Studio's gallery teams and sample team files: each imports, runs on the fake LLM
server as it would in AutoGen, and the report names what still differs.

The fixtures have the gallery's shapes (written for these tests): a single assistant in a round
robin, a selector pair without repeated speakers, Alice and Bob's swarm, the web team with a
browser and a person, the deep-research selector, a four-agent round robin, the quick-start
team, a Magentic-One team and a combined termination.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from agents.models import LedgerEntry
from tests.agents.factories import make_provider
from tests.conftest import Personas
from tests.workflows.conftest import finished
from workflows.models import Run, RunEvent, RunStatus
from workflows.services.autogen import autogen_import
from workflows.services.runs import run_answer, run_start

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).parent / "fixtures"
TASK = "What is 12 times 7?"
SELECTOR = "You choose who speaks next"

# What each file's report must say; every team must import, run and succeed.
REPORTS: dict[str, list[str]] = {
    "autogen_gallery_round_robin.json": [
        "the tool “calculator” (FunctionTool) was not imported: its arguments (a, b, operator) "
        "differ from those of the built-in calculator (expression)",
    ],
    "autogen_gallery_selector.json": [
        "the tool “calculator” (FunctionTool) was not imported",
        "The selector's prompt is sent as a user message",
    ],
    "autogen_gallery_swarm.json": [],
    "autogen_gallery_web_team.json": [
        "“websurfer_agent” is a MultimodalWebSurfer, which was skipped",
        "“user_proxy” (UserProxyAgent) is a person here",
    ],
    "autogen_gallery_deep_research.json": [
        "the tool “google_search” (FunctionTool) was not imported",
        "the tool “fetch_webpage” (FunctionTool) was not imported",
    ],
    "autogen_sample_travel_team.json": [],
    "autogen_lite_team.json": ["the tool “calculator” (FunctionTool) was not imported"],
    "autogen_magentic_one.json": [
        "the tool “current_time” runs as the built-in current_time",
        "AutoGen answers with the tool's result as written",
        "max_turns 10 is mapped to max_messages 11",
        "MagenticOneGroupChat: its orchestrator",
    ],
    "autogen_complex_termination.json": [
        "StopMessageTermination was left out",
        "max_messages 20 was added",
    ],
}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def demo(personas: Personas, llm_server: Any) -> Any:
    return make_provider(personas.workspace, name="Demo")


# An agent told to end the chat with TERMINATE does so on its first turn.
ENDS_AT_ONCE = {"system_contains": "TERMINATE", "reply": "That answers the task. TERMINATE"}


def launch(personas: Personas, name: str) -> tuple[Run, list[str]]:
    result = autogen_import(workspace=personas.workspace, user=None, document=load(name))
    assert result.workflow.latest_version == 1, result.warnings
    run = run_start(workflow=result.workflow, user=personas.owner, inputs={"task": TASK})
    run = finished(run, timeout=60)
    # A team with a person in it may turn to them: they answer, as its user would.
    for _ in range(5):
        if run.status != RunStatus.WAITING:
            break
        key = run.waiting_request["step_key"]
        run_answer(run=run, step_key=key, answer="Carry on.", user=personas.owner)
        run = finished(run, timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert not LedgerEntry.objects.filter(run_id=run.pk).exclude(status="completed").exists()
    return run, result.report


def speakers(run: Run) -> list[str]:
    events = RunEvent.objects.filter(run=run, kind="message").order_by("seq")
    return [event.data["agent"] for event in events]


def requests_of(llm_server: Any, system: str) -> list[dict[str, Any]]:
    found = []
    for request in llm_server.requests:
        messages = request["body"].get("messages") or []
        if messages and messages[0].get("role") == "system" and system in messages[0]["content"]:
            found.append(request["body"])
    return found


def test_every_gallery_and_sample_team_file_is_covered() -> None:
    gallery = {path.name for path in FIXTURES.glob("autogen_*.json")}
    older = {
        "autogen_round_robin_openai.json",
        "autogen_selector_azure_anthropic.json",
        "autogen_swarm_ollama.json",
        "autogen_unsupported_parts.json",
    }
    assert gallery - older == set(REPORTS)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_the_team_imports_runs_and_reports_each_difference(
    personas: Personas, demo, executor, name: str
) -> None:
    run, report = launch(personas, name)
    assert speakers(run), "someone spoke"
    text = "\n".join(report)
    for expected in REPORTS[name]:
        assert expected in text
    # Nothing is silently swapped: a tool is either the same built-in or reported.
    assert "calculator" not in text or "was not imported" in text or "runs as the built-in" in text


def test_a_max_message_count_includes_the_task_as_in_autogen(
    personas: Personas, demo, executor, llm_server
) -> None:
    # The gallery's RoundRobin Team: one assistant, TERMINATE | MaxMessageTermination(10).
    llm_server.set_script({"rules": [{"system_contains": "step by step", "reply": "Working."}]})
    run, _ = launch(personas, "autogen_gallery_round_robin.json")
    assert speakers(run) == ["assistant_agent"] * 9
    # The task reaches the agent as its text, not as {"task": ...}.
    first = requests_of(llm_server, "step by step")[0]["messages"]
    assert first[1] == {"role": "user", "content": TASK}


def test_a_selector_without_repeats_alternates_after_one_choice(
    personas: Personas, demo, executor, llm_server
) -> None:
    # The agent told to say TERMINATE does so at once (the fake model waits for a longer chat).
    rules = [{"system_contains": SELECTOR, "reply": "critic_agent"}, ENDS_AT_ONCE]
    llm_server.set_script({"rules": rules})
    run, _ = launch(personas, "autogen_gallery_selector.json")
    # The critic is chosen; then the assistant is the only candidate and ends with TERMINATE.
    assert speakers(run) == ["critic_agent", "assistant_agent"]
    [asked] = requests_of(llm_server, SELECTOR)
    prompt = asked["messages"][-1]["content"]
    assert "assistant_agent: An agent that helps, using tools.\ncritic_agent: an agent" in prompt
    assert "select the next role from ['assistant_agent', 'critic_agent'] to play" in prompt
    assert f"user: {TASK}\n\n" in prompt
    assert "{roles}" not in prompt and "{history}" not in prompt


def test_the_swarm_keeps_the_floor_until_a_handoff_and_counts_messages(
    personas: Personas, demo, executor, llm_server
) -> None:
    rules = [
        {
            "system_contains": "You are Alice",
            "has_tools": True,
            "last_role": "user",
            "tool_call": {"name": "transfer_to_bob", "arguments": {}},
        },
        {"system_contains": "You are Bob", "reply": "More detail."},
    ]
    llm_server.set_script({"rules": rules})
    run, _ = launch(personas, "autogen_gallery_swarm.json")
    # As in AutoGen's Swarm: Bob speaks until the 10 messages (the task is one) are used up.
    assert speakers(run) == ["Alice"] + ["Bob"] * 8
    assert RunEvent.objects.filter(run=run, kind="handoff").count() == 1


def test_the_deep_research_selector_reads_the_roles_from_the_file(
    personas: Personas, demo, executor, llm_server
) -> None:
    rules = [{"system_contains": SELECTOR, "reply": "summary_agent"}, ENDS_AT_ONCE]
    llm_server.set_script({"rules": rules})
    run, _ = launch(personas, "autogen_gallery_deep_research.json")
    assert speakers(run) == ["summary_agent"]
    prompt = requests_of(llm_server, SELECTOR)[0]["messages"][-1]["content"]
    assert "research_assistant: A research assistant that searches the web" in prompt
    assert "Choose from ['research_assistant', 'verifier', 'summary_agent']." in prompt


def test_the_web_team_asks_its_person_when_the_selector_chooses_them(
    personas: Personas, demo, executor, llm_server, client_for
) -> None:
    llm_server.set_script(
        {"rules": [{"system_contains": SELECTOR, "reply": "user_proxy"}, ENDS_AT_ONCE]}
    )
    result = autogen_import(
        workspace=personas.workspace, user=None, document=load("autogen_gallery_web_team.json")
    )
    run = run_start(workflow=result.workflow, user=personas.owner, inputs={"task": TASK})
    run = finished(run, timeout=60)
    assert run.status == RunStatus.WAITING, run.reason
    assert run.waiting_request["prompt"] == TASK
    page = client_for(personas.owner).get(reverse("run_detail", args=[run.pk]))
    assert "you answer as user_proxy" in page.content.decode()
    run_answer(
        run=run, step_key=run.waiting_request["step_key"], answer="Use 2024.", user=personas.owner
    )
    run = finished(run, timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    # No repeats: after the person only the assistant is left, chosen without asking.
    assert speakers(run) == ["user_proxy", "assistant_agent"]
    [asked] = requests_of(llm_server, SELECTOR)
    prompt = asked["messages"][-1]["content"]
    assert "user_proxy: a person to consult when the team is stuck" in prompt
    assert "['assistant_agent', 'user_proxy']" in prompt


def test_the_travel_team_takes_turns_until_the_summary_ends_it(
    personas: Personas, demo, executor, llm_server
) -> None:
    llm_server.set_script({"rules": [ENDS_AT_ONCE]})
    run, _ = launch(personas, "autogen_sample_travel_team.json")
    assert speakers(run) == [
        "planner_agent",
        "local_agent",
        "language_agent",
        "travel_summary_agent",
    ]


def test_a_swarm_hand_off_to_the_user_waits_for_the_answer(
    personas: Personas, demo, executor, llm_server
) -> None:
    # HandoffTermination(target="user"): AutoGen stops and the user's next message goes on.
    rules = [
        {
            "system_contains": "You are a travel agent",
            "last_role": "user",
            "last_message_contains": TASK,
            "tool_call": {"name": "transfer_to_user", "arguments": {}},
        },
        {"system_contains": "You are a travel agent", "reply": "Booked for Paris. TERMINATE"},
    ]
    llm_server.set_script({"rules": rules})
    result = autogen_import(
        workspace=personas.workspace, user=None, document=load("autogen_swarm_ollama.json")
    )
    run = run_start(workflow=result.workflow, user=personas.owner, inputs={"task": TASK})
    run = finished(run, timeout=60)
    assert run.status == RunStatus.WAITING, run.reason
    run_answer(
        run=run, step_key=run.waiting_request["step_key"], answer="Paris", user=personas.owner
    )
    run = finished(run, timeout=60)
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.output == "Booked for Paris. TERMINATE"
    # The person's answer is under the name of whoever gave it.
    assert speakers(run) == ["travel_agent", "olivia", "travel_agent"]
