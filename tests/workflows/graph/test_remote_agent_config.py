"""The remote agent node's config: what the builder and the API accept, and what they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.graph.remote_agent import RemoteAgentConfig


def test_the_url_is_kept_as_the_agents_base_url() -> None:
    pasted = "https://agents.example.com/travel/.well-known/agent-card.json"
    assert RemoteAgentConfig(url=pasted).url == "https://agents.example.com/travel"
    assert RemoteAgentConfig(url="https://a.example/x/").url == "https://a.example/x"


@pytest.mark.parametrize("url", ["", "agents.example.com", "ftp://a.example", "https://"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        RemoteAgentConfig(url=url)


def test_who_answers_its_questions_is_consistent() -> None:
    with pytest.raises(ValidationError, match="needs the fixed_answer"):
        RemoteAgentConfig(url="https://a.example", on_input_required="fixed_answer")
    with pytest.raises(ValidationError, match="only applies"):
        RemoteAgentConfig(url="https://a.example", fixed_answer="yes")
    handed = RemoteAgentConfig(url="https://a.example", on_input_required="next_node")
    assert handed.branches() == ["done", "input_required"]
    assert RemoteAgentConfig(url="https://a.example").branches() is None
