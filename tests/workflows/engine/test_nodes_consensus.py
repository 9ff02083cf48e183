"""The consensus node: commit, revision with objections, proposer failure and election."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.workflows.engine.conftest import NAMES, Harness, chain, node, var
from workflows.engine.memory import AgentCall, ScriptedAgents
from workflows.engine.nodes.consensus import parse_ballot


def council(**config: Any) -> dict[str, Any]:
    config.setdefault("proposer_agent_id", "ann")
    config.setdefault("members", ["bob", "cy", "dee"])
    config.setdefault("task", "Agree on a plan for {{ topic }}")
    return chain(
        node("agree", "consensus", 0, 0, output_variable="plan", **config),
        output="plan",
        variables=[var("plan")],
    )


def accept(reason: str = "sound") -> str:
    return json.dumps({"decision": "accept", "reason": reason})


def reject(reason: str) -> str:
    return json.dumps({"decision": "reject", "reason": reason})


def script(by_key: dict[str, Any]):
    """Replies by step key (suffix after the node id); unnamed keys accept."""

    def reply(call: AgentCall) -> Any:
        sub = call.step_key.partition("/")[2]
        if sub in by_key:
            return by_key[sub]
        if sub.endswith("/propose"):
            return f"Plan by {NAMES[call.agent_id]} in {sub.split('/')[0]}"
        return accept()

    return reply


@pytest.mark.asyncio
async def test_a_proposal_the_majority_accepts_is_committed(harness: Harness):
    harness.add(council())
    harness.agents = ScriptedAgents(
        NAMES, script({"term-1/member-2": reject("too slow"), "term-1/propose": "Brew tea daily"})
    )
    outcome = await harness.run()
    assert outcome.status == "succeeded", outcome.reason
    assert outcome.output == "Brew tea daily"
    assert harness.agents.keys[0] == "agree/term-1/propose"
    assert sorted(harness.agents.keys[1:]) == [f"agree/term-1/member-{i}" for i in range(3)]
    proposal_call = harness.agents.calls[0]
    assert proposal_call.history[0]["content"] == "Agree on a plan for tea"
    ballot_call = harness.agents.calls[1]
    assert ballot_call.response_schema is not None
    assert ballot_call.response_schema["properties"]["decision"]["enum"] == ["accept", "reject"]
    assert "Brew tea daily" in ballot_call.history[0]["content"]
    [decision] = harness.events(kind="consensus")
    assert decision.data["committed"] is True
    assert decision.data["term"] == 1
    [term] = decision.data["log"]
    assert term["accepted"] == 2 and term["needed"] == 2
    assert [vote["decision"] for vote in term["votes"]] == ["accept", "accept", "reject"]
    assert term["votes"][2]["reason"] == "too slow"
    assert len(harness.events(kind="ballot")) == 3
    assert harness.store.runs["r1"].completed["agree"].variables == {"plan": "Brew tea daily"}


@pytest.mark.asyncio
async def test_a_rejected_proposal_is_revised_with_the_objections(harness: Harness):
    harness.add(council(quorum="unanimous"))
    harness.agents = ScriptedAgents(
        NAMES,
        script(
            {
                "term-1/propose": "Tea at noon",
                "term-1/member-0": reject("noon clashes with lunch"),
                "term-1/member-2": "I reject: no budget named",
                "term-2/propose": "Tea at three, 20 dollars a week",
            }
        ),
    )
    outcome = await harness.run()
    assert outcome.output == "Tea at three, 20 dollars a week"
    revise = next(c for c in harness.agents.calls if c.step_key == "agree/term-2/propose")
    request = revise.history[0]["content"]
    assert "Tea at noon" in request
    assert "- Bob: noon clashes with lunch" in request
    assert "- Dee: I reject: no budget named" in request
    assert "1 of 3 accepted, 3 needed" in request
    [decision] = harness.events(kind="consensus")
    assert [term["committed"] for term in decision.data["log"]] == [False, True]
    assert decision.data["term"] == 2


@pytest.mark.asyncio
async def test_no_commit_within_max_terms_fails_the_node(harness: Harness):
    harness.add(council(max_terms=2))
    harness.agents = ScriptedAgents(
        NAMES, lambda call: "Plan" if call.step_key.endswith("propose") else reject("no")
    )
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert "No proposal reached the quorum of 2 in 2 terms" in outcome.reason
    assert len(harness.agents.calls) == 8


@pytest.mark.asyncio
async def test_no_commit_may_hand_on_the_last_proposal_marked_not_agreed(harness: Harness):
    harness.add(council(max_terms=2, on_no_consensus="last_proposal"))
    harness.agents = ScriptedAgents(
        NAMES,
        lambda call: call.step_key if call.step_key.endswith("propose") else reject("no"),
    )
    outcome = await harness.run()
    assert outcome.status == "succeeded"
    assert outcome.output == "agree/term-2/propose"
    [decision] = harness.events(kind="consensus")
    assert decision.data["committed"] is False


@pytest.mark.asyncio
async def test_a_failed_proposer_is_replaced_by_the_member_with_most_acceptances(
    harness: Harness,
):
    harness.add(council())
    harness.agents = ScriptedAgents(
        NAMES,
        script(
            {
                "term-1/member-0": reject("vague"),
                "term-1/member-1": accept(),
                "term-1/member-2": reject("vague"),
                "term-2/propose": RuntimeError("provider down"),
                "term-3/propose": "Cy's plan",
            }
        ),
    )
    outcome = await harness.run()
    assert outcome.output == "Cy's plan", outcome.reason
    [election] = [e for e in harness.events(kind="election") if "elected" in e.data]
    assert election.data["elected"] == "Cy"
    assert election.data["method"] == "most_acceptances"
    assert election.data["tally"] == {"Bob": 0, "Cy": 1, "Dee": 0}
    # Cy proposes in term 3 and counts as accepting; Bob and Dee are asked.
    term3 = [key for key in harness.agents.keys if key.startswith("agree/term-3")]
    assert sorted(term3) == [
        "agree/term-3/member-0",
        "agree/term-3/member-2",
        "agree/term-3/propose",
    ]
    [decision] = harness.events(kind="consensus")
    failed = decision.data["log"][1]
    assert failed["failed"] == "provider down" and failed["elected"] == "Cy"
    assert decision.data["log"][2]["accepted"] == 3


@pytest.mark.asyncio
async def test_members_may_elect_the_new_proposer_by_vote(harness: Harness):
    harness.add(council(election="vote"))

    def reply(call: AgentCall) -> Any:
        sub = call.step_key.partition("/")[2]
        if sub == "term-1/propose":
            return RuntimeError("gone")
        if "/elect-" in sub:
            return json.dumps({"candidate": "Dee", "reason": "calm"})
        return script({})(call)

    harness.agents = ScriptedAgents(NAMES, reply)
    outcome = await harness.run()
    assert outcome.output == "Plan by Dee in term-2"
    elected = [e.data for e in harness.events(kind="election") if "elected" in e.data]
    assert len(elected) == 1
    assert (
        elected[0]
        | {
            "term": 1,
            "elected_id": "dee",
            "elected": "Dee",
            "method": "vote",
            "tally": {"Bob": 0, "Cy": 0, "Dee": 3},
        }
        == elected[0]
    )
    # The election and its ballots share one correlation id.
    ids = {e.data["correlation_id"] for e in harness.events(kind="election")}
    assert ids == {"election:agree/term-1"}


class SlowProposer(ScriptedAgents):
    async def turn(self, **kwargs: Any) -> Any:
        if kwargs["agent_id"] == "ann":
            await asyncio.sleep(30)
        return await super().turn(**kwargs)


@pytest.mark.asyncio
async def test_a_proposer_that_times_out_is_replaced(harness: Harness):
    harness.add(council(proposer_timeout_s=1))
    harness.agents = SlowProposer(NAMES, script({}))
    outcome = await harness.run()
    assert outcome.output == "Plan by Bob in term-2"
    [failed] = [e for e in harness.events(kind="proposal") if e.data.get("failed")]
    assert failed.data["error"] == "Ann wrote no proposal within 1 s"


@pytest.mark.asyncio
async def test_a_failing_member_abstains(harness: Harness):
    harness.add(council(quorum="unanimous", max_terms=1))
    harness.agents = ScriptedAgents(NAMES, script({"term-1/member-1": RuntimeError("boom")}))
    outcome = await harness.run()
    assert outcome.status == "failed"
    ballots = {e.data["member"]: e.data for e in harness.events(kind="ballot")}
    assert ballots["Cy"]["decision"] == "abstain"
    assert ballots["Cy"]["reason"] == "failed: boom"


@pytest.mark.asyncio
async def test_when_every_proposer_fails_the_node_fails(harness: Harness):
    harness.add(council(members=["bob"], max_terms=3))
    harness.agents = ScriptedAgents(
        NAMES, lambda call: RuntimeError("down") if "propose" in call.step_key else accept()
    )
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert "no member is left to elect" in outcome.reason


@pytest.mark.asyncio
async def test_a_finished_consensus_replays_without_a_call(harness: Harness):
    harness.add(council())
    harness.agents = ScriptedAgents(NAMES, script({"term-1/member-0": reject("no")}))
    first = await harness.run()
    calls, events = len(harness.agents.calls), len(harness.events())
    again = await harness.run()
    assert again == first
    assert len(harness.agents.calls) == calls
    assert len(harness.events()) == events


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"decision": "accept", "reason": "fine"}', ("accept", "fine")),
        ('{"decision": "REJECT", "reason": "costly"}', ("reject", "costly")),
        ("I accept this.", ("accept", "I accept this.")),
        ("Rejected: too costly", ("reject", "Rejected: too costly")),
        ("I cannot accept; I reject it", ("abstain", "the answer said neither accept nor reject")),
        ('{"decision": "maybe"}', ("abstain", "answered 'maybe', neither accept nor reject")),
    ],
)
def test_ballots_are_read_from_json_or_plain_text(text: str, expected: tuple[str, str]):
    assert parse_ballot(text) == expected


@pytest.mark.asyncio
async def test_each_turn_tells_model_policies_the_role_its_agent_plays(harness: Harness):
    harness.add(council())
    harness.agents = ScriptedAgents(NAMES, script({}))
    await harness.run()
    roles = {call.step_key: call.route.role for call in harness.agents.calls if call.route}
    assert roles["agree/term-1/propose"] == "proposer"
    assert roles["agree/term-1/member-0"] == "member"
    first = harness.agents.calls[0]
    assert first.route is not None and first.route.node_type == "consensus"
    assert first.route.variables["topic"] == "tea"


@pytest.mark.asyncio
async def test_a_proposal_its_ballots_and_its_commit_share_a_correlation_id(harness: Harness):
    harness.add(council())
    harness.agents = ScriptedAgents(NAMES, script({"term-1/member-1": reject("no")}))
    await harness.run()
    [proposal] = harness.events(kind="proposal")
    assert (proposal.data["sender"], proposal.data["receiver"]) == ("Ann", "members")
    ballots = harness.events(kind="ballot")
    assert {(b.data["sender"], b.data["receiver"]) for b in ballots} == {
        ("Bob", "Ann"),
        ("Cy", "Ann"),
        ("Dee", "Ann"),
    }
    [commit] = harness.events(kind="consensus")
    ids = {event.data["correlation_id"] for event in [proposal, *ballots, commit]}
    assert ids == {"proposal:agree/term-1"}
    # The ballots stored as steps stay free of the envelope: replay reads them as they were.
    stored = harness.store.runs["r1"].completed["agree/term-1/member-0"].output
    assert "correlation_id" not in stored


@pytest.mark.asyncio
async def test_a_proposer_failing_in_the_last_term_is_named_in_the_reason(harness: Harness):
    harness.add(council(max_terms=1))
    harness.agents = ScriptedAgents(NAMES, script({"term-1/propose": RuntimeError("quota")}))
    outcome = await harness.run()
    assert outcome.status == "failed"
    assert outcome.reason.endswith(
        "No proposal reached the quorum of 2 in 1 terms; the last term's proposer failed: quota"
    )
