"""A workspace's gateway middleware: saving its hooks, and handing them to the gateway.

The gateway asks `middleware_source` for the calling workspace's hooks on every call; answers
are kept a few seconds per process, so a saved change reaches every worker within
`CACHE_SECONDS` (at once in the process that saved it) without a query per call.
"""

from __future__ import annotations

import time
from typing import Any, Final

from django.core.exceptions import ValidationError
from pydantic import ValidationError as PydanticValidationError

from a2a_site.accounts.models import User, Workspace
from a2a_site.db import in_db_thread
from agents.llm.middleware import Middleware
from agents.models import GatewayMiddleware

CACHE_SECONDS: Final = 2.0
_cache: dict[str, tuple[float, Middleware | None]] = {}


def middleware_of(workspace_id: Any) -> Middleware:
    """The workspace's hooks, validated (a workspace without a row has none)."""
    row = GatewayMiddleware.objects.filter(workspace_id=workspace_id).first()
    return Middleware.model_validate({"hooks": row.hooks if row else []})


def gateway_middleware_update(
    *, workspace: Workspace, user: User | None, hooks: list[dict[str, Any]]
) -> GatewayMiddleware:
    """Replaces the workspace's hooks, in the given order; ValidationError names the hook."""
    try:
        parsed = Middleware.model_validate({"hooks": hooks})
    except PydanticValidationError as error:
        messages = []
        for item in error.errors():
            where = [part for part in item["loc"] if isinstance(part, int)]
            prefix = f"Hook {where[0] + 1}: " if where else ""
            messages.append(prefix + item["msg"].removeprefix("Value error, "))
        raise ValidationError(messages) from None
    row, _ = GatewayMiddleware.objects.update_or_create(
        workspace=workspace,
        defaults={"hooks": parsed.model_dump()["hooks"], "updated_by": user},
    )
    _cache.pop(str(workspace.pk), None)
    return row


async def middleware_source(workspace_id: str) -> Middleware | None:
    """The gateway's view of a workspace's hooks (None: none), cached briefly."""
    now = time.monotonic()
    cached = _cache.get(workspace_id)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    found = await in_db_thread(middleware_of, workspace_id)
    hooks = found if found.hooks else None
    _cache[workspace_id] = (now, hooks)
    return hooks
