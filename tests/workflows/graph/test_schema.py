"""The graph document: its shape, its versions, its round trip, and run inputs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.graph import (
    GRAPH_SCHEMA_VERSION,
    UPGRADES,
    Graph,
    GraphError,
    InputError,
    InputField,
    InputSchema,
    Variable,
    graph_dump,
    graph_load,
    graph_upgrade,
)
from workflows.graph.examples import parallel_research, research_pipeline

LEGACY = {
    "nodes": [
        {"id": "in", "kind": "start"},
        {"id": "pick", "kind": "router", "config": {"routes": ["a"], "mode": "llm"}},
        {"id": "out", "kind": "end"},
    ],
    "edges": [
        {"from": "in", "to": "pick"},
        {"from": "pick", "to": "out", "branch": "a"},
    ],
}


def test_a_minimal_graph_loads_with_every_default_filled_in():
    graph = graph_load({"nodes": [{"id": "s", "type": "start"}], "schema_version": 1})

    assert graph.schema_version == GRAPH_SCHEMA_VERSION == 1
    assert graph.nodes[0].label == ""
    assert (graph.nodes[0].position.x, graph.nodes[0].position.y) == (0.0, 0.0)
    assert graph.edges == [] and graph.variables == [] and graph.inputs.fields == []
    assert graph.settings.max_steps == 200
    assert graph.settings.timeout_s == 3600
    assert graph.settings.budget_action == "stop"


def test_a_legacy_unversioned_graph_is_upgraded_to_version_1():
    upgraded = graph_upgrade(copy.deepcopy(LEGACY))

    assert upgraded["schema_version"] == 1
    assert [node["type"] for node in upgraded["nodes"]] == ["start", "router", "end"]
    assert all("kind" not in node for node in upgraded["nodes"])
    assert upgraded["edges"] == [
        {"source": "in", "target": "pick", "id": "edge-1"},
        {"source": "pick", "target": "out", "source_handle": "a", "id": "edge-2"},
    ]
    graph = graph_load(copy.deepcopy(LEGACY))
    assert graph.edges[1].source_handle == "a"


def test_upgrading_does_not_change_the_callers_document():
    original = copy.deepcopy(LEGACY)

    graph_upgrade(original)

    assert original == LEGACY


def test_a_current_document_passes_through_the_upgrade_unchanged():
    document = research_pipeline("r", "a", "w")

    assert graph_upgrade(document) == document
    assert UPGRADES[0] is not None and max(UPGRADES) + 1 == GRAPH_SCHEMA_VERSION


def test_a_graph_from_a_newer_release_is_refused_with_a_clear_error():
    with pytest.raises(GraphError) as caught:
        graph_load({"schema_version": 7, "nodes": []})

    [issue] = caught.value.issues
    assert issue.code == "schema_version_unsupported"
    assert issue.field == "schema_version"
    assert "newer A2A Studio (schema 7" in issue.message


@pytest.mark.parametrize("version", ["1", 1.0, True, None, -1])
def test_a_malformed_or_impossible_version_is_refused(version: Any):
    with pytest.raises(GraphError) as caught:
        graph_upgrade({"schema_version": version})

    assert caught.value.issues[0].code in {"schema_version_invalid", "schema_version_unsupported"}


def test_load_refuses_a_non_object():
    with pytest.raises(GraphError) as caught:
        graph_load([1, 2])

    assert caught.value.issues[0].code == "not_an_object"


def test_a_typo_in_a_node_is_reported_on_that_node():
    document = research_pipeline("r", "a", "w")
    document["nodes"][2]["lable"] = "Analysis"

    with pytest.raises(GraphError) as caught:
        graph_load(document)

    [issue] = caught.value.issues
    assert (issue.code, issue.node_id, issue.field) == ("unknown_field", "analysis", "lable")
    assert issue.message == "Node 'analysis': field 'lable': unknown field (a typo?)"


def test_a_bad_edge_field_is_reported_on_that_edge_and_a_bad_id_by_position():
    document = research_pipeline("r", "a", "w")
    document["edges"][0]["source_handle"] = ""
    document["nodes"][1]["id"] = "has spaces"

    with pytest.raises(GraphError) as caught:
        graph_load(document)

    issues = {
        (issue.code, issue.node_id, issue.edge_id, issue.field) for issue in caught.value.issues
    }
    assert issues == {
        ("invalid_field", None, None, "nodes[1].id"),
        ("invalid_field", None, "start--research", "source_handle"),
    }


def test_round_trip_is_idempotent_and_keeps_field_order():
    first = graph_dump(graph_load(parallel_research("a", "b", "c")))

    assert graph_dump(graph_load(first)) == first
    assert list(first) == [
        "schema_version",
        "nodes",
        "edges",
        "variables",
        "inputs",
        "output",
        "settings",
    ]
    assert list(first["nodes"][0]) == ["id", "type", "label", "position", "config"]


def test_not_a_number_cannot_enter_a_graph():
    with pytest.raises(GraphError) as caught:
        graph_load({"nodes": [{"id": "s", "type": "start", "position": {"x": float("nan")}}]})

    assert caught.value.issues[0].field == "position.x"


@pytest.mark.parametrize(
    ("variable_type", "reducer", "ok"),
    [
        ("array", "append", True),
        ("string", "append", False),
        ("object", "merge", True),
        ("array", "merge", False),
        ("integer", "replace", True),
    ],
)
def test_a_reducer_must_fit_the_variable_type(variable_type: str, reducer: str, ok: bool):
    data = {"name": "notes", "type": variable_type, "reducer": reducer}
    if ok:
        assert Variable.model_validate(data).reducer == reducer
    else:
        with pytest.raises(ValidationError, match=f"reducer '{reducer}' needs type"):
            Variable.model_validate(data)


def test_a_variable_name_must_be_an_identifier():
    with pytest.raises(ValidationError):
        Variable.model_validate({"name": "2nd-draft", "type": "string"})


RUN_FORM = InputSchema(
    fields=[
        InputField(name="topic", type="text"),
        InputField(name="pages", type="integer"),
        InputField(name="temperature", type="number", required=False),
        InputField(name="cite", type="boolean"),
        InputField(name="tone", type="choice", choices=["formal", "casual"], default="formal"),
        InputField(name="extra", type="json", required=False),
    ]
)


def test_form_strings_are_coerced_to_the_declared_types():
    values = RUN_FORM.validate_inputs(
        {"topic": "bees", "pages": "42", "temperature": "0.5", "cite": "on", "extra": '{"a": [1]}'}
    )

    assert values == {
        "topic": "bees",
        "pages": 42,
        "temperature": 0.5,
        "cite": True,
        "tone": "formal",
        "extra": {"a": [1]},
    }


def test_api_values_pass_through_and_an_unticked_box_is_false():
    values = RUN_FORM.validate_inputs({"topic": "bees", "pages": 3, "extra": [1, 2]})

    assert values["pages"] == 3 and values["cite"] is False
    assert values["temperature"] is None and values["extra"] == [1, 2]


def test_every_bad_input_is_reported_at_once():
    with pytest.raises(InputError) as caught:
        RUN_FORM.validate_inputs(
            {
                "topic": "",
                "pages": "4.5",
                "temperature": "warm",
                "cite": "maybe",
                "tone": "angry",
                "extra": "{nope",
                "colour": "red",
            }
        )

    errors = caught.value.errors
    assert errors["topic"] == "This field is required."
    assert errors["pages"] == "Enter a whole number."
    assert errors["temperature"] == "Enter a number."
    assert errors["cite"] == "Enter true or false."
    assert errors["tone"] == "Choose one of: formal, casual."
    assert errors["extra"].startswith("Enter valid JSON")
    assert errors["colour"] == "Unknown input."
    assert len(errors) == 7


def test_unknown_inputs_can_be_allowed_for_form_data():
    values = RUN_FORM.validate_inputs(
        {"topic": "t", "pages": "1", "csrfmiddlewaretoken": "x"}, allow_unknown=True
    )

    assert "csrfmiddlewaretoken" not in values


@pytest.mark.parametrize("value", [True, float("inf"), "1e400", [1]])
def test_numbers_refuse_booleans_infinities_and_lists(value: Any):
    with pytest.raises(ValueError):
        InputField(name="n", type="number").coerce(value)


def test_an_input_field_is_checked_for_consistency():
    with pytest.raises(ValidationError, match="needs at least one choice"):
        InputField(name="tone", type="choice")
    with pytest.raises(ValidationError, match="default does not fit the field: Enter a whole"):
        InputField(name="pages", type="integer", default="many")
    with pytest.raises(ValidationError, match="input names must be unique; repeated: a"):
        InputSchema(fields=[InputField(name="a"), InputField(name="a")])


def test_a_graph_model_refuses_an_un_upgraded_version():
    with pytest.raises(ValidationError, match="run graph_upgrade"):
        Graph.model_validate({"schema_version": 0})
