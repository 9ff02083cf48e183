"""How a run reads as an A2A task, and how a message reads as inputs or an answer (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from a2a.helpers.proto_helpers import new_data_part
from a2a.types.a2a_pb2 import Message, Part, TaskState

from workflows.a2a.card import clean_skills
from workflows.a2a.services import skills_as_text, skills_from_text
from workflows.a2a.tasks import MessageRefused, message_answer, message_inputs, run_task
from workflows.graph.schema import InputField

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def row(status: str, **extra: object) -> dict[str, object]:
    return {"id": "0b6c", "status": status, "created_at": NOW, "started_at": NOW, **extra}


@pytest.mark.parametrize(
    ("status", "waiting", "started", "state"),
    [
        ("queued", None, False, TaskState.TASK_STATE_SUBMITTED),
        ("queued", None, True, TaskState.TASK_STATE_WORKING),
        ("running", None, True, TaskState.TASK_STATE_WORKING),
        (
            "waiting",
            {"kind": "input", "step_key": "k", "prompt": "Tone?"},
            True,
            TaskState.TASK_STATE_INPUT_REQUIRED,
        ),
        ("waiting", {"kind": "subrun", "step_key": "k"}, True, TaskState.TASK_STATE_WORKING),
        ("succeeded", None, True, TaskState.TASK_STATE_COMPLETED),
        ("failed", None, True, TaskState.TASK_STATE_FAILED),
        ("cancelled", None, True, TaskState.TASK_STATE_CANCELED),
    ],
)
def test_task_states_follow_run_states(
    status: str, waiting: dict[str, str] | None, started: bool, state: int
) -> None:
    task = run_task(
        row(status, waiting_request=waiting, started_at=NOW if started else None, output="x")
    )
    assert task.status.state == state
    assert task.context_id == "0b6c", "without a context of the caller's, the run's own id"
    if state == TaskState.TASK_STATE_INPUT_REQUIRED:
        assert task.status.message.parts[0].text.startswith("Tone?")
    assert bool(task.artifacts) == (status == "succeeded")


def test_a_structured_output_is_a_data_part_and_one_text_field_also_text() -> None:
    task = run_task(row("succeeded", output={"note": "Hello"}))
    parts = task.artifacts[0].parts
    assert parts[0].text == "Hello"
    assert parts[1].HasField("data")


def test_a_failed_task_says_why() -> None:
    task = run_task(row("failed", reason="The model refused."))
    assert task.status.message.parts[0].text == "The model refused."


def test_text_goes_to_the_first_text_input_and_data_by_name() -> None:
    fields = [InputField(name="depth", type="integer"), InputField(name="topic", type="text")]
    message = Message(parts=[Part(text="tides"), new_data_part({"depth": 3})])
    assert message_inputs(fields, message) == {"topic": "tides", "depth": 3}
    with pytest.raises(MessageRefused):
        message_inputs(fields, Message(parts=[]))


def test_an_approval_is_answered_in_words_or_data() -> None:
    approval = {"kind": "approval", "step_key": "check"}
    assert message_answer(approval, Message(parts=[Part(text="Approve, looks good")])) == {
        "approved": True,
        "comment": "looks good",
    }
    assert message_answer(approval, Message(parts=[Part(text="no")]))["approved"] is False
    data = Message(parts=[new_data_part({"approved": True, "comment": "ok"})])
    assert message_answer(approval, data) == {"approved": True, "comment": "ok"}


def test_skills_as_edited_on_the_page() -> None:
    text = (
        "summarize: Summarize a document\nReads it, answers briefly.\ntags: docs, summary\n"
        "example: Summarize the incident report\n\nTranslate\nInto French."
    )
    skills = clean_skills(skills_from_text(text))
    assert [skill["id"] for skill in skills] == ["summarize", "translate"]
    assert skills[0]["tags"] == ["docs", "summary"]
    assert skills[0]["examples"] == ["Summarize the incident report"]
    assert clean_skills(skills_from_text(skills_as_text(skills))) == skills
    with pytest.raises(ValueError, match="Skill 1 \\(Lonely\\): add a line"):
        skills_from_text("Lonely")
    with pytest.raises(ValueError, match="used twice"):
        clean_skills(skills_from_text("a: One\nx\n\na: Two\ny"))
