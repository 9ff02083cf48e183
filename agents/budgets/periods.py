"""When a budget's periods start and end: midnight in the budget's time zone.

A day starts at 00:00, a week on Monday at 00:00, a month on its 1st at 00:00, all in the budget's
zone (UTC unless set). A budget without a period has one that starts at `LIFETIME_START` and
never ends. Periods are rows made when first needed, so a period "resets" by a new row starting:
nothing has to run on the hour for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LIFETIME_START = datetime(2000, 1, 1, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def period_bounds(period: str, time_zone: str, now: datetime) -> tuple[datetime, datetime | None]:
    """(start, end) of the period that contains `now`, as aware UTC datetimes."""
    if period == "none":
        return LIFETIME_START, None
    tz = zone(time_zone)
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = midnight, midnight + timedelta(days=1)
    elif period == "week":
        start = midnight - timedelta(days=midnight.weekday())
        end = start + timedelta(days=7)
    else:  # month
        start = midnight.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    # Re-attach the zone after the arithmetic, so a daylight-saving change is honoured.
    start = start.replace(tzinfo=None).replace(tzinfo=tz)
    end = end.replace(tzinfo=None).replace(tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_label(period: str, start: datetime, time_zone: str) -> str:
    local = start.astimezone(zone(time_zone))
    if period == "day":
        return local.strftime("%a %d %b %Y")
    if period == "week":
        return "week of " + local.strftime("%d %b %Y")
    if period == "month":
        return local.strftime("%B %Y")
    return "all time"
