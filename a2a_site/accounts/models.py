"""Users, workspaces and their memberships.

Every object that users create belongs to one workspace; what a user may do with it follows from
their role in that workspace (see `access.py`).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    class Meta:
        constraints = [
            # Invitations find people by e-mail, so one address must mean one person.
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="accounts_user_email_unique_ci",
                violation_error_message="Another account already uses this e-mail address.",
            )
        ]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "editor": 1, "owner": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @property
    def description(self) -> str:
        return {
            "owner": "Everything, including members, roles and deleting the workspace.",
            "editor": "Create, change and run agents and workflows.",
            "viewer": "See agents, workflows and runs; change nothing.",
        }[self.value]


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Moves whenever something a run resolves before its calls changes (agents and their
    # versions, providers, their nodes and prices, the tool host policy; agents/stamps.py).
    # Executors keep what they resolved per workspace and stamp, and read the stamp with each
    # run they load, so a change reaches every worker process with its next run.
    runtime_stamp = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name", "created_at"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["workspace__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="accounts_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def allows(self, needed: Role) -> bool:
        return self.role_enum.allows(needed)


class AuthAttempt(models.Model):
    """One counted attempt to log in, reset a password or sign up (see `throttle.py`).

    Account names and client addresses are stored as keyed digests: a throttle needs only to
    compare them, and people do type their password into the username field.
    """

    class Action(models.TextChoices):
        LOGIN = "login", "Log-in"
        PASSWORD_RESET = "password_reset", "Password reset"
        SIGNUP = "signup", "Sign-up"

    action = models.CharField(max_length=16, choices=Action.choices)
    account = models.CharField(max_length=64)
    address = models.CharField(max_length=64)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["action", "account", "at"], name="accounts_attempt_account"),
            models.Index(fields=["action", "address", "at"], name="accounts_attempt_address"),
        ]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M:%S}"
