"""The consensus node: Raft-like agreement among agents, every move a durable sub-step.

A term is one proposal and the members' ballot on it. Sub-step keys (under the node's key):

* `term-t/propose`: the proposer's proposal, or its failure (an error or `proposer_timeout_s`),
  recorded as such, so a resumed run meets the same failure instead of calling again;
* `term-t/member-i`: member i accepts or rejects, with a reason; a member that fails abstains;
* `term-t/elect-i` (election by vote): member i names a candidate; `term-t/elect` records who
  was elected, by either method.

Rules where a choice had to be made:

* A proposal is committed when its acceptances reach the quorum, counted over all members. An
  elected member proposes without voting on its own proposal and counts as accepting it.
* A rejected proposal goes back to the same proposer in the next term with every objection.
* A proposer that fails ends its term. The members elect a new proposer among those who have not
  failed as proposer: the one who accepted most proposals so far (ties: member order), or by a
  ballot of the members (ties: member order; no valid ballot falls back to most acceptances). The
  new proposer writes the next term's proposal. A failed term counts towards `max_terms`.
* Without a commit after `max_terms`: the node fails (its error policy decides), or, with
  `on_no_consensus: last_proposal`, hands on the last proposal, marked not agreed in the log.

The node's output is the committed proposal's text; its own step's `consensus` event carries the
whole decision log (term, proposer, proposal, ballots, election, commit).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from workflows.engine.contracts import EventDraft, LeaseLost, SpendRefused
from workflows.engine.nodes import (
    NodeError,
    NodeResult,
    ParsedNode,
    Scope,
    StepDone,
    executor,
    output_update,
)
from workflows.engine.nodes.basic import message_event, reply_done
from workflows.engine.nodes.flow import pick_named
from workflows.engine.templating import as_text
from workflows.graph.consensus import ConsensusConfig

if TYPE_CHECKING:
    from workflows.engine.engine import RunContext

ACCEPT = "accept"
REJECT = "reject"
ABSTAIN = "abstain"

BALLOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": [ACCEPT, REJECT]},
        "reason": {"type": "string"},
    },
    "required": ["decision", "reason"],
}
PROPOSE = (
    "You propose a decision that a group of members will accept or reject. Write the proposal "
    "itself, complete and self-contained, without preamble."
)
JUDGE = (
    "Accept or reject the proposal, with your reason. Reject only for a concrete objection the "
    'proposer could address. Reply as JSON: {"decision": "accept" | "reject", "reason": ...}.'
)
_ACCEPT_WORD = re.compile(r"\baccept", re.I)
_REJECT_WORD = re.compile(r"\breject", re.I)


def parse_ballot(text: str) -> tuple[str, str]:
    """(accept | reject | abstain, reason) from a JSON answer, or from plain text naming one."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "decision" in parsed:
        decision = as_text(parsed.get("decision")).strip().lower()
        reason = as_text(parsed.get("reason"))
        if decision in (ACCEPT, REJECT):
            return decision, reason
        return ABSTAIN, f"answered {decision!r}, neither accept nor reject"
    accepts, rejects = bool(_ACCEPT_WORD.search(text)), bool(_REJECT_WORD.search(text))
    if accepts != rejects:
        return (ACCEPT if accepts else REJECT), text.strip()
    return ABSTAIN, "the answer said neither accept nor reject"


def _failure(exc: BaseException) -> str:
    from agents.llm.redaction import redact_secrets

    return redact_secrets(str(exc)) or type(exc).__name__


