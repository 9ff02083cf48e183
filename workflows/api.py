"""The public API's workflows and runs (`/api/v1/workflows`, `/api/v1/runs/{id}`): a thin edge
over the same services and access seam as the pages (see a2a_site/api for tokens and errors).
The run list, with the history's filters, is in monitoring/api.py."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status

from a2a_site.accounts.access import get_for_member
from a2a_site.accounts.models import Role
from a2a_site.api.auth import caller_of
from a2a_site.api.idempotency import idempotent
from a2a_site.api.models import Scope
from a2a_site.api.pagination import cursor_decode, cursor_encode
from a2a_site.api.problems import ApiError, FieldError, field_errors_of
from a2a_site.api.routes import workspace_of_request, workspace_to_change
from workflows.consumers import _event_page as event_page
from workflows.graph import GraphError, graph_load
from workflows.models import LaunchedVia, Run, RunPriority, Workflow, WorkflowVersion
from workflows.selectors import get_run_for_user, get_workflow_for_user
from workflows.services import runs as run_services
from workflows.services.fork import run_fork
from workflows.services.transfer import workflow_export, workflow_import
from workflows.services.workflows import (
    DraftConflict,
    workflow_create,
    workflow_delete,
    workflow_publish,
    workflow_save_draft,
    workflow_update,
    workflow_validate,
)
from workflows.spend_gate import LaunchRefused
from workflows.sse import RunEventStream, last_event_id

workflows_router = Router(tags=["workflows"])
runs_router = Router(tags=["runs"])

# --- Schemas -------------------------------------------------------------------------------------


# The draft's version for compare-and-swap: a date-time to the microsecond (the JSON encoder
# would round a datetime to milliseconds, and the swap compares exactly).
DRAFT_TIME = Field(
    json_schema_extra={"format": "date-time"},
    description="The draft's version: send it back as `base` to save safely",
)


class WorkflowOut(Schema):
    id: UUID
    workspace_id: UUID
    name: str
    description: str
    latest_version: int = Field(description="0 until the first publish")
    draft_updated_at: str = DRAFT_TIME
    created_at: datetime
    inputs: list[dict[str, Any]] = Field(
        default_factory=list, description="The input fields of the latest published version"
    )


class WorkflowPage(Schema):
    items: list[WorkflowOut]
    next_cursor: str | None


class ReportOut(Schema):
    ok: bool
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


class DraftOut(Schema):
    graph: dict[str, Any]
    draft_updated_at: str = DRAFT_TIME


class DraftIn(Schema):
    graph: dict[str, Any]
    base: datetime | None = Field(
        None, description="The `draft_updated_at` you read; a save over a newer draft is a 409"
    )
    force: bool = Field(False, description="Overwrite whatever the draft is now")


class DraftSaved(Schema):
    draft_updated_at: str = DRAFT_TIME
    report: ReportOut


class ValidateIn(Schema):
    graph: dict[str, Any] | None = Field(None, description="Without it, the stored draft")


class PublishIn(Schema):
    note: str = Field("", max_length=200)


class VersionOut(Schema):
    number: int
    note: str
    created_at: datetime
    created_by: str | None


class VersionDetail(VersionOut):
    graph: dict[str, Any]


class VersionList(Schema):
    items: list[VersionOut]


PriorityName = Literal["low", "normal", "high"]
PRIORITY_NAMES: dict[RunPriority, PriorityName] = {
    RunPriority.LOW: "low",
    RunPriority.NORMAL: "normal",
    RunPriority.HIGH: "high",
}


class LaunchIn(Schema):
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(None, ge=1, description="Default: the latest published version")
    priority: PriorityName | None = Field(
        None, description="Default: the workflow's (workers take higher-priority runs first)"
    )


class LaunchedBy(Schema):
    token_name: str
    token_prefix: str
    user: str | None


class RunOut(Schema):
    id: UUID
    workspace_id: UUID
    workflow_id: UUID
    version: int
    status: str
    reason: str
    priority: PriorityName
    inputs: dict[str, Any]
    output: Any = None
    waiting_for: dict[str, Any] | None = Field(None, description="A person's step it waits on")
    cost: str = Field(description="US dollars, as a decimal string")
    price_unknown: bool | None = Field(
        None, description="True if a call's price is unknown (the cost is then a lower bound)"
    )
    prompt_tokens: int
    completion_tokens: int
    last_seq: int
    launched_via: str
    launched_by: LaunchedBy | None = Field(
        None, description="The API token of a launch over the API or A2A, and its user"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EventOut(Schema):
    seq: int
    kind: str
    step_key: str
    data: Any
    at: datetime


class EventPage(Schema):
    events: list[EventOut]
    last_seq: int = Field(description="Pass it as `after` for the next page")
    has_more: bool
    status: str


# --- Helpers -------------------------------------------------------------------------------------


def _inputs_of(version: WorkflowVersion | None) -> list[dict[str, Any]]:
    if version is None:
        return []
    try:
        return [item.model_dump(mode="json") for item in graph_load(version.graph).inputs.fields]
    except GraphError:
        return []


def workflow_out(workflow: Workflow, version: WorkflowVersion | None = None) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.pk,
        workspace_id=workflow.workspace_id,
        name=workflow.name,
        description=workflow.description,
        latest_version=workflow.latest_version,
        draft_updated_at=workflow.draft_updated_at.isoformat(),
        created_at=workflow.created_at,
        inputs=_inputs_of(version),
    )


# What a run's answer reads: its own columns and its version's number, never the graphs.
RUN_OUT_FIELDS = (
    "id",
    "workspace_id",
    "workflow_id",
    "version__number",
    "status",
    "reason",
    "priority",
    "inputs",
    "output",
    "waiting_request",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "last_seq",
    "launched_via",
    "created_at",
    "started_at",
    "finished_at",
    "api_token__name",
    "api_token__prefix",
    "created_by__username",
)


def runs_for_answers() -> Any:
    return Run.objects.select_related("version", "api_token", "created_by").only(*RUN_OUT_FIELDS)


def _launched_by(run: Run) -> LaunchedBy | None:
    token = run.api_token if run.api_token_id else None
    if token is None:
        return None
    user = run.created_by.username if run.created_by_id and run.created_by else None
    return LaunchedBy(token_name=token.name, token_prefix=token.prefix, user=user)


def get_run_lean(user: Any, pk: Any, *, role: Any = None) -> Any:
    """The access seam's lookup of a run, reading only what an answer shows."""
    return get_for_member(runs_for_answers(), user, pk, role=role or Role.VIEWER)


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.pk,
        workspace_id=run.workspace_id,
        workflow_id=run.workflow_id,
        version=run.version.number,
        status=run.status,
        reason=run.reason,
        priority=PRIORITY_NAMES[RunPriority(run.priority)],
        inputs=run.inputs,
        output=run.output,
        waiting_for=run.waiting_request,
        cost=str(run.cost),
        price_unknown=getattr(run, "price_unknown", None),
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        last_seq=run.last_seq,
        launched_via=run.launched_via,
        launched_by=_launched_by(run),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _report_out(report: Any) -> ReportOut:
    data = report.as_json()
    return ReportOut(ok=data["ok"], errors=data["errors"], warnings=data["warnings"])


