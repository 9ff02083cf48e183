"""Creating, finding and revoking API tokens (see models.py for what a token is)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
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
    token_forget(token)
    return token


class TokenRefused(Exception):
    """The presented token does not authenticate; `str()` says why, for the caller."""


@dataclass
class _Verified:
    token: ApiToken  # its user loaded
    until: float  # monotonic time after which the database is asked again


# Tokens this process verified lately, by digest: a script's requests in a burst cost a dict
# lookup each, not a database round trip (which, on a busy machine, is mostly a wait for
# PostgreSQL and then for a core). A token revoked or a user deactivated elsewhere stops working
# here within API_TOKEN_CACHE_SECONDS; `token_revoke` forgets it in this process at once.
_verified: dict[str, _Verified] = {}
_verified_lock = threading.Lock()
_VERIFIED_MAX = 10_000


def _token_load(digest: str) -> ApiToken:
    try:
        return ApiToken.objects.select_related("user").get(digest=digest)
    except ApiToken.DoesNotExist:
        raise TokenRefused("This token is not known (mistyped, or deleted).") from None


def token_authenticate(secret: str, *, now: datetime | None = None) -> ApiToken:
    """The live token with this secret (an indexed read, or this process's recent answer),
    or TokenRefused."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenRefused("This is not an A2A Studio API token.")
    digest = token_digest(secret)
    ttl = settings.API_TOKEN_CACHE_SECONDS
    clock = time.monotonic()
    known = _verified.get(digest) if ttl else None
    if known is not None and known.until > clock:
        token = known.token
    else:
        token = _token_load(digest)
        if ttl:
            with _verified_lock:
                if len(_verified) >= _VERIFIED_MAX:
                    _verified.clear()
                _verified[digest] = _Verified(token, clock + ttl)
    now = now or timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused("This token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("This token has expired; create a new one.")
    if not token.user.is_active:
        raise TokenRefused("The account this token belongs to is deactivated.")
    token_touch(token, now=now)
    return token


def token_forget(token: ApiToken) -> None:
    """Drops the token from this process's recent answers: its next use asks the database."""
    with _verified_lock:
        _verified.pop(token.digest, None)


def token_touch(token: ApiToken, *, now: datetime) -> None:
    """Records the last use at most once per API_TOKEN_TOUCH_SECONDS: a busy token costs one
    write a minute, not one per request (the token in hand tells whether it is due)."""
    every = timedelta(seconds=settings.API_TOKEN_TOUCH_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < every:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - every)
    ).update(last_used_at=now)
    token.last_used_at = now
