from django.http import HttpResponse
from django.shortcuts import render

from a2a_site.accounts.decorators import workspace_required
from a2a_site.http import AuthedRequest


@workspace_required()
def agent_list(request: AuthedRequest) -> HttpResponse:
    return render(request, "agents/agent_list.html")
