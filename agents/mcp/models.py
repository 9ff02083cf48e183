"""A workspace's MCP servers, and the tool calls runs made on them (so a resumed run replays them).

A server is reached over streamable HTTP at a URL the outbound URL policy allows (as tools: the
administrator's A2A_TOOL_ALLOWED_HOSTS narrowed by the workspace's tool hosts), or as a child
process over stdio, only for a command an administrator allow-listed (A2A_MCP_STDIO_COMMANDS).
Extra HTTP headers (an API key, a bearer token) are stored encrypted and never shown again.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from a2a_site.accounts.models import Workspace


class McpTransport(models.TextChoices):
    HTTP = "http", "Streamable HTTP"
    STDIO = "stdio", "Command (stdio)"


class McpServer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.CharField(max_length=80)
    # Short, lower-case and unique in the workspace: it prefixes the tool names models see
    # ("mcp_<key>__<tool>"), so renaming the server does not break agents that use its tools.
    key = models.SlugField(max_length=24)
    transport = models.CharField(max_length=8, choices=McpTransport.choices)
    url = models.URLField(max_length=500, blank=True)
    command = models.CharField(max_length=300, blank=True)
    args = models.JSONField(default=list, blank=True)
    # JSON {"Header-Name": "value"}, Fernet-encrypted (agents.crypto); only the names are shown.
    headers_ciphertext = models.TextField(blank=True, editable=False)
    header_names = models.JSONField(default=list, blank=True, editable=False)
    # One tool call's limit; the calling agent's own time limit for its turn still applies.
    timeout_s = models.PositiveIntegerField(default=30)
    # What the last listing found: [{"name", "description", "input_schema"}], used by the agent
    # form and by runs (a run does not list tools again before each model call).
    tools = models.JSONField(default=list, blank=True)
    tools_listed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="agents_mcp_name_unique"),
            models.UniqueConstraint(fields=["workspace", "key"], name="agents_mcp_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def where(self) -> str:
        if self.transport == McpTransport.STDIO:
            return " ".join([self.command, *self.args])
        return self.url


class McpToolCall(models.Model):
    """One finished call of an MCP tool in a run's step, written as soon as its result came.

    A resumed run re-executes an unfinished step; when its model asks again for the same call
    (same tool, same arguments, same place in the step), the recorded result is used and the
    server is not called a second time.
    """

    run_id = models.UUIDField()
    step_key = models.CharField(max_length=300)
    call_key = models.CharField(max_length=64)
    server = models.ForeignKey(McpServer, null=True, on_delete=models.SET_NULL, related_name="+")
    tool = models.CharField(max_length=200)
    content = models.TextField(blank=True)
    is_error = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run_id", "step_key", "call_key"], name="agents_mcp_call_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tool} in {self.run_id} {self.step_key}"
