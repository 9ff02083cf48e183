from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The header's unread count, read only when a page renders it (so without the socket too)."""
    user = getattr(request, "user", None)
    workspace = getattr(request, "workspace", None)
    if user is None or not user.is_authenticated or workspace is None:
        return {}

    @cache  # the header and the nav both show it: one query per page
    def unread() -> int:
        from monitoring.alerts.selectors import notifications_unread

        return notifications_unread(user=user, workspace=workspace)

    return {"notifications_unread": unread}
