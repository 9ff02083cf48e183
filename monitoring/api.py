"""The public API's run list (`GET /api/v1/runs`): the history page's filters, sort and keyset
cursor, read through the same form and selector (monitoring/history), one page at a time."""

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from a2a_site.api.auth import caller_of
from a2a_site.api.models import Scope
from a2a_site.api.problems import ApiError, FieldError
from a2a_site.api.routes import workspace_of_request
from monitoring.history.query import HistoryQueryForm, history_query_from
from monitoring.history.selectors import history_page
from monitoring.metrics import MetricsQueryError, metrics_answer, metrics_query_parse
from workflows.api import RunOut, run_out, runs_for_answers

router = Router(tags=["runs"])
metrics_router = Router(tags=["metrics"])


class RunPage(Schema):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass it as `cursor` for the next page")


class RunListQuery(Schema):
    """As the history page's URL has them; each is validated as that page validates it."""

    workspace: UUID | None = Field(None, description="Default: the token's workspace")
    q: str | None = Field(None, description="Search in inputs, outputs and messages")
    status: list[str] = Field(default_factory=list, description="One or more statuses")
    workflow: str | None = None
    version: str | None = None
    agent: str | None = None
    model: str | None = None
    provider: str | None = None
    by: str | None = Field(None, description="The id of the user who launched")
    via: str | None = Field(None, description="web, api, schedule, a2a, command_line")
    from_: str | None = Field(None, alias="from", description="Started on or after (YYYY-MM-DD)")
    to: str | None = Field(None, description="Started on or before (YYYY-MM-DD)")
    min_duration: str | None = None
    max_duration: str | None = None
    min_cost: str | None = None
    max_cost: str | None = None
    error: str | None = None
    waiting: bool = False
    pinned: bool = False
    sort: str | None = Field(None, description="-started (default), started, -cost, cost, …")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


@router.get(
    "",
    response=RunPage,
    url_name="run_list",
    summary="Runs, filtered like the history page",
)
def run_list(request: HttpRequest, query: Query[RunListQuery]) -> RunPage:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    form = HistoryQueryForm(request.GET)
    if not form.is_valid():
        errors = [
            FieldError("from" if name == "from_" else name, str(message))
            for name, messages in form.errors.items()
            for message in messages
        ]
        raise ApiError("validation", errors[0].message, errors=errors)
    page = history_page(
        membership.workspace_id,
        history_query_from(form),
        page_size=query.limit,
        counted=False,
    )
    # The page read only the columns a history row shows; the API shows the whole run.
    full = runs_for_answers().in_bulk([run.pk for run in page.runs])
    items = []
    for row in page.runs:
        run = full.get(row.pk)
        if run is not None:  # deleted between the two reads
            run.price_unknown = row.price_unknown  # type: ignore[attr-defined]
            items.append(run_out(run))
    return RunPage(items=items, next_cursor=page.next_cursor)


class MetricsQueryParams(Schema):
    """The dashboards' query; every parameter as the dashboards send it."""

    workspace: UUID | None = Field(None, description="Default: the token's workspace")
    measure: list[str] = Field(
        default_factory=list, description="cost, calls, tokens, latency_p95, … (one or more)"
    )
    dimension: list[str] = Field(default_factory=list, description="Up to two to group by")
    granularity: str | None = Field(None, description="hour, day, week, auto or total")
    range: str | None = Field(None, description="24h, 7d, 30d, 90d (or from/to)")
    from_: str | None = Field(None, alias="from", description="A date or a time")
    to: str | None = None
    order: str | None = None
    limit: int | None = Field(None, ge=1, le=1000)


@metrics_router.get(
    "",
    response=dict[str, Any],
    url_name="metrics",
    summary="The dashboards' metrics query: a measure over time, grouped and filtered",
    description="As the dashboards ask it (monitoring/metrics/query.py): `measure` (repeat it), "
    "up to two `dimension`s, a filter per dimension by its name (`model=gpt-4o-mini`), "
    "`granularity`, `range` or `from`/`to`, and `order`/`limit` for top lists. A price that is "
    "not known is counted as unknown, never as zero.",
)
def metrics(request: HttpRequest, query: Query[MetricsQueryParams]) -> Any:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    params = request.GET.copy()
    params.pop("workspace", None)
    try:
        parsed = metrics_query_parse(params)
    except MetricsQueryError as error:
        raise ApiError(
            "validation", str(error), errors=[FieldError(error.parameter, str(error))]
        ) from None
    return metrics_answer(membership.workspace_id, parsed)
