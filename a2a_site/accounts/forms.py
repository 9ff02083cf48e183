from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from a2a_site.accounts.models import Role, User


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        help_text="Teammates can invite you by this address; password resets go here."
    )

    class Meta:
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail already exists. Log in, or reset its password."
            )
        return email


class WorkspaceForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Research team"}),
        help_text="Agents, workflows and runs live in a workspace; members share them.",
    )


class InviteForm(forms.Form):
    identifier = forms.CharField(
        label="Username or e-mail",
        max_length=254,
        widget=forms.TextInput(attrs={"placeholder": "alice or alice@example.com"}),
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class DeleteWorkspaceForm(forms.Form):
    confirm_name = forms.CharField(label="Type the workspace's name to confirm", max_length=80)
