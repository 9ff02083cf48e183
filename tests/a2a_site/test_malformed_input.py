"""Malformed input gets a 4xx in the endpoint's own format, never a 500.

Three layers: the shared parser (`a2a_site.json_input`) on its own; one regression test for each
request that once answered 500 or Django's bare 400 page; and a property-based fuzz over every
view of the URLconf (the table of `test_url_permissions`), which posts forms, raw bodies, uploads
and query strings made of deep nesting, wrong types, invalid UTF-8, huge numbers, NUL characters
and impossible dates, and asserts that nothing answers 5xx.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import resolve, reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from a2a_site.json_input import MAX_DEPTH, JsonInputError, json_depth, json_parse
from tests.a2a_site.test_url_permissions import TABLE
from tests.agents.factories import make_agent
from tests.conftest import Personas
from workflows.models import Workflow
from workflows.services.workflows import BLANK_GRAPH, workflow_create, workflow_publish

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 3000 + "1" + "}" * 3000
HTMX = {"HTTP_HX_REQUEST": "true"}

# A workflow whose run form has a field of every input type.
TYPED_GRAPH: dict[str, Any] = {
    **BLANK_GRAPH,
    "edges": [{"id": "e1", "source": "start", "target": "end"}],
    "inputs": {
        "fields": [
            {"name": "task", "type": "text"},
            {"name": "count", "type": "integer", "required": False},
            {"name": "ratio", "type": "number", "required": False},
            {"name": "flag", "type": "boolean", "required": False},
            {"name": "pick", "type": "choice", "choices": ["a", "b"], "required": False},
            {"name": "data", "type": "json", "required": False},
        ]
    },
}


def typed_workflow(personas: Personas) -> Workflow:
    workflow = workflow_create(
        workspace=personas.workspace, user=personas.owner, name="Typed", graph=TYPED_GRAPH
    )
    workflow_publish(workflow=workflow, user=personas.owner)
    return workflow


def refusal_text(response: Any) -> str:
    """The message of a refusal, whatever its format."""
    if response["Content-Type"].startswith("application/json"):
        return str(response.json()["error"])
    return response.content.decode()


# --- the parser -------------------------------------------------------------------------------


def test_depth_is_counted_without_recursion_and_ignores_brackets_in_strings() -> None:
    assert json_depth("1") == 0
    assert json_depth('{"a": [1, {"b": "[[[[{{"}]}') == 3
    assert json_depth('["\\"[[[", ["]"]]') == 2
    assert json_depth("[" * 200_000) == 200_000


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (DEEP, "more than 64 levels"),
        (DEEP_OBJECT, "more than 64 levels"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "more than 64 levels"),
        ("NaN", "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ("[1e999]", "too large"),
        ("9" * 5000, "more than 100 digits"),
        ('{"a": "x\\u0000"}', "NUL"),
        ('{"\\ud800": 1}', "lone surrogate"),
        ("", "empty"),
        ("{oops", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("null", "must be a JSON object"),
    ],
)
def test_the_parser_refuses_with_a_reason(data: Any, says: str) -> None:
    with pytest.raises(JsonInputError, match=says):
        json_parse(data, expect=dict)


def test_the_parser_accepts_what_json_allows() -> None:
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert json_parse(nested, expect=list)
    assert json_parse('{"emoji": "\\ud83d\\ude00", "n": 1e300, "i": -12}') == {
        "emoji": "😀",
        "n": 1e300,
        "i": -12,
    }


# --- the requests that once answered 500 -------------------------------------------------------


@pytest.fixture
def workflow(personas: Personas) -> Workflow:
    return typed_workflow(personas)


@pytest.fixture
def owner(personas: Personas, client_for: Any) -> Client:
    return client_for(personas.owner)


def test_run_api_refuses_deep_nesting_and_invalid_utf8_as_json(
    owner: Client, workflow: Workflow
) -> None:
    url = reverse("workflow_run_api", args=[workflow.pk])
    for body, says in (
        ('{"inputs": ' + DEEP + "}", "levels deep"),
        (b'{"inputs": {"task": "\xc3\x28"}}', "not UTF-8"),
        ('{"inputs": {"task": "a\\u0000"}}', "NUL"),
        ('{"inputs": {"task": "x", "ratio": 1e999}}', "too large"),
    ):
        response = owner.post(url, body, content_type="application/json")
        assert response.status_code == 400, body
        assert says in response.json()["error"]
    assert not workflow.runs.exists()


def test_run_api_says_a_form_is_not_json(owner: Client, workflow: Workflow) -> None:
    response = owner.post(reverse("workflow_run_api", args=[workflow.pk]), {"inputs": "x"})
    assert response.status_code == 400
    assert "Content-Type: application/json" in response.json()["error"]


@pytest.mark.parametrize("name", ["workflow_draft_save", "workflow_publish"])
@pytest.mark.parametrize(
    ("graph", "says"),
    [
        (DEEP, "levels deep"),
        ("null", "must be a JSON object"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_draft_save_and_publish_refuse_a_bad_graph_with_a_partial(
    owner: Client, workflow: Workflow, name: str, graph: str, says: str
) -> None:
    draft = Workflow.objects.get(pk=workflow.pk).draft
    response = owner.post(reverse(name, args=[workflow.pk]), {"graph": graph}, **HTMX)
    assert response.status_code == 400
    assert 'data-testid="refusal"' in response.content.decode()
    assert says in response.content.decode()
    assert Workflow.objects.get(pk=workflow.pk).draft == draft


@pytest.mark.parametrize("base", ["2026-99-99T99:99:99", "yesterday", "2026-01-01T10:00:00"])
def test_draft_save_refuses_a_base_that_is_no_moment(
    owner: Client, workflow: Workflow, base: str
) -> None:
    response = owner.post(
        reverse("workflow_draft_save", args=[workflow.pk]),
        {"graph": json.dumps(BLANK_GRAPH), "base": base},
        **HTMX,
    )
    assert response.status_code == 400
    assert "not a date-time with its time zone" in response.content.decode()


def test_node_form_refuses_a_deep_node(owner: Client, workflow: Workflow) -> None:
    node = '{"id": "a", "type": "agent", "config": ' + DEEP + "}"
    response = owner.post(reverse("workflow_node_form", args=[workflow.pk]), {"node": node}, **HTMX)
    assert response.status_code == 400
    assert "levels deep" in response.content.decode()


def test_node_form_refuses_a_deep_json_field(owner: Client, workflow: Workflow) -> None:
    """A field of the node's form that takes JSON (a subworkflow's input mapping, a tool's
    arguments...) says the nesting is too deep, like any other invalid value."""
    node = {"id": "t", "type": "tool", "label": "Tool", "config": {"tool": "calculator"}}
    response = owner.post(
        reverse("workflow_node_form", args=[workflow.pk]),
        {"node": json.dumps(node), "apply": "1", "arguments": DEEP},
        **HTMX,
    )
    assert response.status_code < 500


def test_import_refuses_a_deep_file_as_json(owner: Client, workflow: Workflow) -> None:
    upload = SimpleUploadedFile("team.json", DEEP_OBJECT.encode(), "application/json")
    response = owner.post(reverse("workflow_import_graph", args=[workflow.pk]), {"file": upload})
    assert response.status_code == 400
    assert "levels deep" in response.json()["error"]


def test_playground_refuses_deep_nesting_as_json(owner: Client, personas: Personas) -> None:
    agent = make_agent(personas.workspace)
    response = owner.post(
        reverse("agent_playground_stream", args=[agent.pk]),
        '{"messages": ' + DEEP + "}",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "levels deep" in response.json()["error"]


@pytest.mark.parametrize("key", ["²", "٣", "99999999999999999999", "-1", "1.5"])
def test_diff_with_a_version_that_is_no_number_is_not_found(
    owner: Client, workflow: Workflow, key: str
) -> None:
    response = owner.get(reverse("workflow_diff", args=[workflow.pk]), {"from": key})
    assert response.status_code == 404


def test_a_number_too_long_for_the_database_in_a_path_is_not_found(
    owner: Client, workflow: Workflow
) -> None:
    url = reverse("workflow_version_json", args=[workflow.pk, 1])
    assert owner.get(url).status_code == 200
    assert owner.get(url.replace("/1.json", "/" + "9" * 30 + ".json")).status_code == 404


def test_a_draft_over_the_size_limit_gets_413_as_a_partial(
    owner: Client, workflow: Workflow
) -> None:
    nodes = [
        {"id": f"n{i}", "type": "agent", "label": f"Agent {i}", "position": {"x": i, "y": 0}}
        for i in range(50_000)
    ]
    graph = json.dumps({**BLANK_GRAPH, "nodes": nodes})
    response = owner.post(
        reverse("workflow_draft_save", args=[workflow.pk]),
        urlencode({"graph": graph}),
        content_type="application/x-www-form-urlencoded",
        **HTMX,
    )
    assert response.status_code == 413
    assert 'data-testid="refusal"' in response.content.decode()
    assert "larger than 2.6 MB" in response.content.decode()


def test_a_12_mb_body_gets_413_in_the_endpoints_format(owner: Client, workflow: Workflow) -> None:
    body = b'{"inputs": {"task": "' + b"x" * 12_000_000 + b'"}}'
    response = owner.post(
        reverse("workflow_run_api", args=[workflow.pk]), body, content_type="application/json"
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]

    page = owner.post(reverse("workflow_run", args=[workflow.pk]), {"task": "x" * 12_000_000})
    assert page.status_code == 413
    assert "Too much at once" in page.content.decode()


def test_too_many_fields_get_400_with_the_reason(owner: Client, workflow: Workflow) -> None:
    body = urlencode([(f"f{i}", "x") for i in range(2000)])
    response = owner.post(
        reverse("workflow_node_form", args=[workflow.pk]),
        body,
        content_type="application/x-www-form-urlencoded",
        **HTMX,
    )
    assert response.status_code == 400
    assert "more fields than this server accepts" in response.content.decode()


def test_nul_in_a_form_field_is_refused(owner: Client, workflow: Workflow) -> None:
    response = owner.post(reverse("workflow_publish", args=[workflow.pk]), {"note": "a\x00b"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert workflow.versions.count() == 1


# --- the fuzz ----------------------------------------------------------------------------------

# Field names the views and their forms read, and some they do not.
FIELDS = [
    "graph", "node", "base", "force", "note", "apply", "template", "name", "description",
    "step_key", "answer", "decision", "comment", "model", "role", "email", "username", "confirm",
    "base_url", "api_key", "priority", "max_parallel", "enabled", "labels_text", "kind",
    "next", "from", "to", "draft", "task", "count", "ratio", "flag", "pick", "data", "inputs",
    "messages", "password1", "password2", "new_password1", "new_password2", "old_password",
    "system_prompt", "temperature", "tools", "arguments", "label", "max_turns", "unknown",
    "confirm_name", "identifier", "q",
]  # fmt: skip

# What each endpoint reads, where a random pick from FIELDS would rarely hit it.
FIELDS_OF = {
    "workflow_draft_save": ["graph", "base", "force"],
    "workflow_publish": ["graph", "base", "force", "note"],
    "workflow_node_form": ["node", "apply", "label", "arguments"],
    "workflow_import_graph": ["graph"],  # sent as the file
    "workflow_template_graph": ["template"],
    "workflow_from_template": ["template"],
    "workflow_run": ["task", "count", "ratio", "flag", "pick", "data"],
    "workflow_run_api": ["inputs"],
    "workflow_diff": ["from", "to"],
    "workflow_export": ["draft"],
    "run_answer": ["step_key", "answer", "decision", "comment"],
    "node_pull": ["model"],
    "node_memory": ["memory_gb"],
    "monitoring_capacity": ["agents", "models", "parallel", "context"],
    "monitoring_capacity_apply": ["agents", "models", "parallel", "context"],
    "member_role": ["role"],
    "member_invite": ["identifier", "role"],
    "workspace_delete": ["confirm_name"],
}

# Tried first on every endpoint, in every field it reads: what once answered 500.
WORST = [
    [DEEP],
    ["9" * 5000],
    ["2026-99-99T99:99:99"],
    ["²", "null", '{"id": "n", "x": 1e999}', DEEP_OBJECT],
    ["a\x00b"],  # alone: the middleware refuses the whole request for it
]

NASTY = [
    DEEP,
    DEEP_OBJECT,
    "null",
    "[]",
    "{}",
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "9" * 5000,
    "99999999999999999999",
    "-1",
    "²",
    "٣",
    "",
    " ",
    "true",
    "a\x00b",
    '"\\u0000"',
    '{"x": "\\ud800"}',
    "2026-99-99T99:99:99",
    "2026-01-01T00:00:00",
    "0000-00-00T00:00:00+00:00",
    '{"nodes": null, "edges": 5}',
    '{"id": 1}',
    '{"id": "n", "type": "agent", "config": [[[[[]]]]]}',
    '{"id": "n", "type": "router", "config": {"routes": "x"}}',
    '{"messages": [{"role": "user", "content": ' + DEEP + "}]}",
    '{"inputs": {"task": {"a": [1, 2]}, "count": 1e308, "data": ' + DEEP + "}}",
    "x" * 30_000,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
texts = st.sampled_from(NASTY) | st.text(max_size=40) | json_values.map(json.dumps)
raw_bodies = (
    texts.map(lambda text: text.encode("utf-8", "surrogatepass"))
    | st.binary(max_size=64)
    | st.sampled_from([b"\xff", b'{"inputs": "\xc3\x28"}', b"\xed\xa0\x80", b"\xef\xbb\xbf{}"])
)


def requests_for(name: str) -> st.SearchStrategy[tuple[Any, ...]]:
    names = st.sampled_from(FIELDS_OF.get(name) or FIELDS) | st.sampled_from(FIELDS)
    fields = st.dictionaries(names, texts, max_size=6)
    if TABLE[name].method == "get":
        return st.tuples(st.just("query"), fields, st.just(False), st.booleans())
    return st.one_of(
        st.tuples(st.just("form"), fields, st.booleans(), st.booleans()),
        st.tuples(
            st.just("body"),
            raw_bodies,
            st.sampled_from(
                ["application/json", "text/plain", "application/x-www-form-urlencoded"]
            ),
            st.booleans(),
        ),
    )


def worst_requests(name: str) -> list[tuple[Any, ...]]:
    kind = "query" if TABLE[name].method == "get" else "form"
    names = FIELDS_OF.get(name) or FIELDS
    worst = [
        (kind, {name: values[i % len(values)] for i, name in enumerate(names)}, False, True)
        for values in WORST
    ]
    if kind == "form":
        worst.append(("body", DEEP.encode(), "application/json", False))
        worst.append(("body", b'{"inputs": {"task": "\xc3\x28"}}', "application/json", False))
    return worst


# Side effects beyond the database: a check calls the provider, a pull starts a download.
NOT_FUZZED = {"provider_check", "node_pull", "api:provider_test"}


def fuzz_kwargs(name: str, personas: Personas) -> dict[str, Any]:
    kwargs = TABLE[name].kwargs(personas)
    if "workflow_id" in kwargs:  # one with a run form of every input type
        kwargs["workflow_id"] = typed_workflow(personas).pk
    return kwargs


def send(client: Client, url: str, request: tuple[Any, ...]) -> Any:
    kind, payload, flag, htmx = request
    extra = HTMX if htmx else {}
    if kind == "query":
        return client.get(url, payload, **extra)
    if kind == "body":
        return client.generic("POST", url, payload, content_type=flag, **extra)
    data = dict(payload)
    if "import" in url:
        data["file"] = SimpleUploadedFile("f.json", data.pop("graph", "").encode(errors="replace"))
    if flag and "file" not in data:
        return client.post(
            url, urlencode(data), content_type="application/x-www-form-urlencoded", **extra
        )
    return client.post(url, data, **extra)


def assert_refused_in_format(response: Any, url: str) -> None:
    assert response.status_code < 500, (url, response.status_code)
    if response.status_code in (400, 413) and getattr(
        resolve(url.split("?")[0]).func, "answers_json", False
    ):
        assert response["Content-Type"] == "application/json", url
        assert response.json()["error"], url


@pytest.mark.parametrize("name", sorted(set(TABLE) - NOT_FUZZED))
def test_no_malformed_request_answers_5xx(
    name: str, personas: Personas, client_for: Any, db: None
) -> None:
    client = client_for(personas.owner)
    url = reverse(name, kwargs=fuzz_kwargs(name, personas))

    @settings(
        max_examples=5,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=requests_for(name))
    def fuzz(request: tuple[Any, ...]) -> None:
        response = send(client, url, request)
        if getattr(response, "streaming", False) and not response.is_async:
            # Read to the end as a WSGI server does: the test client's wrapper then closes the
            # response without closing the test's database connection (a bare close() would).
            b"".join(response.streaming_content)
        elif hasattr(response, "streaming_content"):
            response.close()
        assert_refused_in_format(response, url)

    for worst in worst_requests(name):
        fuzz = example(request=worst)(fuzz)
    fuzz()
