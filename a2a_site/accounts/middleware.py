from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from a2a_site.accounts.models import Membership
from a2a_site.accounts.selectors import current_membership


class CurrentWorkspaceMiddleware:
    """Sets `request.membership` (and `request.workspace`): the workspace the user works in now.

    The choice lives in the session; a stale or missing choice falls back to the user's oldest
    membership, so the pages never point at a workspace the user has left.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership: Membership | None = current_membership(request)
        request.membership = membership  # type: ignore[attr-defined]
        request.workspace = membership.workspace if membership else None  # type: ignore[attr-defined]
        return self.get_response(request)
