"""API tokens and the idempotency keys of the public API (`/api/v1/`).

A token is a random secret shown once; only its SHA-256 is stored (a secret of 256 random bits
needs no slow hash: nobody can guess it, and a lookup by digest is one indexed read). Its first
characters stay visible as `prefix`, so a list can tell tokens apart.

A token acts as the user who created it, with at most their role in the workspace (the same
membership the pages check) and at most its own scope. A service token belongs to a workspace:
every owner of it sees it and may revoke it; it stops working when its creator leaves.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from a2a_site.accounts.models import Role, Workspace


class Scope(models.TextChoices):
    """What a token may do; each scope includes the ones before it."""

    READ = "read", "Read"
    RUN = "run", "Run"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return {"read": 0, "run": 1, "write": 2, "admin": 3}[self.value]

    def allows(self, needed: Scope) -> bool:
        return self.rank >= needed.rank

    @property
    def description(self) -> str:
        return {
            "read": "See workspaces, workflows, agents and runs.",
            "run": "Also launch, cancel and answer runs.",
            "write": "Also change workflows and agents, and publish.",
            "admin": "Also change providers and their keys.",
        }[self.value]

    @property
    def role_needed(self) -> Role:
        """The least role in the workspace a caller needs for what this scope grants."""
        return Role.VIEWER if self is Scope.READ else Role.EDITOR


class ApiToken(models.Model):
    class Kind(models.TextChoices):
        PERSONAL = "personal", "Personal"
        SERVICE = "service", "Service"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSONAL)
    name = models.CharField(max_length=80)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # A service token always names its workspace; a personal one may (else: all of the user's).
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="service") | models.Q(workspace__isnull=False),
                name="api_token_service_has_workspace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_enum(self) -> Scope:
        return Scope(self.scope)


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an `Idempotency-Key`, replayed to its retries.

    One row per (caller, key): the unique constraint is what lets twenty simultaneous requests
    with one key start one run — the first INSERT wins, the others wait for its answer.
    """

    caller = models.CharField(max_length=80)  # "token:<id>" or "user:<id>"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    status = models.PositiveSmallIntegerField(null=True, blank=True)  # null: still in progress
    body = models.BinaryField(default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="api_idempotency_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="api_idempotency_created")]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"
