from django.http import HttpResponse
from django.shortcuts import render

from a2a_site.accounts.decorators import workspace_required
from a2a_site.http import AuthedRequest
from monitoring import health
from monitoring.selectors import workers_overview


@workspace_required()
def overview(request: AuthedRequest) -> HttpResponse:
    context = {
        "probes": [health.probe_database(), health.probe_redis(), health.probe_execution()],
        "process": health.this_process(),
        "workers": workers_overview(),
    }
    template = "monitoring/_health.html" if request.htmx else "monitoring/overview.html"
    return render(request, template, context)
