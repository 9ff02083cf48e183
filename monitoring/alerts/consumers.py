"""The workspace's notifications over a WebSocket, beside the run pages' socket.

    server → {"type": "notification", id, event, title, body, url}

Live only: what was missed while the socket was closed is in the database, and every page renders
the unread count and the latest notifications itself. Close codes as for runs: 4401 not signed
in, 4404 not a member of the workspace, 4500 the live feed is unavailable (reconnect, backoff).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from a2a_site.accounts.access import membership_for
from monitoring.alerts.notify import notifications_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_INTERNAL = 4500


@database_sync_to_async
def _is_member(user: Any, workspace_id: str) -> bool:
    return membership_for(user, workspace_id) is not None


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.group: str | None = None
        self.workspace_id = str(self.scope["url_route"]["kwargs"]["workspace_id"])
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await _is_member(user, self.workspace_id):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        group = notifications_group(self.workspace_id)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as error:  # noqa: BLE001 - the layer is down (Redis restarting)
            logger.warning("Notifications feed unavailable (%s)", type(error).__name__)
            await self.close(code=CLOSE_INTERNAL)
            return
        self.group = group

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            group, self.group = self.group, None
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # noqa: BLE001 - the layer expires stale members itself
                logger.debug("Leaving the notifications group failed", exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The client has nothing to say, so nothing is parsed (a malformed frame is as good as
        # any); a membership that ended is checked on each frame.
        user = self.scope.get("user")
        if user is None or not await _is_member(user, self.workspace_id):
            await self.close(code=CLOSE_NOT_FOUND)

    async def alerts_notification(self, message: dict[str, Any]) -> None:
        await self.send_json({**message, "type": "notification"})
