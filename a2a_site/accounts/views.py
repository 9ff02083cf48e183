"""Sign-up, throttled log-in and password reset, workspaces and members. Thin views: look up,
authorize, call a service, render."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from a2a_site.accounts import services
from a2a_site.accounts.access import get_membership_for_user
from a2a_site.accounts.forms import (
    DeleteWorkspaceForm,
    InviteForm,
    LoginForm,
    RoleForm,
    SignupForm,
    SignupPasswordForm,
    WorkspaceForm,
)
from a2a_site.accounts.models import AuthAttempt, Membership, Role, User
from a2a_site.accounts.selectors import SESSION_WORKSPACE_KEY, members_of, memberships_of
from a2a_site.accounts.settings_sections import settings_sections_for
from a2a_site.accounts.throttle import Throttled, attempt_begin, client_address
from a2a_site.forms import form_add_errors
from a2a_site.http import AuthedRequest, HtmxRequest


def _make_current(request: AuthedRequest, workspace_id: UUID) -> None:
    request.session[SESSION_WORKSPACE_KEY] = str(workspace_id)


def _throttled(response: HttpResponse, throttled: Throttled) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(throttled.retry_after_seconds)
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Log-in; the backend counts the attempts (throttle.py), the form names the wait."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        throttled = getattr(self.request, "login_throttled", None)
        return response if throttled is None else _throttled(response, throttled)


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    def form_valid(self, form: Form) -> HttpResponse:
        outcome = attempt_begin(
            action=AuthAttempt.Action.PASSWORD_RESET,
            account=form.cleaned_data["email"],
            address=client_address(self.request),
        )
        if isinstance(outcome, Throttled):
            form.add_error(None, outcome.message)
            return _throttled(self.form_invalid(form), outcome)
        return super().form_valid(form)


@require_http_methods(["GET", "POST"])
def signup(request: HtmxRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        return render(request, "accounts/signup_closed.html", status=403)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        outcome = attempt_begin(
            action=AuthAttempt.Action.SIGNUP,
            account=form.cleaned_data["email"],
            address=client_address(request),
        )
        if isinstance(outcome, Throttled):
            form.add_error(None, outcome.message)
            response = render(request, "accounts/signup.html", {"form": form})
            return _throttled(response, outcome)
        services.signup_request(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            site_url=request.build_absolute_uri("/"),
        )
        return redirect("signup_sent")
    return render(request, "accounts/signup.html", {"form": form})


@require_http_methods(["GET"])
def signup_sent(request: HtmxRequest) -> HttpResponse:
    console = settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
    return render(
        request,
        "accounts/signup_sent.html",
        {"hours": settings.SIGNUP_LINK_SECONDS // 3600, "console_email": console},
    )


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HtmxRequest, token: str) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        return render(request, "accounts/signup_closed.html", status=403)
    if request.user.is_authenticated:
        return redirect("home")
    claim = services.signup_token_read(token)
    if claim is None:
        expired = {"used": False, "hours": settings.SIGNUP_LINK_SECONDS // 3600}
        return render(request, "accounts/signup_link_invalid.html", expired, status=400)
    username, email = claim
    if services.signup_taken(username=username, email=email):
        return render(request, "accounts/signup_link_invalid.html", {"used": True}, status=409)
    form = SignupPasswordForm(request.POST or None, user=User(username=username, email=email))
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(
                username=username, email=email, password=form.cleaned_data["password1"]
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, f"Welcome to A2A Studio, {user.username}.")
            return redirect("home")
    context: dict[str, object] = {"form": form, "username": username, "email": email}
    return render(request, "accounts/signup_confirm.html", context)


@login_required
@require_http_methods(["GET"])
def workspace_list(request: AuthedRequest) -> HttpResponse:
    return render(
        request,
        "accounts/workspace_list.html",
        {"memberships": memberships_of(request.user), "form": WorkspaceForm()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: AuthedRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.workspace_create(
                user=request.user,
                name=form.cleaned_data["name"],
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            _make_current(request, workspace.id)
            messages.success(request, f"Workspace “{workspace.name}” is ready and now current.")
            return redirect("home")
    return render(request, "accounts/workspace_create.html", {"form": form})


@login_required
@require_POST
def workspace_switch(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id)
    _make_current(request, membership.workspace_id)
    target = request.POST.get("next", "")
    # A path of this site, never a view name: `redirect()` would try to reverse any other text.
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect("home")
    return HttpResponseRedirect(target)


@login_required
def workspace_settings_current(request: AuthedRequest) -> HttpResponse:
    membership = request.membership
    if membership is None:
        return redirect("home")
    return redirect("workspace_settings", workspace_id=membership.workspace_id)


def _settings_context(membership: Membership, **forms: Form) -> dict[str, object]:
    workspace = membership.workspace
    context: dict[str, object] = {
        "membership": membership,
        "workspace": workspace,
        "members": members_of(workspace.id),
        "is_owner": membership.allows(Role.OWNER),
        "roles": list(Role),
        "rename_form": WorkspaceForm(initial={"name": workspace.name}),
        "invite_form": InviteForm(),
        "delete_form": DeleteWorkspaceForm(),
        "sections": settings_sections_for(membership),
    }
    context.update(forms)
    return context


def _render_settings(
    request: AuthedRequest, membership: Membership, *, status: int = 200, **forms: Form
) -> HttpResponse:
    context = _settings_context(membership, **forms)
    if request.htmx:
        return render(request, "accounts/_members.html", context, status=status)
    return render(request, "accounts/workspace_settings.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def workspace_settings(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id)
    return render(request, "accounts/workspace_settings.html", _settings_context(membership))


@login_required
@require_POST
def workspace_rename(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    form = WorkspaceForm(request.POST)
    if form.is_valid():
        try:
            services.workspace_rename(
                workspace=membership.workspace, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(request, "Workspace renamed.")
            return redirect("workspace_settings", workspace_id=workspace_id)
    context = _settings_context(membership, rename_form=form)
    return render(request, "accounts/workspace_settings.html", context, status=400)


@login_required
@require_POST
def member_invite(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invited = services.membership_invite(
                workspace=membership.workspace,
                invited_by=request.user,
                identifier=form.cleaned_data["identifier"],
                role=Role(form.cleaned_data["role"]),
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(
                request, f"{invited.user.username} joined as {invited.role_enum.label.lower()}."
            )
            if request.htmx:
                return _render_settings(request, membership)
            return redirect("workspace_settings", workspace_id=workspace_id)
    return _render_settings(request, membership, status=400, invite_form=form)


def _member_of_workspace(workspace_id: UUID, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "workspace"),
        pk=membership_id,
        workspace_id=workspace_id,
    )


@login_required
@require_POST
def member_role(request: AuthedRequest, workspace_id: UUID, membership_id: int) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    target = _member_of_workspace(workspace_id, membership_id)
    form = RoleForm(request.POST)
    status = 200
    if not form.is_valid():
        messages.error(request, "Choose owner, editor or viewer.")
        status = 400
    else:
        try:
            services.membership_change_role(membership=target, role=Role(form.cleaned_data["role"]))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            status = 400
        else:
            messages.success(
                request, f"{target.user.username} is now {target.role_enum.label.lower()}."
            )
    if request.htmx:
        return _render_settings(request, membership, status=status)
    return redirect("workspace_settings", workspace_id=workspace_id)


@login_required
@require_POST
def member_remove(request: AuthedRequest, workspace_id: UUID, membership_id: int) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    target = _member_of_workspace(workspace_id, membership_id)
    if target.pk == membership.pk:
        messages.error(request, "To remove yourself, use “Leave workspace”.")
        status = 400
    else:
        try:
            services.membership_remove(membership=target)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            status = 400
        else:
            messages.success(request, f"{target.user.username} was removed.")
            status = 200
    if request.htmx:
        return _render_settings(request, membership, status=status)
    return redirect("workspace_settings", workspace_id=workspace_id)


@login_required
@require_POST
def workspace_leave(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id)
    try:
        services.membership_remove(membership=membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("workspace_settings", workspace_id=workspace_id)
    messages.success(request, f"You left “{membership.workspace.name}”.")
    return redirect("workspace_list")


@login_required
@require_POST
def workspace_delete(request: AuthedRequest, workspace_id: UUID) -> HttpResponse:
    membership = get_membership_for_user(request.user, workspace_id, role=Role.OWNER)
    form = DeleteWorkspaceForm(request.POST)
    if form.is_valid():
        name = membership.workspace.name
        try:
            services.workspace_delete(
                workspace=membership.workspace, confirm_name=form.cleaned_data["confirm_name"]
            )
        except ValidationError as error:
            form_add_errors(form, error)
        else:
            messages.success(request, f"Workspace “{name}” and everything in it was deleted.")
            return redirect("workspace_list")
    context = _settings_context(membership, delete_form=form)
    return render(request, "accounts/workspace_settings.html", context, status=400)
