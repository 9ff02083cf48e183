"""The public API, version 1, assembled: the composition root that mounts each app's router
(as a2a_site/urls.py does for pages). Mounted at /api/v1/ by a2a_site/urls.py."""

from __future__ import annotations

from a2a_site.api.routes import router as own_router
from a2a_site.api.site import build_api
from agents.api import agents_router, providers_router
from monitoring.api import metrics_router
from monitoring.api import router as run_list_router
from workflows.api import runs_router, workflows_router
from workflows.webhooks.api import router as webhooks_router

api = build_api()
api.add_router("", own_router)
api.add_router("/providers", providers_router)
api.add_router("/agents", agents_router)
api.add_router("/workflows", workflows_router)
api.add_router("/runs", run_list_router)
api.add_router("/runs", runs_router)
api.add_router("/metrics", metrics_router)
api.add_router("/webhooks", webhooks_router)