# --- Workflows -----------------------------------------------------------------------------------


class WorkflowListQuery(Schema):
    workspace: UUID | None = Field(None, description="Default: the token's workspace")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


@workflows_router.get("", response=WorkflowPage, url_name="workflow_list", summary="Workflows")
def workflow_list(request: HttpRequest, query: Query[WorkflowListQuery]) -> WorkflowPage:
    caller_of(request).require(Scope.READ)
    membership = workspace_of_request(request, query.workspace)
    rows = Workflow.objects.filter(workspace_id=membership.workspace_id).order_by("name", "id")
    if query.cursor:
        name, pk = cursor_decode(query.cursor, 2)
        rows = rows.filter(Q(name__gt=name) | Q(name=name, id__gt=pk))
    page = list(rows[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    return WorkflowPage(
        items=[workflow_out(workflow) for workflow in page],
        next_cursor=cursor_encode(page[-1].name, str(page[-1].pk)) if more else None,
    )


class WorkflowIn(Schema):
    name: str = Field(max_length=120)
    description: str = Field("", max_length=500)
    graph: dict[str, Any] | None = Field(None, description="The first draft; default: start → end")


@workflows_router.post(
    "", response={201: WorkflowOut}, url_name="workflow_create", summary="Create a workflow"
)
@idempotent
def workflow_create_view(
    request: HttpRequest, payload: WorkflowIn, workspace: UUID | None = None
) -> Any:
    caller, membership = workspace_to_change(request, workspace, Scope.WRITE)
    workflow = workflow_create(
        workspace=membership.workspace,
        user=caller.user,
        name=payload.name,
        description=payload.description,
        graph=payload.graph,
    )
    return Status(201, workflow_out(workflow))


class ImportIn(Schema):
    document: dict[str, Any] = Field(description="A document from GET /workflows/{id}/export")
    name: str | None = Field(None, max_length=120, description="Default: the document's")


class ImportOut(Schema):
    workflow: WorkflowOut
    agents_created: list[UUID]
    warnings: list[str]


@workflows_router.post(
    "/import",
    response={201: ImportOut},
    url_name="workflow_import",
    summary="Import an exported workflow (its agents too); published when it validates",
)
@idempotent
def workflow_import_view(
    request: HttpRequest, payload: ImportIn, workspace: UUID | None = None
) -> Any:
    caller, membership = workspace_to_change(request, workspace, Scope.WRITE)
    result = workflow_import(
        workspace=membership.workspace,
        user=caller.user,
        document=payload.document,
        name=payload.name,
    )
    workflow = result.workflow
    return Status(
        201,
        ImportOut(
            workflow=workflow_out(workflow, run_services.workflow_latest_version(workflow)),
            agents_created=[agent.pk for agent in result.agents_created],
            warnings=result.warnings,
        ),
    )


@workflows_router.get(
    "/{uuid:workflow_id}/export",
    response=dict[str, Any],
    url_name="workflow_export",
    summary="The workflow as a self-contained document (a version's graph and its agents)",
)
def workflow_export_view(
    request: HttpRequest, workflow_id: UUID, version: int | None = None, draft: bool = False
) -> Any:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    if version is not None and not workflow.versions.filter(number=version).exists():
        raise ApiError(
            "not-found",
            f"Version {version} of this workflow does not exist.",
            errors=[FieldError("version", "No such version.")],
        )
    draft = draft or workflow.latest_version == 0
    return workflow_export(workflow=workflow, version=version, draft=draft)


@workflows_router.get(
    "/{uuid:workflow_id}", response=WorkflowOut, url_name="workflow_detail", summary="A workflow"
)
def workflow_detail(request: HttpRequest, workflow_id: UUID) -> WorkflowOut:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    return workflow_out(workflow, run_services.workflow_latest_version(workflow))


class WorkflowPatch(Schema):
    name: str | None = Field(None, max_length=120)
    description: str | None = Field(None, max_length=500)


@workflows_router.patch(
    "/{uuid:workflow_id}",
    response=WorkflowOut,
    url_name="workflow_update",
    summary="Rename a workflow or change its description",
)
def workflow_update_view(request: HttpRequest, workflow_id: UUID, payload: WorkflowPatch) -> Any:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id, Scope.WRITE)
    workflow_update(workflow=workflow, name=payload.name, description=payload.description)
    return workflow_out(workflow, run_services.workflow_latest_version(workflow))


@workflows_router.delete(
    "/{uuid:workflow_id}",
    response={204: None},
    url_name="workflow_delete",
    summary="Delete a workflow that never ran (one with runs is refused, 422)",
)
def workflow_delete_view(request: HttpRequest, workflow_id: UUID) -> Any:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id, Scope.WRITE)
    workflow_delete(workflow=workflow)
    return HttpResponse(status=204)


