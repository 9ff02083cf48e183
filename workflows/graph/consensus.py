"""The consensus node's config: a proposer proposes, members accept or reject, a quorum commits.

Registered here rather than in `nodes.py`, as the registry invites; the package imports this
module, so every reader of `NODE_TYPES` sees it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from workflows.graph.nodes import (
    AgentId,
    NodeConfig,
    NodeType,
    Reference,
    Template,
    VariableName,
    check_template,
    register_node_type,
)

# The member with the most acceptances so far, or a ballot of the members.
ELECTIONS = ("most_acceptances", "vote")


class ConsensusConfig(NodeConfig):
    proposer_agent_id: AgentId
    members: list[AgentId] = Field(min_length=1, max_length=20)
    # What to agree on; the proposer's first request.
    task: Template = Field(default="{{ input }}", min_length=1)
    quorum: Literal["majority", "unanimous", "k_of_n"] = "majority"
    k: int | None = Field(default=None, ge=1)
    # A term is one proposal and its ballot; a rejected proposal is revised in the next term.
    max_terms: int = Field(default=3, ge=1, le=10)
    # A proposal not written within this many seconds counts as the proposer failing.
    proposer_timeout_s: int | None = Field(default=None, ge=1, le=3600)
    election: Literal["most_acceptances", "vote"] = "most_acceptances"
    # No commit after max_terms: fail the node (its error policy decides) or hand on the last
    # proposal, marked as not agreed in the decision log.
    on_no_consensus: Literal["fail", "last_proposal"] = "fail"
    output_variable: VariableName | None = None

    @field_validator("members")
    @classmethod
    def _members(cls, value: Any) -> Any:
        if len(set(value)) != len(value):
            raise ValueError("lists each member once")
        return value

    @field_validator("task")
    @classmethod
    def _task(cls, value: Any) -> Any:
        return check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> ConsensusConfig:
        if self.quorum == "k_of_n":
            if self.k is None:
                raise ValueError("quorum 'k_of_n' needs k")
            if self.k > len(self.members):
                raise ValueError(f"k is {self.k} but there are only {len(self.members)} members")
        elif self.k is not None:
            raise ValueError("k only applies to quorum 'k_of_n'")
        if self.proposer_agent_id in self.members:
            raise ValueError(
                "the proposer is not also a member: members judge its proposals "
                "(a member becomes proposer only when elected)"
            )
        return self

    def needed(self) -> int:
        """Acceptances a proposal needs to be committed."""
        total = len(self.members)
        if self.quorum == "majority":
            return total // 2 + 1
        if self.quorum == "unanimous":
            return total
        return self.k or total

    def references(self) -> list[Reference]:
        found = [Reference("agent", self.proposer_agent_id, "config.proposer_agent_id")]
        found += [
            Reference("agent", member, f"config.members[{index}]")
            for index, member in enumerate(self.members)
        ]
        if self.output_variable is not None:
            found.append(Reference("variable", self.output_variable, "config.output_variable"))
        return found


register_node_type(
    NodeType(
        "consensus",
        "Consensus",
        "Teams",
        "A proposer proposes, members accept or reject; a quorum commits, else it revises.",
        ConsensusConfig,
        default_config={"proposer_agent_id": "", "members": []},
    )
)
