"""A workflow's inputs and variables as the builder edits them: checked row by row, and the start
node's mapping kept in step with renames, removals and new inputs."""

from __future__ import annotations

import pytest

from workflows.graph import graph_validate
from workflows.graph.interface import InterfaceError, interface_apply
from workflows.services.workflows import BLANK_GRAPH


def test_renaming_task_to_topic_keeps_the_start_node_mapping_valid() -> None:
    interface = interface_apply(
        BLANK_GRAPH,
        inputs=[{"name": "topic", "type": "string", "label": "Topic", "default": "octopuses"}],
        variables=[{"name": "task", "type": "string"}],
        renames={"task": "topic"},
    )

    assert interface.inputs["fields"][0]["name"] == "topic"
    assert interface.start_configs == {"start": {"input_mapping": {"topic": "task"}}}
    graph = {
        **BLANK_GRAPH,
        "inputs": interface.inputs,
        "variables": interface.variables,
        "nodes": [
            {**node, "config": interface.start_configs.get(node["id"], node.get("config", {}))}
            for node in BLANK_GRAPH["nodes"]
        ],
    }
    codes = {issue.code for issue in graph_validate(graph).errors}
    assert "unknown_input" not in codes and "unknown_variable" not in codes


def test_a_new_input_is_mapped_to_a_new_variable_of_its_name() -> None:
    interface = interface_apply(
        BLANK_GRAPH,
        inputs=[
            {"name": "task", "type": "text"},
            {"name": "depth", "type": "integer", "default": "3", "required": False},
        ],
        variables=[{"name": "task", "type": "string"}],
    )

    assert interface.inputs["fields"][1]["default"] == 3
    assert interface.start_configs["start"]["input_mapping"] == {"task": "task", "depth": "depth"}
    assert interface.variables[-1]["name"] == "depth"
    assert interface.variables[-1]["type"] == "integer"


def test_a_removed_input_leaves_the_mapping() -> None:
    interface = interface_apply(BLANK_GRAPH, inputs=[], variables=[])

    assert interface.start_configs == {"start": {"input_mapping": {}}}


def test_each_bad_field_is_named_on_its_row() -> None:
    with pytest.raises(InterfaceError) as raised:
        interface_apply(
            BLANK_GRAPH,
            inputs=[
                {"name": "2fast", "type": "string"},
                {"name": "level", "type": "choice", "choices": []},
                {"name": "count", "type": "integer", "default": "many"},
                {"name": "level", "type": "string"},
            ],
            variables=[
                {"name": "notes", "type": "string", "reducer": "append"},
                {"name": "score", "type": "number", "default": "high"},
            ],
        )

    errors = raised.value.errors
    assert "starting with a letter" in errors[("input", 0)]["name"]
    assert "choice" in errors[("input", 1)]["choices"]
    assert "whole number" in errors[("input", 2)]["default"]
    assert "already called 'level'" in errors[("input", 3)]["name"]
    assert "needs type 'array'" in errors[("variable", 0)]["reducer"]
    assert "type 'number'" in errors[("variable", 1)]["default"]
