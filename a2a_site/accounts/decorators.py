from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect

from a2a_site.accounts.access import require_role
from a2a_site.accounts.models import Role
from a2a_site.http import HtmxRequest

View = Callable[..., HttpResponse]


def workspace_required(role: Role = Role.VIEWER) -> Callable[[View], View]:
    """For pages about the current workspace: log in first, have a workspace, hold `role`."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HtmxRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = request.membership
            if membership is None:
                messages.info(
                    request, "Create a workspace first: everything you build lives in one."
                )
                return redirect("home")
            require_role(membership, role)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
