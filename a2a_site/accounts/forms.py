from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from a2a_site.accounts.models import Role, User


class SignupForm(forms.Form):
    """The first step of sign-up. Whether the username or the address is taken is not said here
    (that would tell anyone which accounts exist): the e-mail sent to the address says it."""

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only; teammates see it.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(
        help_text="We send a link there to choose your password. Teammates can invite you by "
        "this address; password resets go here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip()


class SignupPasswordForm(SetPasswordMixin, forms.Form):
    """The second step, reached from the e-mailed link: the new account's password."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        return super().clean() or {}


class _ThrottleMessage:
    """Says when to try again instead of “wrong password” when the throttle refused the attempt
    (the backend leaves its answer on the request)."""

    request: Any

    def get_invalid_login_error(self) -> ValidationError:
        throttled = getattr(self.request, "login_throttled", None)
        if throttled is not None:
            return ValidationError(throttled.message, code="throttled")
        return super().get_invalid_login_error()  # type: ignore[misc]


class LoginForm(_ThrottleMessage, AuthenticationForm):
    pass


class AdminLoginForm(_ThrottleMessage, AdminAuthenticationForm):
    pass


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
