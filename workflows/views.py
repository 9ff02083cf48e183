from django.http import HttpResponse
from django.shortcuts import render

from a2a_site.accounts.decorators import workspace_required
from a2a_site.http import AuthedRequest


@workspace_required()
def workflow_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "workflows/workflow_list.html")


@workspace_required()
def run_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "workflows/run_list.html")
