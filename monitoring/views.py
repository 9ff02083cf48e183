from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from a2a_site.accounts.decorators import workspace_required
from a2a_site.http import AuthedRequest
from monitoring import health
from workflows.models import Worker
from workflows.workers import is_alive


@workspace_required()
def overview(request: AuthedRequest) -> HttpResponse:
    now = timezone.now()
    workers = [(worker, is_alive(worker, now=now)) for worker in Worker.objects.all()[:50]]
    context = {
        "probes": [health.probe_database(), health.probe_redis(), health.probe_execution()],
        "process": health.this_process(),
        "workers": workers,
    }
    template = "monitoring/_health.html" if request.htmx else "monitoring/overview.html"
    return render(request, template, context)
