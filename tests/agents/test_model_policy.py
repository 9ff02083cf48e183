"""Model policies: rules and a classifier choose each turn's model; the agent form edits them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from pydantic import ValidationError

from agents.config import ModelChoice, ModelPolicy, agent_config_load
from agents.model_policy import (
    classifier_choose,
    classifier_verdict,
    policy_input,
    rules_choose,
)
from agents.models import Agent
from tests.agents.factories import make_provider
from tests.agents.test_agents import _form
from tests.conftest import Personas

SMALL = ModelChoice(provider_id="local", model="llama3.2")
LARGE = {"provider_id": "hosted", "model": "gpt-4o"}


def policy(*rules: dict[str, Any]) -> ModelPolicy:
    return ModelPolicy.model_validate({"kind": "rules", "rules": list(rules)})


def choose(p: ModelPolicy, text: str = "hi", role: str = "", **variables: Any) -> str:
    chosen = rules_choose(p, SMALL, text=text, variables=variables, role=role, node_type="agent")
    return f"{chosen.model.model} | {chosen.reason}"


def test_the_first_rule_that_holds_chooses_and_says_why() -> None:
    p = policy(
        {"when": "input_longer_than", "value": 20, "use": LARGE},
        {"when": "input_contains", "value": "contract", "use": {**LARGE, "model": "o3"}},
    )
    assert choose(p, "x" * 21) == ("gpt-4o | rule 1 (input longer than 20 characters) → gpt-4o")
    assert choose(p, "Review the Contract") == "o3 | rule 2 (input contains “contract”) → o3"
    assert choose(p, "short") == "llama3.2 | no rule held → llama3.2"


def test_rules_read_variables_and_the_role_in_the_node() -> None:
    p = policy(
        {"when": "variable_equals", "variable": "tier", "value": "premium", "use": LARGE},
        {"when": "role_is", "value": "proposer", "use": {**LARGE, "model": "o3"}},
    )
    assert choose(p, tier="premium").startswith("gpt-4o | rule 1 (tier = premium)")
    assert choose(p, tier="free").startswith("llama3.2")
    assert choose(p, role="proposer").startswith("o3 | rule 2 (role is proposer)")
    assert choose(p, role="member").startswith("llama3.2")
    # The node type counts as a role too, so a policy can single out routers or votes.
    assert policy({"when": "role_is", "value": "agent", "use": LARGE}).rules[0].value == "agent"
    assert choose(policy({"when": "role_is", "value": "agent", "use": LARGE})).startswith("gpt-4o")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"when": "input_longer_than", "value": "long"}, "needs a number of characters"),
        ({"when": "input_contains", "value": " "}, "needs a text value"),
        ({"when": "variable_equals", "value": "x"}, "a variable is named by"),
        ({"when": "role_is", "value": "x", "variable": "tier"}, "a variable is named by"),
        ({"when": "weather_is", "value": "x"}, "input_longer_than"),
    ],
)
def test_a_rule_that_cannot_hold_is_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        policy({**rule, "use": LARGE})


def test_a_classifier_policy_needs_both_of_its_models() -> None:
    with pytest.raises(ValidationError, match="needs a classifier model and a complex model"):
        ModelPolicy.model_validate({"kind": "classifier", "classifier": LARGE})
    with pytest.raises(ValidationError, match="needs at least one rule"):
        ModelPolicy.model_validate({"kind": "rules"})


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [("complex", "complex"), ("Simple.", "simple"), ("simple or complex", None), ("?", None)],
)
def test_the_classifier_answer_is_one_word(answer: str, verdict: str | None) -> None:
    assert classifier_verdict(answer) == verdict


def test_a_classifier_that_fails_or_dithers_leaves_the_agents_model() -> None:
    config = agent_config_load(
        {
            "role": "a helper",
            "model": SMALL.model_dump(),
            "model_policy": {
                "kind": "classifier",
                "classifier": {"provider_id": "local", "model": "tiny"},
                "complex_model": LARGE,
            },
        }
    )
    assert classifier_choose(config, "COMPLEX").reason == "classifier: complex → gpt-4o"
    assert classifier_choose(config, "simple").model == SMALL
    assert classifier_choose(config, "hmm").reason == "classifier answered neither → llama3.2"
    failed = classifier_choose(config, None, error="timed out")
    assert failed.reason == "classifier failed (timed out) → llama3.2"


def test_the_input_is_every_messages_text() -> None:
    history = [
        {"role": "user", "content": "Plan"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "the trip"}]},
    ]
    assert policy_input(history) == "Plan\nthe trip"


@pytest.mark.django_db
def test_the_agent_form_saves_a_policy_naming_providers_by_name(
    personas: Personas, client_for: Any
) -> None:
    local = make_provider(personas.workspace, name="Local")
    hosted = make_provider(personas.workspace, name="Hosted")
    rules = [
        {
            "when": "input_longer_than",
            "value": 2000,
            "use": {"provider": "hosted", "model": "demo-fast"},
        }
    ]
    client = client_for(personas.editor)
    response = client.post(
        reverse("agent_create"),
        _form(str(local.pk), policy_kind="rules", policy_rules=json.dumps(rules)),
    )
    agent = Agent.objects.get(name="Analyst")
    assert response.status_code == 302
    config = agent_config_load(agent.versions.get().config)
    assert config.model_policy is not None
    assert config.model_policy.rules[0].use.provider_id == str(hosted.pk)
    # The edit form shows the rule as written, with the provider's name.
    page = client.get(reverse("agent_edit", args=[agent.pk])).content.decode()
    assert "&quot;provider&quot;: &quot;Hosted&quot;" in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "policy_rules": '[{"when": "input_longer_than", "value": 5, "use": '
                '{"provider": "Nowhere", "model": "x"}}]'
            },
            "Rule 1: no provider named “Nowhere” in this workspace.",
        ),
        (
            {
                "policy_rules": '[{"when": "input_longer_than", "value": "long", "use": '
                '{"provider": "Local", "model": "x"}}]'
            },
            "Rule 1: &#x27;input_longer_than&#x27; needs a number of characters as its value",
        ),
        ({"policy_rules": "[1"}, "The rules is not valid JSON"),
        ({"policy_kind": "classifier"}, "needs a classifier model and a complex model"),
    ],
)
def test_a_policy_that_cannot_work_is_explained_on_its_field(
    personas: Personas, client_for: Any, fields: dict[str, str], message: str
) -> None:
    local = make_provider(personas.workspace, name="Local")
    data = _form(str(local.pk), **{"policy_kind": "rules", **fields})
    response = client_for(personas.editor).post(reverse("agent_create"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Agent.objects.exists()
