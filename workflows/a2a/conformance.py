"""The built-in conformance agent (A2A_CONFORMANCE_AGENT): see ConformanceHandler."""

from __future__ import annotations

from a2a.types.a2a_pb2 import AgentCard

from workflows.a2a.card import agent_card
from workflows.a2a.handler import WorkflowAgentHandler


def conformance_card(url: str) -> AgentCard:
    return agent_card(
        url=url,
        name="A2A Studio conformance agent",
        description="Follows the A2A conformance kit's messageId prefixes.",
        version=1,
        skills=[{"id": "tck", "name": "Conformance", "description": "The kit's scenarios."}],
        organization="A2A Studio",
        provider_url=url,
    )


class ConformanceHandler(WorkflowAgentHandler):
    pass
