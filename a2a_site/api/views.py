"""Pages of the API: the token settings page and the interactive reference."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from a2a_site.accounts.models import Role
from a2a_site.api.forms import TokenCreateForm
from a2a_site.api.tokens import (
    NewToken,
    service_tokens_of,
    token_create,
    token_for_revoking,
    token_revoke,
    tokens_of_user,
)
from a2a_site.http import AuthedRequest


def _context(request: AuthedRequest, form: TokenCreateForm | None = None, **extra: object) -> dict:
    membership = request.membership
    is_owner = membership is not None and membership.allows(Role.OWNER)
    if form is None:
        form = TokenCreateForm(
            workspace_name=membership.workspace.name if membership else None, is_owner=is_owner
        )
    return {
        "form": form,
        "tokens": list(tokens_of_user(request.user)),
        "service_tokens": list(service_tokens_of(membership.workspace_id)) if membership else [],
        "membership": membership,
        "is_owner": is_owner,
        "api_base": request.build_absolute_uri("/api/v1/"),
        **extra,
    }


def _page(request: AuthedRequest, context: dict, status: int = 200) -> HttpResponse:
    template = "api/_tokens.html" if request.htmx else "api/tokens.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def api_tokens(request: AuthedRequest) -> HttpResponse:
    return _page(request, _context(request))


@login_required
@require_POST
def api_token_create(request: AuthedRequest) -> HttpResponse:
    membership = request.membership
    is_owner = membership is not None and membership.allows(Role.OWNER)
    form = TokenCreateForm(
        request.POST,
        workspace_name=membership.workspace.name if membership else None,
        is_owner=is_owner,
    )
    if not form.is_valid():
        return _page(request, _context(request, form), status=400)
    reach = form.cleaned_data["reach"]
    try:
        created: NewToken = token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            kind=form.kind,
            workspace=membership.workspace if membership and reach != "all" else None,
            expires_in_days=form.expires_in_days,
        )
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            for message in messages:
                form.add_error(field if field in form.fields else None, message)
        return _page(request, _context(request, form), status=400)
    except PermissionDenied as denied:
        form.add_error("reach", str(denied))
        return _page(request, _context(request, form), status=403)
    return _page(request, _context(request, created=created))


@login_required
@require_POST
def api_token_revoke(request: AuthedRequest, token_id: UUID) -> HttpResponse:
    token = token_for_revoking(request.user, token_id)
    token_revoke(token=token)
    return _page(request, _context(request, revoked=token))


@require_http_methods(["GET", "HEAD"])
def api_reference(request: AuthedRequest) -> HttpResponse:
    """The interactive reference (Swagger UI, vendored) over /api/v1/openapi.json."""
    return render(request, "api/reference.html", {"schema_url": reverse("api:openapi-json")})
