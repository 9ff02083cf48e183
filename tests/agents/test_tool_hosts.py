"""Tools have their own outbound allow-list, and each workspace can narrow it for itself.

The providers' allow-list (A2A_OUTBOUND_ALLOWED_HOSTS) opens an Ollama node to the gateway; it must
not open that node to every agent's http_get in every workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents.models import ToolHostPolicy
from agents.selectors import tool_hosts_for
from agents.services.tool_hosts import host_patterns_parse, tool_host_policy_update
from agents.tools import builtin_registry
from agents.urlpolicy import ToolHosts, host_patterns_intersect
from tests.conftest import Personas
from workflows.runtime import tool_context_with


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (["gpu1.lab"], ["gpu1.lab"], ("gpu1.lab",)),
        (["gpu1.lab"], ["*.lab"], ("gpu1.lab",)),
        (["*.lab"], ["gpu1.lab", "wiki.corp"], ("gpu1.lab",)),
        (["*.a.lab"], ["*.lab"], ("*.a.lab",)),
        (["*.lab"], ["*.a.lab"], ("*.a.lab",)),
        (["gpu1.lab"], ["wiki.corp"], ()),
        ([], ["wiki.corp"], ()),
        (["evil-lab"], ["*.lab"], ()),
    ],
)
def test_allow_lists_intersect_by_the_hosts_they_match(
    first: list[str], second: list[str], expected: tuple[str, ...]
) -> None:
    assert host_patterns_intersect(first, second) == expected


def test_a_closed_list_refuses_other_hosts_and_says_where_to_change_it() -> None:
    hosts = ToolHosts(only=("docs.example.com", "*.wiki.example.com"))
    assert hosts.refusal("https://docs.example.com/a") is None
    assert hosts.refusal("https://team.wiki.example.com/") is None
    refusal = hosts.refusal("https://example.org/")
    assert refusal is not None
    assert "example.org is not listed" in refusal
    assert "tool hosts page" in refusal
    assert ToolHosts().refusal("https://example.org/") is None


def test_host_lists_are_cleaned_and_bad_entries_named() -> None:
    assert host_patterns_parse("Wiki.Example.com.\n*.lab, 10.0.0.5\n[::1]\nwiki.example.com") == [
        "wiki.example.com",
        "*.lab",
        "10.0.0.5",
        "::1",
    ]
    with pytest.raises(ValidationError) as caught:
        host_patterns_parse("http://wiki.example.com/x\nwiki:8080\nbad_host!")
    messages = " ".join(caught.value.messages)
    assert "without http://" in messages
    assert "without a port" in messages
    assert "“bad_host!” is not a host name" in messages


def test_a_workspace_without_a_policy_reaches_public_hosts_only(
    personas: Personas, settings: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["ollama.lab"]
    settings.TOOL_ALLOWED_HOSTS = ["wiki.lab"]
    assert tool_hosts_for(personas.workspace.pk) == ToolHosts(private=(), only=None)


def test_private_hosts_need_the_administrator_and_the_workspace(
    personas: Personas, settings: Any
) -> None:
    settings.TOOL_ALLOWED_HOSTS = ["*.lab"]
    tool_host_policy_update(
        workspace=personas.workspace,
        user=personas.owner,
        public_hosts=True,
        hosts=["wiki.lab", "intranet.corp"],
    )
    assert tool_hosts_for(personas.workspace.pk) == ToolHosts(private=("wiki.lab",), only=None)
    # Another workspace is not opened by this one's list.
    assert tool_hosts_for(personas.other_workspace.pk) == ToolHosts()


def _http_get(hosts: ToolHosts, url: str) -> Any:
    context = tool_context_with(hosts, workspace_id="w")
    return asyncio.run(builtin_registry().call("http_get", f'{{"url": "{url}"}}', context))


def test_the_providers_allow_list_does_not_open_a_host_to_tools(
    personas: Personas, settings: Any, llm_server: Any
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # the Ollama node, say
    settings.TOOL_ALLOWED_HOSTS = []
    tool_host_policy_update(
        workspace=personas.workspace, user=personas.owner, public_hosts=True, hosts=["127.0.0.1"]
    )

    result = _http_get(tool_hosts_for(personas.workspace.pk), f"{llm_server.url}/v1/models")

    assert result.is_error
    assert "127.0.0.1 is a loopback address" in result.content
    assert "A2A_TOOL_ALLOWED_HOSTS" in result.content
    assert llm_server.requests == []


def test_a_host_allowed_by_both_is_reached_and_only_by_that_workspace(
    personas: Personas, settings: Any, llm_server: Any
) -> None:
    settings.TOOL_ALLOWED_HOSTS = ["127.0.0.1"]
    tool_host_policy_update(
        workspace=personas.workspace, user=personas.owner, public_hosts=True, hosts=["127.0.0.1"]
    )
    url = f"{llm_server.url}/v1/models"

    assert not _http_get(tool_hosts_for(personas.workspace.pk), url).is_error
    assert _http_get(tool_hosts_for(personas.other_workspace.pk), url).is_error


def test_a_closed_list_refuses_unlisted_public_hosts_before_any_request(
    personas: Personas,
) -> None:
    tool_host_policy_update(
        workspace=personas.workspace,
        user=personas.owner,
        public_hosts=False,
        hosts=["docs.example.com"],
    )

    result = _http_get(tool_hosts_for(personas.workspace.pk), "https://example.org/")

    assert result.is_error
    assert result.content.startswith("Refused: This workspace lets its tools reach only")


# --- The page ---------------------------------------------------------------------------------


def test_an_editor_narrows_the_workspace_tool_hosts(
    personas: Personas, client_for, settings: Any
) -> None:
    settings.TOOL_ALLOWED_HOSTS = ["*.lab"]
    client = client_for(personas.editor)
    providers = client.get(reverse("provider_list")).content.decode()
    assert reverse("tool_host_policy") in providers

    page = client.get(reverse("tool_host_policy"))
    assert page.status_code == 200
    assert "<code>*.lab</code>" in page.content.decode()

    response = client.post(
        reverse("tool_host_policy"), {"hosts": "wiki.lab\ndocs.example.com"}, follow=True
    )

    assert "Tool hosts saved" in response.content.decode()
    policy = ToolHostPolicy.objects.get(workspace=personas.workspace)
    assert policy.public_hosts is False  # the box was left unticked
    assert policy.hosts == ["wiki.lab", "docs.example.com"]
    assert policy.updated_by == personas.editor
    effective = response.content.decode()
    assert "only wiki.lab, docs.example.com" in effective


def test_a_bad_host_is_shown_and_nothing_saved(personas: Personas, client_for) -> None:
    response = client_for(personas.owner).post(
        reverse("tool_host_policy"), {"public_hosts": "on", "hosts": "http://wiki.lab/"}
    )
    assert response.status_code == 200
    assert "without http://" in response.content.decode()
    assert not ToolHostPolicy.objects.exists()


def test_viewers_neither_see_nor_change_the_tool_hosts(personas: Personas, client_for) -> None:
    viewer = client_for(personas.viewer)
    assert reverse("tool_host_policy") not in viewer.get(reverse("provider_list")).content.decode()
    assert viewer.post(reverse("tool_host_policy"), {"hosts": "x.lab"}).status_code == 403
    assert not ToolHostPolicy.objects.exists()
