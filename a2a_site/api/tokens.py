"""Creating, finding and revoking API tokens (see models.py for what a token is)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from a2a_site.accounts.access import get_membership_for_user
from a2a_site.accounts.models import Role, User, Workspace
from a2a_site.api.models import ApiToken, Scope

TOKEN_PREFIX = "a2a_"
PREFIX_SHOWN = 12  # "a2a_" and 8 random characters: enough to tell tokens apart


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def token_create(
    *,
    user: User,
    name: str,
    scope: str,
    kind: str = ApiToken.Kind.PERSONAL,
    workspace: Workspace | None = None,
    expires_in_days: int | None = None,
) -> NewToken:
    """A new token; its secret is in the answer and nowhere else.

    A service token needs its workspace and an owner to create it; any token scoped to a
    workspace needs its creator to be a member of it.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the token after what uses it."})
    if scope not in Scope.values:
        raise ValidationError({"scope": f"Choose one of {', '.join(Scope.values)}."})
    if kind == ApiToken.Kind.SERVICE:
        if workspace is None:
            raise ValidationError({"workspace": "A service token belongs to a workspace."})
        try:
            get_membership_for_user(user, workspace.pk, role=Role.OWNER)
        except PermissionDenied:
            raise PermissionDenied("Only owners create a workspace's service tokens.") from None
    elif workspace is not None:
        get_membership_for_user(user, workspace.pk)
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= 3650:
            raise ValidationError({"expires_in_days": "Between 1 and 3650 days, or never."})
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        kind=kind,
        name=name[:80],
        user=user,
        workspace=workspace,
        scope=scope,
        prefix=secret[:PREFIX_SHOWN],
        digest=token_digest(secret),
        expires_at=expires_at,
    )
    return NewToken(token, secret)


def tokens_of_user(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user, kind=ApiToken.Kind.PERSONAL).select_related(
        "workspace"
    )


def service_tokens_of(workspace_id: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(
        workspace_id=workspace_id, kind=ApiToken.Kind.SERVICE
    ).select_related("user")


def token_for_revoking(user: User, token_id: Any) -> ApiToken:
    """A token the user may revoke: their own, or a service token of a workspace they own.
    Anything else is not found (its existence is not revealed)."""
    from django.http import Http404

    owned = Q(user=user, kind=ApiToken.Kind.PERSONAL) | Q(
        kind=ApiToken.Kind.SERVICE,
        workspace__memberships__user=user,
        workspace__memberships__role=Role.OWNER,
    )
    try:
        return ApiToken.objects.filter(owned).distinct().get(pk=token_id)
    except (ApiToken.DoesNotExist, ValidationError, ValueError):
        raise Http404("No such token.") from None


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revokes at once; revoking twice keeps the first time."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    token.refresh_from_db(fields=["revoked_at"])
    return token


class TokenRefused(Exception):
    """The presented token does not authenticate; `str()` says why, for the caller."""


def token_authenticate(secret: str, *, now: datetime | None = None) -> ApiToken:
    """The live token with this secret (one indexed read), or TokenRefused."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenRefused("This is not an A2A Studio API token.")
    try:
        token = ApiToken.objects.select_related("user").get(digest=token_digest(secret))
    except ApiToken.DoesNotExist:
        raise TokenRefused("This token is not known (mistyped, or deleted).") from None
    now = now or timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused("This token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("This token has expired; create a new one.")
    if not token.user.is_active:
        raise TokenRefused("The account this token belongs to is deactivated.")
    token_touch(token, now=now)
    return token


def token_touch(token: ApiToken, *, now: datetime) -> None:
    """Records the last use at most once per API_TOKEN_TOUCH_SECONDS: a busy token costs one
    write a minute, not one per request (the read already told us whether it is due)."""
    every = timedelta(seconds=settings.API_TOKEN_TOUCH_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < every:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - every)
    ).update(last_used_at=now)
    token.last_used_at = now
