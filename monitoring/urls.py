from django.urls import path

from monitoring import views

urlpatterns = [
    path("", views.overview, name="monitoring_overview"),
    path("fleet/", views.fleet, name="monitoring_fleet"),
    path("capacity/", views.capacity, name="monitoring_capacity"),
    path("capacity/apply/", views.capacity_apply, name="monitoring_capacity_apply"),
]

# Mounted at the site's root: the dashboards, their tabs on agents and workflows, the metrics API.
dashboard_urlpatterns = [
    path("dashboards/", views.dashboards, name="dashboards"),
    path("dashboards/agents-report.<str:fmt>", views.dashboard_report, name="dashboard_report"),
    path("agents/<uuid:agent_id>/dashboard/", views.agent_dashboard, name="agent_dashboard"),
    path(
        "workflows/<uuid:workflow_id>/dashboard/",
        views.workflow_dashboard,
        name="workflow_dashboard",
    ),
    path("api/metrics/query", views.metrics_query, name="metrics_query"),
]
