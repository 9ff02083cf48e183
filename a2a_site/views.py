from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from a2a_site.accounts.forms import WorkspaceForm
from a2a_site.http import AuthedRequest


@login_required
@require_GET
def home(request: AuthedRequest) -> HttpResponse:
    if request.membership is None:
        return render(request, "home/welcome.html", {"form": WorkspaceForm()})
    from agents.models import Agent, Provider
    from workflows.models import Run, Workflow

    workspace_id = request.membership.workspace_id
    progress = {
        "providers": Provider.objects.filter(workspace_id=workspace_id).count(),
        "agents": Agent.objects.filter(workspace_id=workspace_id).count(),
        "workflows": Workflow.objects.filter(workspace_id=workspace_id).count(),
        "runs": Run.objects.filter(workspace_id=workspace_id).count(),
    }
    return render(
        request, "home/overview.html", {"membership": request.membership, "progress": progress}
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers: answers 200 while this process can reach its database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means unhealthy; the class says why
        return JsonResponse({"status": "error", "database": type(error).__name__}, status=503)
    return JsonResponse({"status": "ok"})