@workflows_router.get(
    "/{uuid:workflow_id}/draft", response=DraftOut, url_name="workflow_draft", summary="The draft"
)
def workflow_draft(request: HttpRequest, workflow_id: UUID) -> DraftOut:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    return DraftOut(graph=workflow.draft, draft_updated_at=workflow.draft_updated_at.isoformat())


@workflows_router.put(
    "/{uuid:workflow_id}/draft",
    response={200: DraftSaved},
    url_name="workflow_draft_save",
    summary="Save the draft (compare-and-swap)",
    description="Saved as sent, valid or not; the report says what to fix before publishing. "
    "Send `base` (the `draft_updated_at` you read): if the draft changed since, nothing is "
    "written and the answer is 409 with the current `draft_updated_at`.",
)
def workflow_draft_put(request: HttpRequest, workflow_id: UUID, payload: DraftIn) -> DraftSaved:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id, Scope.WRITE)
    if payload.base is None and not payload.force:
        raise ApiError(
            "validation",
            "Send `base` (the draft_updated_at you read), or `force: true` to overwrite.",
            errors=[FieldError("base", "Required unless force is true.")],
        )
    try:
        report = workflow_save_draft(
            workflow=workflow, graph=payload.graph, expected=None if payload.force else payload.base
        )
    except DraftConflict as conflict:
        raise ApiError(
            "conflict",
            "The draft was changed since you read it; read it again and merge.",
            extra={"draft_updated_at": conflict.current.isoformat()},
        ) from None
    return DraftSaved(
        draft_updated_at=workflow.draft_updated_at.isoformat(), report=_report_out(report)
    )


