"""The history's query, as it lives in the URL: validated, explained when wrong, and written back.

Every filter, the search, the sort and the page cursor are GET parameters, so a view can be
bookmarked and shared. A parameter that does not parse is not ignored: the page says which one
and why, and shows no rows rather than rows the reader did not ask for.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import QueryDict
from django.utils import timezone

from workflows.models import LaunchedVia, RunStatus

ERROR_KINDS = (
    ("rate_limit", "Rate limited"),
    ("timeout", "Timed out"),
    ("provider_error", "Provider error"),
    ("context_length", "Context too long"),
    ("content_filter", "Content filter"),
    ("auth", "Refused key"),
    ("bad_request", "Bad request"),
    ("worker_lost", "Worker lost"),
)

# Sort name -> (label, descending). Each has an index that matches it (see the migration).
SORTS = {
    "-started": ("Newest first", True),
    "started": ("Oldest first", False),
    "-duration": ("Longest first", True),
    "duration": ("Shortest first", False),
    "-cost": ("Most expensive first", True),
    "cost": ("Cheapest first", False),
    "-tokens": ("Most tokens first", True),
    "tokens": ("Fewest tokens first", False),
}
DEFAULT_SORT = "-started"
# Everything in the URL except the cursor, in the order the form shows it.
FILTER_NAMES = (
    "q",
    "status",
    "workflow",
    "version",
    "agent",
    "model",
    "provider",
    "by",
    "via",
    "from",
    "to",
    "min_duration",
    "max_duration",
    "min_cost",
    "max_cost",
    "error",
    "waiting",
    "pinned",
    "sort",
)


class HistoryQueryForm(forms.Form):
    """Choices for workflow, agent, provider, model and person are the workspace's own."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.MultipleChoiceField(required=False, choices=RunStatus.choices)
    workflow = forms.UUIDField(required=False, label="Workflow")
    version = forms.IntegerField(required=False, min_value=1, label="Version")
    agent = forms.UUIDField(required=False, label="Agent")
    model = forms.CharField(required=False, max_length=200)
    provider = forms.UUIDField(required=False, label="Provider")
    by = forms.IntegerField(required=False, min_value=1, label="Launched by")
    via = forms.ChoiceField(required=False, choices=[("", "Any way"), *LaunchedVia.choices])
    from_ = forms.DateField(required=False, label="Started from")
    to = forms.DateField(required=False, label="Started until")
    min_duration = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=3, label="Min duration (s)"
    )
    max_duration = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=3, label="Max duration (s)"
    )
    min_cost = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=8, label="Min cost ($)"
    )
    max_cost = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=8, label="Max cost ($)"
    )
    error = forms.ChoiceField(
        required=False, choices=[("", "Any"), ("any", "Failed runs"), *ERROR_KINDS]
    )
    waiting = forms.BooleanField(required=False, label="Waiting for a person")
    pinned = forms.BooleanField(required=False, label="Pinned only")
    sort = forms.ChoiceField(
        required=False, choices=[(name, label) for name, (label, _desc) in SORTS.items()]
    )
    cursor = forms.CharField(required=False, max_length=400, label="Page")

    def __init__(self, data: QueryDict, **kwargs: Any) -> None:
        # `from` is a Python keyword: the form field is `from_`, the URL parameter `from`.
        data = data.copy()
        if "from" in data:
            data.setlist("from_", data.getlist("from"))
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        pairs = (
            ("from_", "to", "The dates"),
            ("min_duration", "max_duration", "The durations"),
            ("min_cost", "max_cost", "The costs"),
        )
        for low, high, label in pairs:
            low_value, high_value = cleaned.get(low), cleaned.get(high)
            if low_value is not None and high_value is not None and low_value > high_value:
                self.add_error(high, f"{label} end before they start: swap them.")
        if cleaned.get("version") and not cleaned.get("workflow"):
            self.add_error("version", "Pick a workflow first: version numbers are per workflow.")
        if cleaned.get("cursor"):
            try:
                cleaned["cursor"] = cursor_decode(cleaned["cursor"])
            except ValueError:
                self.add_error("cursor", "This page link is damaged; start from the first page.")
        return cleaned


@dataclass(frozen=True)
class HistoryQuery:
    q: str = ""
    statuses: tuple[str, ...] = ()
    workflow_id: Any = None
    version: int | None = None
    agent_id: Any = None
    model: str = ""
    provider_id: Any = None
    by: int | None = None
    via: str = ""
    started_from: datetime | None = None
    started_before: datetime | None = None
    min_duration: Decimal | None = None
    max_duration: Decimal | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    error: str = ""
    waiting: bool = False
    pinned: bool = False
    sort: str = DEFAULT_SORT
    cursor: tuple[str, str] | None = None
    # The workflow is the page's own (its Runs tab), not a filter the reader chose.
    workflow_fixed: bool = False

    @property
    def filter_count(self) -> int:
        """How many filters other than the search (and the workflow of a tab) are set."""
        skipped = {"sort", "cursor", "q", "workflow_fixed"}
        if self.workflow_fixed:
            skipped.add("workflow_id")
        return sum(
            getattr(self, name) not in (None, "", (), False)
            for name in self.__dataclass_fields__
            if name not in skipped
        )

    @property
    def is_filtered(self) -> bool:
        """Whether the reader narrowed the list (a search or a filter; a tab's workflow is not)."""
        return bool(self.q) or self.filter_count > 0


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def history_query_from(form: HistoryQueryForm, *, workflow_id: Any = None) -> HistoryQuery:
    """The query a valid form describes; a workflow tab fixes the workflow."""
    data = form.cleaned_data
    return HistoryQuery(
        q=data.get("q") or "",
        statuses=tuple(data.get("status") or ()),
        workflow_id=workflow_id or data.get("workflow"),
        version=data.get("version"),
        agent_id=data.get("agent"),
        model=data.get("model") or "",
        provider_id=data.get("provider"),
        by=data.get("by"),
        via=data.get("via") or "",
        started_from=_day_start(data["from_"]) if data.get("from_") else None,
        started_before=_day_start(data["to"] + timedelta(days=1)) if data.get("to") else None,
        min_duration=data.get("min_duration"),
        max_duration=data.get("max_duration"),
        min_cost=data.get("min_cost"),
        max_cost=data.get("max_cost"),
        error=data.get("error") or "",
        waiting=bool(data.get("waiting")),
        pinned=bool(data.get("pinned")),
        sort=data.get("sort") or DEFAULT_SORT,
        cursor=data.get("cursor") or None,
        workflow_fixed=workflow_id is not None,
    )


def cursor_encode(key: str, run_id: str) -> str:
    raw = json.dumps([key, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(text: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key, run_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("bad cursor") from None
    if not isinstance(key, str) or not isinstance(run_id, str):
        raise ValueError("bad cursor")
    return key, run_id


def query_string(params: QueryDict, **changes: str | None) -> str:
    """The current URL's query with some parameters changed (None drops one), cursor dropped
    unless given: a new filter or sort starts from the first page."""
    kept: list[tuple[str, str]] = []
    for name in (*FILTER_NAMES, "cursor"):
        if name in changes or name == "cursor":
            continue
        kept.extend((name, value) for value in params.getlist(name) if value != "")
    for name, value in changes.items():
        if value not in (None, ""):
            kept.append((name, str(value)))
    return urlencode(kept)
