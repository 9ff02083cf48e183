from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from a2a_site.accounts.selectors import memberships_of


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The workspace switcher's data, read only when a template asks for it."""
    user = getattr(request, "user", None)
    context: dict[str, Any] = {
        "current_membership": getattr(request, "membership", None),
        "current_workspace": getattr(request, "workspace", None),
        "signup_enabled": settings.SIGNUP_ENABLED,
    }
    if user is not None and user.is_authenticated:
        context["my_memberships"] = lambda: list(memberships_of(user))
    return context