@workflows_router.post(
    "/{uuid:workflow_id}/validate",
    response=ReportOut,
    url_name="workflow_validate",
    summary="Validate a graph (or the draft)",
)
def workflow_validate_view(request: HttpRequest, workflow_id: UUID, payload: ValidateIn) -> Any:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    graph = payload.graph if payload.graph is not None else workflow.draft
    return _report_out(workflow_validate(workspace_id=workflow.workspace_id, graph=graph))


@workflows_router.post(
    "/{uuid:workflow_id}/publish",
    response={201: VersionOut},
    url_name="workflow_publish",
    summary="Publish the draft as the next version",
)
@idempotent
def workflow_publish_view(request: HttpRequest, workflow_id: UUID, payload: PublishIn) -> Any:
    caller = caller_of(request)
    workflow, _ = caller.lookup(get_workflow_for_user, workflow_id, Scope.WRITE)
    version = workflow_publish(workflow=workflow, user=caller.user, note=payload.note)
    return Status(201, _version_out(version))


def _version_out(version: WorkflowVersion) -> VersionOut:
    return VersionOut(
        number=version.number,
        note=version.note,
        created_at=version.created_at,
        created_by=version.created_by.get_username() if version.created_by else None,
    )


@workflows_router.get(
    "/{uuid:workflow_id}/versions",
    response=VersionList,
    url_name="workflow_versions",
    summary="Published versions, newest first",
)
def workflow_versions(request: HttpRequest, workflow_id: UUID) -> VersionList:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    versions = workflow.versions.select_related("created_by").order_by("-number")
    return VersionList(items=[_version_out(version) for version in versions])


