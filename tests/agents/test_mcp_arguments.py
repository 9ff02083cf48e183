"""A tool's arguments form from its JSON schema, the typed arguments read back from it, and the
headers an MCP server is saved with."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from agents.mcp.arguments import argument_fields, arguments_read
from agents.mcp.services import mcp_headers_parse
from agents.mcp.tools import mcp_tool_name

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "title": "City"},
        "days": {"type": "integer", "default": 3},
        "ratio": {"type": "number"},
        "metric": {"type": "boolean"},
        "unit": {"enum": ["c", "f"]},
        "filters": {"type": "object", "description": "Extra filters"},
    },
    "required": ["city", "ratio"],
}


def test_each_schema_type_gets_its_input() -> None:
    fields = {field.name: field for field in argument_fields(SCHEMA)}

    assert {name: field.kind for name, field in fields.items()} == {
        "city": "string",
        "days": "integer",
        "ratio": "number",
        "metric": "boolean",
        "unit": "enum",
        "filters": "json",
    }
    assert fields["city"].required and not fields["days"].required
    assert fields["city"].description == ""  # a title that repeats the name adds nothing
    assert fields["days"].placeholder == "default: 3"
    assert fields["filters"].description == "Extra filters"


def test_the_form_reads_back_typed_arguments_and_leaves_out_empty_ones() -> None:
    fields = argument_fields(SCHEMA)
    arguments, ok = arguments_read(
        fields,
        {
            "arg.city": "Paris",
            "arg.days": "",
            "arg.ratio": "2.0",
            "arg.metric": "on",
            "arg.unit": "c",
            "arg.filters": '{"rain": true}',
        },
    )

    assert ok
    assert arguments == {
        "city": "Paris",
        "ratio": 2,
        "metric": True,
        "unit": "c",
        "filters": {"rain": True},
    }


def test_bad_values_are_marked_on_their_fields() -> None:
    fields = argument_fields(SCHEMA)
    _, ok = arguments_read(fields, {"arg.days": "three", "arg.filters": "{nope"})

    errors = {field.name: field.error for field in fields if field.error}
    assert not ok
    assert errors == {
        "city": "Required.",
        "ratio": "Required.",
        "days": "Enter a whole number.",
        "filters": "Enter JSON.",
    }


def test_headers_are_name_value_lines_and_a_bearer_token() -> None:
    headers = mcp_headers_parse("X-Api-Key: k1\n\nX-Team:  blue ", bearer=" t0k ")

    assert headers == {"X-Api-Key": "k1", "X-Team": "blue", "Authorization": "Bearer t0k"}
    with pytest.raises(ValidationError, match="Line 1"):
        mcp_headers_parse("no colon here")


def test_tool_names_fit_what_models_accept() -> None:
    assert mcp_tool_name("docs", "search.pages/v2") == "mcp_docs__search_pages_v2"
    assert len(mcp_tool_name("docs", "x" * 100)) == 64
