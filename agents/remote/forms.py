"""The remote agents page's form. The credential is write-only: never rendered back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from agents.models import RemoteAgent
from agents.remote.card import RemoteCardError, remote_base_url, remote_url_check


class RemoteAgentForm(forms.Form):
    name = forms.CharField(max_length=80)
    url = forms.URLField(
        label="Agent URL",
        max_length=500,
        assume_scheme="https",
        help_text="Its base URL; the card is read from /.well-known/agent-card.json under it.",
    )
    credential = forms.CharField(
        label="Bearer token",
        required=False,
        strip=True,
        max_length=4000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Optional. Sent as “Authorization: Bearer …”, only to this URL's origin. "
        "Stored encrypted, never shown again.",
    )
    clear_credential = forms.BooleanField(label="Remove the stored token", required=False)

    def __init__(self, *args: Any, agent: RemoteAgent | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent = agent
        if agent is None or not agent.has_credential:
            del self.fields["clear_credential"]
        else:
            self.fields["credential"].help_text = (
                f"Stored: {agent.credential_masked}. Leave empty to keep it; a "
                "new URL at another origin drops it."
            )

    def clean_url(self) -> str:
        url = remote_base_url(self.cleaned_data["url"])
        try:
            remote_url_check(url)
        except RemoteCardError as error:
            # The page says why: the policy, or a host that does not resolve.
            raise ValidationError(str(error)) from None
        return url