@workflows_router.get(
    "/{uuid:workflow_id}/versions/{int:number}",
    response=VersionDetail,
    url_name="workflow_version",
    summary="One version, with its graph",
)
def workflow_version(request: HttpRequest, workflow_id: UUID, number: int) -> VersionDetail:
    workflow, _ = caller_of(request).lookup(get_workflow_for_user, workflow_id)
    version = workflow.versions.select_related("created_by").filter(number=number).first()
    if version is None:
        raise ApiError("not-found", f"Version {number} of this workflow does not exist.")
    return VersionDetail(**_version_out(version).model_dump(), graph=version.graph)


@workflows_router.post(
    "/{uuid:workflow_id}/runs",
    response={201: RunOut},
    url_name="run_launch",
    summary="Launch a run",
    description="Starts a run of the latest published version (or `version`) with `inputs`. "
    "Send an `Idempotency-Key` to retry safely: the same key never starts a second run.",
)
@idempotent
def run_launch(request: HttpRequest, workflow_id: UUID, payload: LaunchIn) -> Any:
    caller = caller_of(request)
    workflow, _ = caller.lookup(get_workflow_for_user, workflow_id, Scope.RUN)
    version = None
    if payload.version is not None:
        version = workflow.versions.filter(number=payload.version).first()
        if version is None:
            raise ApiError(
                "validation",
                f"Version {payload.version} of this workflow does not exist.",
                errors=[FieldError("version", "No such version.")],
            )
    try:
        run = run_services.run_start(
            workflow=workflow,
            user=caller.user,
            inputs=payload.inputs,
            version=version,
            launched_via=LaunchedVia.API,
            priority=payload.priority,
            api_token=caller.token,
        )
    except LaunchRefused as refused:
        raise ApiError("refused", refused.messages[0], extra={"refused_by": "budget"}) from None
    except ValidationError as error:
        errors = [
            FieldError(
                item.field if item.field == "priority" else f"inputs.{item.field}".rstrip("."),
                item.message,
            )
            for item in field_errors_of(error)
        ]
        raise ApiError("validation", errors[0].message, errors=errors) from None
    return Status(201, run_out(run))


# --- Runs ----------------------------------------------------------------------------------------


@runs_router.get("/{uuid:run_id}", response=RunOut, url_name="run_detail", summary="A run")
def run_detail(request: HttpRequest, run_id: UUID) -> RunOut:
    run, _ = caller_of(request).lookup(get_run_lean, run_id)
    return run_out(run)


@runs_router.post(
    "/{uuid:run_id}/cancel", response=RunOut, url_name="run_cancel", summary="Cancel a run"
)
@idempotent
def run_cancel(request: HttpRequest, run_id: UUID) -> Any:
    caller = caller_of(request)
    run, _ = caller.lookup(get_run_for_user, run_id, Scope.RUN)
    return run_out(run_services.run_cancel(run=run, user=caller.user))


class AnswerIn(Schema):
    step_key: str = Field(description="The `step_key` of the run's `waiting_for`")
    answer: Any = Field(
        description='For a question, the text; for an approval, {"approved": true|false, '
        '"comment": "…"}'
    )


@runs_router.post(
    "/{uuid:run_id}/answer",
    response=RunOut,
    url_name="run_answer",
    summary="Answer the person's step a run waits on",
)
@idempotent
def run_answer(request: HttpRequest, run_id: UUID, payload: AnswerIn) -> Any:
    caller = caller_of(request)
    run, _ = caller.lookup(get_run_for_user, run_id, Scope.RUN)
    if payload.answer is None or (isinstance(payload.answer, str) and not payload.answer.strip()):
        raise ApiError(
            "validation", "Write an answer first.", errors=[FieldError("answer", "Empty.")]
        )
    try:
        run = run_services.run_answer(
            run=run, step_key=payload.step_key, answer=payload.answer, user=caller.user
        )
    except ValidationError as error:
        raise ApiError("conflict", " ".join(error.messages)) from None
    return run_out(run)


