"""The API's own resources: the caller's token, and workspaces (read)."""

from datetime import datetime
from uuid import UUID

from django.http import Http404, HttpRequest
from ninja import Router, Schema

from a2a_site.accounts.access import get_membership_for_user, require_role
from a2a_site.accounts.models import Membership
from a2a_site.api.auth import ApiCaller, caller_of
from a2a_site.api.models import Scope
from a2a_site.api.problems import ApiError, FieldError

router = Router(tags=["tokens and workspaces"])


class UserOut(Schema):
    id: int
    username: str


class TokenOut(Schema):
    id: UUID
    name: str
    kind: str
    prefix: str
    scope: str
    workspace_id: UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class MeOut(Schema):
    user: UserOut
    scope: str
    token: TokenOut | None = None


@router.get("/me", response=MeOut, url_name="me", summary="The caller and their token")
def me(request: HttpRequest) -> MeOut:
    caller = caller_of(request)
    token = caller.token
    return MeOut(
        user=UserOut(id=caller.user.pk, username=caller.user.get_username()),
        scope=caller.scope.value,
        token=TokenOut.model_validate(token, from_attributes=True) if token else None,
    )


class WorkspaceOut(Schema):
    id: UUID
    name: str
    role: str
    created_at: datetime


class WorkspaceList(Schema):
    items: list[WorkspaceOut]


def _workspace_out(membership: Membership) -> WorkspaceOut:
    workspace = membership.workspace
    return WorkspaceOut(
        id=workspace.pk, name=workspace.name, role=membership.role, created_at=workspace.created_at
    )


@router.get(
    "/workspaces", response=WorkspaceList, url_name="workspace_list", summary="Your workspaces"
)
def workspace_list(request: HttpRequest) -> WorkspaceList:
    caller = caller_of(request)
    caller.require(Scope.READ)
    memberships = Membership.objects.filter(user=caller.user).select_related("workspace")
    if caller.workspace_id is not None:
        memberships = memberships.filter(workspace_id=caller.workspace_id)
    return WorkspaceList(items=[_workspace_out(m) for m in memberships.order_by("workspace__name")])


@router.get(
    "/workspaces/{uuid:workspace_id}",
    response=WorkspaceOut,
    url_name="workspace_detail",
    summary="One workspace",
)
def workspace_detail(request: HttpRequest, workspace_id: UUID) -> WorkspaceOut:
    caller = caller_of(request)
    caller.require(Scope.READ)
    if not caller.sees_workspace(workspace_id):
        raise Http404
    return _workspace_out(get_membership_for_user(caller.user, workspace_id))


def workspace_of_request(request: HttpRequest, given: UUID | None) -> Membership:
    """The workspace a list is about: the one given, else the token's, else the browser's
    current one; a caller who could mean several is asked to say which."""
    caller = caller_of(request)
    workspace_id = given or caller.workspace_id
    if workspace_id is None:
        current = getattr(request, "membership", None)
        if caller.token is None and current is not None:
            workspace_id = current.workspace_id
        else:
            only = list(
                Membership.objects.filter(user=caller.user).values_list("workspace_id", flat=True)[
                    :2
                ]
            )
            if len(only) != 1:
                raise ApiError(
                    "validation",
                    "Say which workspace: pass `workspace` (GET /api/v1/workspaces lists them).",
                    errors=[FieldError("workspace", "Required: you belong to several.")],
                )
            workspace_id = only[0]
    if not caller.sees_workspace(workspace_id):
        raise Http404
    return get_membership_for_user(caller.user, workspace_id)


def workspace_to_change(
    request: HttpRequest, given: UUID | None, scope: Scope
) -> tuple[ApiCaller, Membership]:
    """For an endpoint that creates in a workspace: the token's scope first, then the workspace
    (as `workspace_of_request` finds it) and the caller's role there, both at least `scope`'s."""
    caller = caller_of(request)
    caller.require(scope)
    membership = workspace_of_request(request, given)
    require_role(membership, scope.role_needed)
    return caller, membership
