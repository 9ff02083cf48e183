from django.contrib import admin
from django.urls import include, path

from a2a_site import views
from a2a_site.api.v1 import api
from monitoring.prometheus.views import metrics
from monitoring.urls import dashboard_urlpatterns

urlpatterns = [
    path("", views.home, name="home"),
    path("", include(dashboard_urlpatterns)),
    path("", include("a2a_site.accounts.urls")),
    path("agents/", include("agents.urls")),
    path("", include("monitoring.history.urls")),
    path("", include("workflows.urls")),
    path("", include("monitoring.run_urls")),
    path("monitoring/", include("monitoring.urls")),
    path("budgets/", include("monitoring.budgets.urls")),
    path("alerts/", include("monitoring.alerts.urls")),
    path("workspace/webhooks/", include("workflows.webhooks.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("", include("a2a_site.api.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
