"""Who calls the API, and what they may do.

Two ways in: `Authorization: Bearer <token>` (scripts; no CSRF, since no browser attaches it on
its own), or the session cookie of a signed-in browser, which keeps the CSRF check for writes.
A header that is present but wrong is refused outright (401) — never mistaken for "no token" and
answered with a session.

What a caller may do is the smaller of two things: the token's scope (a session has every scope)
and the creator's role in the object's workspace, checked by the same access seam as the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.http import Http404, HttpRequest
from ninja.security import SessionAuth
from ninja.security.http import HttpBearer

from a2a_site.accounts.access import require_role
from a2a_site.accounts.models import Membership, Role, User
from a2a_site.api.models import ApiToken, Scope
from a2a_site.api.problems import ApiError
from a2a_site.api.ratelimit import rate_limit_wait
from a2a_site.api.tokens import TokenRefused, token_authenticate

T = TypeVar("T")


@dataclass
class ApiCaller:
    user: User
    token: ApiToken | None = None

    @property
    def scope(self) -> Scope:
        return self.token.scope_enum if self.token is not None else Scope.ADMIN

    @property
    def workspace_id(self) -> UUID | None:
        """The one workspace a token is limited to, if any."""
        return self.token.workspace_id if self.token is not None else None

    @property
    def idempotency_owner(self) -> str:
        return f"token:{self.token.pk}" if self.token is not None else f"user:{self.user.pk}"

    def require(self, needed: Scope) -> None:
        if not self.scope.allows(needed):
            raise ApiError(
                "scope",
                f"This needs a token with the {needed.value} scope; this one has "
                f"{self.scope.value}.",
            )

    def sees_workspace(self, workspace_id: Any) -> bool:
        return self.workspace_id is None or str(self.workspace_id) == str(workspace_id)

    def lookup(
        self,
        getter: Callable[..., tuple[T, Membership]],
        pk: Any,
        needed: Scope = Scope.READ,
        *,
        role: Role | None = None,
    ) -> tuple[T, Membership]:
        """An object through its access helper: 403 below the scope, 404 outside the token's
        workspace or the user's memberships, 403 below the role the scope needs."""
        self.require(needed)
        obj, membership = getter(self.user, pk, role=Role.VIEWER)
        if not self.sees_workspace(membership.workspace_id):
            raise Http404("Not found.")
        require_role(membership, role or needed.role_needed)
        return obj, membership


def caller_of(request: HttpRequest) -> ApiCaller:
    auth = getattr(request, "auth", None)
    assert isinstance(auth, ApiCaller), "an API endpoint without authentication"
    return auth


class TokenAuth(HttpBearer):
    """Bearer tokens; None (no header) lets the session try."""

    openapi_description = "An API token from Settings → API tokens, sent as a bearer token."

    def __call__(self, request: HttpRequest) -> ApiCaller | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _refused("Send the token as `Authorization: Bearer <token>`.")
        return self.authenticate(request, secret.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiCaller | None:
        try:
            found = token_authenticate(token)
        except TokenRefused as refused:
            raise _refused(str(refused)) from None
        wait = rate_limit_wait(f"token:{found.pk}")
        if wait:
            raise ApiError(
                "rate-limited",
                f"This token made more than {settings.API_RATE_LIMIT} requests in "
                f"{settings.API_RATE_WINDOW_SECONDS} s; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        return ApiCaller(user=found.user, token=found)


class BrowserSessionAuth(SessionAuth):
    """A signed-in browser: the session cookie, with Django's CSRF check on writes."""

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiCaller | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return ApiCaller(user=user)
        return None


def _refused(detail: str) -> ApiError:
    return ApiError(
        "unauthenticated",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="a2a-studio", error="invalid_token"'},
    )


API_AUTH = [TokenAuth(), BrowserSessionAuth()]
