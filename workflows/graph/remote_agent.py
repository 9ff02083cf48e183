"""The "Remote agent (A2A)" node's config: one task on another system's A2A agent.

Registered here rather than in `nodes.py`, as the registry invites. The URL is the agent's base
URL (its card is at `<url>/.well-known/agent-card.json`); the outbound URL policy applies when
the card is fetched and when the node runs, not here, so a graph stays valid while a host is
down. A credential is a saved remote agent of the workspace (`agents.models.RemoteAgent`),
named by id and sent only to the origin it was saved with.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from workflows.graph.nodes import (
    NodeConfig,
    NodeType,
    Reference,
    Template,
    VariableName,
    check_template,
    register_node_type,
)

CARD_PATH = "/.well-known/agent-card.json"
# When the remote agent asks for input: a person answers in this run, a fixed text answers,
# or the node hands the question to its "input_required" branch and the next visit answers.
INPUT_REQUIRED_POLICIES = ("ask_person", "fixed_answer", "next_node")


def remote_base_url(url: str) -> str:
    """The agent's base URL: a pasted card URL or a trailing slash is taken off."""
    url = url.strip()
    if url.endswith(CARD_PATH):
        url = url[: -len(CARD_PATH)]
    return url.rstrip("/")


class RemoteAgentConfig(NodeConfig):
    url: str = Field(min_length=1, max_length=500)
    # A saved remote agent of the workspace whose credential the call carries; None: none.
    remote_agent_id: str | None = Field(default=None, min_length=1, max_length=64)
    skill_id: str | None = Field(default=None, min_length=1, max_length=200)
    input_template: Template = "{{ input }}"
    on_input_required: Literal["ask_person", "fixed_answer", "next_node"] = "ask_person"
    fixed_answer: Template | None = Field(default=None, min_length=1)
    # How many times the remote agent may ask before the node gives up.
    max_input_rounds: int = Field(default=3, ge=1, le=20)
    # Seconds one call may take (the run's own time limit applies as well).
    timeout_s: int | None = Field(default=None, ge=1, le=24 * 3600)
    output_variable: VariableName | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("give the agent's http(s) URL, e.g. https://agents.example.com/travel")
        return remote_base_url(value)

    @field_validator("input_template", "fixed_answer")
    @classmethod
    def _templates(cls, value: Any) -> Any:
        return check_template(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> RemoteAgentConfig:
        if self.on_input_required == "fixed_answer" and not self.fixed_answer:
            raise ValueError("on_input_required 'fixed_answer' needs the fixed_answer text")
        if self.on_input_required != "fixed_answer" and self.fixed_answer:
            raise ValueError("fixed_answer only applies to on_input_required 'fixed_answer'")
        return self

    def branches(self) -> list[str] | None:
        return ["done", "input_required"] if self.on_input_required == "next_node" else None

    def references(self) -> list[Reference]:
        if self.output_variable is None:
            return []
        return [Reference("variable", self.output_variable, "config.output_variable")]


register_node_type(
    NodeType(
        "remote_agent",
        "Remote agent (A2A)",
        "Agents",
        "Sends the step's input to another system's A2A agent and hands on its answer.",
        RemoteAgentConfig,
        default_config={"url": ""},
    )
)