@runs_router.post(
    "/{uuid:run_id}/retry",
    response=RunOut,
    url_name="run_retry",
    summary="Retry a failed run from its failed step (finished steps are kept)",
)
@idempotent
def run_retry(request: HttpRequest, run_id: UUID) -> Any:
    caller = caller_of(request)
    run, _ = caller.lookup(get_run_for_user, run_id, Scope.RUN)
    try:
        run = run_services.run_retry(run=run, user=caller.user)
    except LaunchRefused as refused:
        raise ApiError("refused", refused.messages[0], extra={"refused_by": "budget"}) from None
    except ValidationError as error:
        raise ApiError("conflict", " ".join(error.messages)) from None
    return run_out(run)


class ForkIn(Schema):
    step_key: str = Field(description="The step to start again from (a step of the run)")
    version: int | None = Field(None, ge=1, description="Default: the run's own version")
    inputs: dict[str, Any] | None = Field(None, description="Default: the run's inputs")
    variables: dict[str, Any] | None = Field(
        None, description="Variables to set at that step (the rest as they were)"
    )


@runs_router.post(
    "/{uuid:run_id}/fork",
    response={201: RunOut},
    url_name="run_fork",
    summary="Fork a run from one of its steps",
)
@idempotent
def run_fork_view(request: HttpRequest, run_id: UUID, payload: ForkIn) -> Any:
    caller = caller_of(request)
    run, _ = caller.lookup(get_run_for_user, run_id, Scope.RUN)
    version = None
    if payload.version is not None:
        version = run.workflow.versions.filter(number=payload.version).first()
        if version is None:
            raise ApiError(
                "validation",
                f"Version {payload.version} of this workflow does not exist.",
                errors=[FieldError("version", "No such version.")],
            )
    try:
        fork = run_fork(
            run=run,
            step_key=payload.step_key,
            user=caller.user,
            version=version,
            inputs=payload.inputs,
            variables=payload.variables,
            launched_via=LaunchedVia.API,
        )
    except LaunchRefused as refused:
        raise ApiError("refused", refused.messages[0], extra={"refused_by": "budget"}) from None
    except ValidationError as error:
        errors = field_errors_of(error)
        raise ApiError("validation", errors[0].message, errors=errors) from None
    return Status(201, run_out(fork))


class EventQuery(Schema):
    after: int = Field(0, ge=0, lt=2**63, description="The last seq you have; 0 for all")
    limit: int = Field(200, ge=1, le=1000)


@runs_router.get(
    "/{uuid:run_id}/events",
    response=EventPage,
    url_name="run_events",
    summary="A run's events after a seq (JSON pages, or live as Server-Sent Events)",
    description="With `Accept: text/event-stream` the answer is a stream: the stored events "
    "after `after` (or `Last-Event-ID`), then live ones, token deltas and status changes, "
    "ending after the final status — the same replay-then-live feed as the run page. Each "
    "stored event's `id` is a seq up to which everything was sent: reconnecting with it as "
    "`Last-Event-ID` loses nothing (events may repeat; keep each seq once).",
    openapi_extra={
        "responses": {
            200: {
                "description": "A page of events, or the live stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    },
)
def run_events(request: HttpRequest, run_id: UUID, query: Query[EventQuery]) -> Any:
    caller = caller_of(request)
    run, _ = caller.lookup(get_run_for_user, run_id)
    if "text/event-stream" in request.headers.get("Accept", ""):
        after = last_event_id(request.headers.get("Last-Event-ID"), query.after)
        stream = RunEventStream(run_id=str(run.pk), user=caller.user)
        response = StreamingHttpResponse(
            stream.frames_after(after), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # a proxy must pass each frame on at once
        return response
    rows = event_page(str(run.pk), query.after, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return EventPage(
        events=[EventOut(**row) for row in rows],
        last_seq=rows[-1]["seq"] if rows else query.after,
        has_more=more,
        status=run.status,
    )
