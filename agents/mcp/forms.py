"""The MCP server form: where the server is, and its headers (write-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from agents.mcp.models import McpServer, McpTransport
from agents.mcp.services import McpServerInput, mcp_headers_parse


class McpServerForm(forms.Form):
    name = forms.CharField(max_length=80)
    transport = forms.ChoiceField(
        choices=McpTransport.choices, widget=forms.RadioSelect, initial=McpTransport.HTTP
    )
    url = forms.CharField(
        label="Endpoint URL",
        required=False,
        max_length=500,
        help_text="The server's streamable HTTP endpoint, e.g. https://tools.example.com/mcp.",
        widget=forms.URLInput(attrs={"placeholder": "https://…/mcp"}),
    )
    bearer = forms.CharField(
        label="Bearer token",
        required=False,
        max_length=2000,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Sent as “Authorization: Bearer …”. Stored encrypted, never shown again.",
    )
    headers = forms.CharField(
        label="Other headers",
        required=False,
        max_length=8000,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "X-Api-Key: …", "autocomplete": "off"}
        ),
        help_text="One “Name: value” a line. Stored encrypted, never shown again.",
    )
    clear_headers = forms.BooleanField(label="Remove the saved headers", required=False)
    command = forms.CharField(
        required=False,
        max_length=300,
        help_text="A program an administrator allowed (A2A_MCP_STDIO_COMMANDS).",
    )
    args = forms.CharField(
        label="Arguments",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One argument a line, passed as they are (no shell).",
    )
    timeout_s = forms.IntegerField(
        label="Time limit per call (seconds)",
        min_value=1,
        max_value=3600,
        initial=30,
        help_text="The calling agent's own time limit for its turn applies too.",
    )

    def __init__(self, *args: Any, server: McpServer | None = None, **kwargs: Any) -> None:
        if server is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": server.name,
                "transport": server.transport,
                "url": server.url,
                "command": server.command,
                "args": "\n".join(server.args),
                "timeout_s": server.timeout_s,
            }
        super().__init__(*args, **kwargs)
        self.server = server
        if server is not None and server.header_names:
            self.fields["headers"].help_text = (
                f"Saved: {', '.join(server.header_names)} (values hidden). Leave both boxes "
                "empty to keep them; anything entered replaces them."
            )
        elif server is None:
            del self.fields["clear_headers"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["parsed_headers"] = mcp_headers_parse(
                data.get("headers") or "", bearer=data.get("bearer") or ""
            )
        except ValidationError as error:
            self.add_error(None, error)
        return data

    def to_input(self) -> McpServerInput:
        data = self.cleaned_data
        headers: dict[str, str] | None = data.get("parsed_headers") or None
        if headers is None:
            headers = {} if (self.server is None or data.get("clear_headers")) else None
        return McpServerInput(
            name=data["name"],
            transport=data["transport"],
            url=data.get("url") or "",
            command=data.get("command") or "",
            args=[line.strip() for line in (data.get("args") or "").splitlines() if line.strip()],
            timeout_s=data["timeout_s"],
            headers=headers,
        )
