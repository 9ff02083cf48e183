"""Request types that say what our middleware adds, so views need no casts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from a2a_site.accounts.models import Membership, User, Workspace


class HtmxRequest(HttpRequest):
    htmx: HtmxDetails
    membership: Membership | None
    workspace: Workspace | None


class AuthedRequest(HtmxRequest):
    """A request that `login_required` let through."""

    user: User
