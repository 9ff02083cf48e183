from __future__ import annotations

from typing import Any

from django import forms

from a2a_site.api.models import ApiToken, Scope

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        label="Name",
        help_text="What uses it, e.g. “CI pipeline” — so you know what breaks if you revoke it.",
    )
    scope = forms.ChoiceField(
        choices=[(scope.value, f"{scope.label} — {scope.description}") for scope in Scope],
        initial=Scope.READ.value,
        label="Scope",
    )
    reach = forms.ChoiceField(label="Works in", choices=())
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires after")

    def __init__(self, *args: Any, workspace_name: str | None, is_owner: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        choices = [("all", "All my workspaces, as me")]
        if workspace_name:
            choices.insert(0, ("workspace", f"Only “{workspace_name}”, as me"))
            if is_owner:
                choices.append(
                    ("service", f"“{workspace_name}” as a service token (owners manage)")
                )
        self.fields["reach"].choices = choices  # type: ignore[attr-defined]

    @property
    def kind(self) -> str:
        reach = self.cleaned_data["reach"]
        return ApiToken.Kind.SERVICE if reach == "service" else ApiToken.Kind.PERSONAL

    @property
    def expires_in_days(self) -> int | None:
        value = self.cleaned_data["expires"]
        return None if value == "never" else int(value)