class _Consensus:
    """One visit of a consensus node: its members, its log, and the sub-steps it takes."""

    def __init__(self, ctx: RunContext, node: ParsedNode, scope: Scope) -> None:
        config = node.config
        assert isinstance(config, ConsensusConfig)
        self.ctx = ctx
        self.node = node
        self.config = config
        self.key = scope.key(node.id)
        self.notes: list[EventDraft] = []
        self.task = ctx.render(config.task, scope, self.notes, self.key)
        self.members = list(config.members)
        self.names: dict[str, str] = {}
        self.log: list[dict[str, Any]] = []
        self.acceptances: Counter[str] = Counter()
        self.failed: list[str] = []

    def envelope(
        self, term: int, sender: str, receiver: str | None, what: str = "proposal"
    ) -> dict[str, Any]:
        """Who said it to whom; a proposal, its ballots and its commit share one id, as do an
        election and its ballots."""
        return {
            "sender": sender,
            "receiver": receiver,
            "correlation_id": f"{what}:{self.key}/term-{term}",
        }

    async def name(self, agent_id: str) -> str:
        if agent_id not in self.names:
            self.names[agent_id] = await self.ctx.agent_name(agent_id)
        return self.names[agent_id]

    async def run(self) -> NodeResult:
        config = self.config
        proposer = config.proposer_agent_id
        previous: dict[str, Any] | None = None
        for term in range(1, config.max_terms + 1):
            entry: dict[str, Any] = {"term": term}
            self.log.append(entry)
            proposal = await self.propose(term, proposer, previous)
            entry.update(
                proposer=proposal["proposer"],
                proposer_id=proposer,
                proposal=proposal["proposal"],
            )
            if proposal["failed"]:
                entry["failed"] = proposal["error"]
                self.failed.append(proposer)
                elected = await self.elect(term)
                entry["elected"] = elected["elected"]
                entry["election"] = elected["method"]
                proposer = elected["elected_id"]
                continue
            ballots = await self.ballot(term, proposer, proposal)
            accepted = sum(ballot["decision"] == ACCEPT for ballot in ballots)
            if proposer in self.members:
                accepted += 1  # an elected member accepts its own proposal
            entry.update(votes=ballots, accepted=accepted, needed=config.needed())
            for ballot in ballots:
                if ballot["decision"] == ACCEPT:
                    self.acceptances[ballot["member_id"]] += 1
            if accepted >= config.needed():
                entry["committed"] = True
                return await self.finish(term, proposal, committed=True)
            entry["committed"] = False
            previous = {**proposal, "votes": ballots, "accepted": accepted}
        last = next((entry for entry in reversed(self.log) if entry.get("proposal")), None)
        summary = f"No proposal reached the quorum of {config.needed()} in {config.max_terms} terms"
        if self.log[-1].get("failed"):
            summary += f"; the last term's proposer failed: {self.log[-1]['failed']}"
        if config.on_no_consensus == "last_proposal" and last is not None:
            return await self.finish(
                int(last["term"]),
                {"proposal": last["proposal"], "proposer": last["proposer"]},
                committed=False,
            )
        raise NodeError(summary)

    # Proposals

    def proposal_request(self, previous: dict[str, Any] | None) -> str:
        if previous is None:
            return self.task
        objections = [
            f"- {ballot['member']}: {ballot['reason'] or 'no reason given'}"
            for ballot in previous["votes"]
            if ballot["decision"] != ACCEPT
        ]
        return (
            f"{self.task}\n\nThe proposal of term {previous['term']}, by {previous['proposer']}:\n"
            f"{previous['proposal']}\n\nIt was not committed ({previous['accepted']} of "
            f"{len(self.members)} accepted, {self.config.needed()} needed). Objections:\n"
            + "\n".join(objections)
            + "\n\nWrite a revised proposal that meets these objections."
        )

    async def propose(
        self, term: int, proposer: str, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        key = f"{self.key}/term-{term}/propose"
        ctx = self.ctx
        history = [{"role": "user", "content": self.proposal_request(previous)}]
        timeout = self.config.proposer_timeout_s

        async def work() -> StepDone:
            name = await self.name(proposer)
            output: dict[str, Any] = {
                "term": term,
                "proposer_id": proposer,
                "proposer": name,
                "proposal": None,
                "failed": False,
                "error": "",
            }
            try:
                turn = ctx.agent_turn(key, proposer, history, instructions=PROPOSE, role="proposer")
                reply, _ = await asyncio.wait_for(turn, timeout)
            except (LeaseLost, SpendRefused):
                raise
            except TimeoutError:
                error = f"{name} wrote no proposal within {timeout} s"
            except Exception as exc:
                error = _failure(exc)
            else:
                if reply.text.strip():
                    output["proposal"] = reply.text
                    said = EventDraft(
                        "proposal",
                        {"term": term, "proposer": name, **self.envelope(term, name, "members")},
                        key,
                    )
                    return reply_done(
                        reply, output, [said, message_event(key, proposer, name, reply)]
                    )
                error = f"{name} answered with an empty proposal"
            output.update(failed=True, error=error)
            failed = {
                "term": term,
                "proposer": name,
                "failed": True,
                "error": error,
                **self.envelope(term, name, "members"),
            }
            return StepDone(output, events=[EventDraft("proposal", failed, key)])

        record = await ctx.step(key, self.node, None, work)
        return dict(record.output)

    # Ballots

    async def ballot(
        self, term: int, proposer: str, proposal: dict[str, Any]
    ) -> list[dict[str, Any]]:
        question = (
            f"{self.task}\n\nThe proposal of term {term}, by {proposal['proposer']}:\n"
            f"{proposal['proposal']}"
        )
        voters = [
            (index, member) for index, member in enumerate(self.members) if member != proposer
        ]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        self.judge(term, index, member, question, proposal["proposer"])
                    )
                    for index, member in voters
                ]
        except BaseExceptionGroup as grouped:
            raise grouped.exceptions[0] from None
        return [task.result() for task in tasks]

    async def judge(
        self, term: int, index: int, member: str, question: str, proposer_name: str
    ) -> dict[str, Any]:
        key = f"{self.key}/term-{term}/member-{index}"
        ctx = self.ctx

        async def work() -> StepDone:
            name = await self.name(member)
            history = [{"role": "user", "content": question}]
            try:
                reply, _ = await ctx.agent_turn(
                    key,
                    member,
                    history,
                    instructions=JUDGE,
                    response_schema=BALLOT_SCHEMA,
                    role="member",
                )
            except (LeaseLost, SpendRefused):
                raise
            except Exception as exc:
                ballot = {
                    "term": term,
                    "member_id": member,
                    "member": name,
                    "decision": ABSTAIN,
                    "reason": f"failed: {_failure(exc)}",
                }
                said = {**ballot, **self.envelope(term, name, proposer_name)}
                return StepDone(ballot, events=[EventDraft("ballot", said, key)])
            decision, reason = parse_ballot(reply.text)
            ballot = {
                "term": term,
                "member_id": member,
                "member": name,
                "decision": decision,
                "reason": reason,
            }
            said = {**ballot, **self.envelope(term, name, proposer_name)}
            return reply_done(reply, ballot, [EventDraft("ballot", said, key)])

        record = await ctx.step(key, self.node, None, work)
        return dict(record.output)

    # Elections

    def candidates(self) -> list[str]:
        return [member for member in self.members if member not in self.failed]

    async def elect(self, term: int) -> dict[str, Any]:
        candidates = self.candidates()
        if not candidates:
            raise NodeError("Every proposer failed and no member is left to elect")
        method = self.config.election
        tally: dict[str, int] = {}
        if method == "vote" and len(candidates) > 1:
            tally = await self.election_ballot(term, candidates)
        key = f"{self.key}/term-{term}/elect"
        names = [await self.name(candidate) for candidate in candidates]

        async def work() -> StepDone:
            chosen_by = "vote" if any(tally.values()) else "most_acceptances"
            if chosen_by == "vote":
                scores = {candidate: tally.get(candidate, 0) for candidate in candidates}
            else:
                scores = {candidate: self.acceptances[candidate] for candidate in candidates}
            top = max(scores.values())
            elected = next(candidate for candidate in candidates if scores[candidate] == top)
            output = {
                "term": term,
                "elected_id": elected,
                "elected": names[candidates.index(elected)],
                "method": chosen_by,
                "tally": {names[candidates.index(c)]: score for c, score in scores.items()},
            }
            said = {**output, **self.envelope(term, self.node.id, "members", "election")}
            return StepDone(output, events=[EventDraft("election", said, key)])

        record = await self.ctx.step(key, self.node, None, work)
        return dict(record.output)

    async def election_ballot(self, term: int, candidates: list[str]) -> dict[str, int]:
        names = [await self.name(candidate) for candidate in candidates]
        failed = ", ".join([await self.name(agent) for agent in self.failed])
        schema = {
            "type": "object",
            "properties": {
                "candidate": {"type": "string", "enum": names},
                "reason": {"type": "string"},
            },
            "required": ["candidate", "reason"],
        }
        question = (
            f"{self.task}\n\nThe proposer ({failed}) failed. Elect the member who should write "
            f"the next proposal. Candidates: {', '.join(names)}."
        )
        ask = 'Name one candidate. Reply as JSON: {"candidate": ..., "reason": ...}.'

        async def cast(index: int, member: str) -> str | None:
            key = f"{self.key}/term-{term}/elect-{index}"

            async def work() -> StepDone:
                history = [{"role": "user", "content": question}]
                try:
                    reply, name = await self.ctx.agent_turn(
                        key,
                        member,
                        history,
                        instructions=ask,
                        response_schema=schema,
                        role="elector",
                    )
                except (LeaseLost, SpendRefused):
                    raise
                except Exception as exc:
                    voter = await self.name(member)
                    note = {"term": term, "voter": voter, "error": _failure(exc)}
                    note.update(self.envelope(term, voter, self.node.id, "election"))
                    return StepDone(None, events=[EventDraft("election", note, key)])
                answer = reply.text
                try:
                    parsed = json.loads(answer)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and "candidate" in parsed:
                    answer = as_text(parsed.get("candidate"))
                chosen = pick_named(answer, names)
                picked = candidates[names.index(chosen)] if chosen is not None else None
                note = {"term": term, "voter": name, "candidate": chosen}
                note.update(self.envelope(term, name, self.node.id, "election"))
                return reply_done(reply, picked, [EventDraft("election", note, key)])

            return (await self.ctx.step(key, self.node, None, work)).output

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(cast(index, member))
                    for index, member in enumerate(self.members)
                    if member not in self.failed
                ]
        except BaseExceptionGroup as grouped:
            raise grouped.exceptions[0] from None
        picks = [task.result() for task in tasks]
        return dict(Counter(pick for pick in picks if pick is not None))

    # The node's own record

    async def finish(self, term: int, proposal: dict[str, Any], *, committed: bool) -> NodeResult:
        text = proposal["proposal"]
        decision = {
            "node_id": self.node.id,
            "committed": committed,
            "term": term,
            "proposer": proposal["proposer"],
            "proposal": text,
            "needed": self.config.needed(),
            "members": len(self.members),
            "log": self.log,
        }
        done = StepDone(
            text,
            variables=output_update(self.config, text),
            events=[
                *self.notes,
                EventDraft(
                    "consensus", {**decision, **self.envelope(term, self.node.id, None)}, self.key
                ),
            ],
        )

        async def work() -> StepDone:
            return done

        record = await self.ctx.step(self.key, self.node, None, work)
        return NodeResult(record.output, record.branch)


@executor("consensus")
async def run_consensus(ctx: RunContext, node: ParsedNode, scope: Scope) -> NodeResult:
    return await _Consensus(ctx, node, scope).run()
