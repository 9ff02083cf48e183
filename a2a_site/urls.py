from django.contrib import admin
from django.urls import include, path

from a2a_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("a2a_site.accounts.urls")),
    path("agents/", include("agents.urls")),
    path("", include("monitoring.history.urls")),
    path("", include("workflows.urls")),
    path("monitoring/", include("monitoring.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
