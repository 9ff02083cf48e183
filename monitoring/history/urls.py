from django.urls import path

from monitoring.history import views

urlpatterns = [
    path("runs/", views.run_list, name="run_list"),
    path("runs/export.csv", views.run_export, {"fmt": "csv"}, name="run_export_csv"),
    path("runs/export.json", views.run_export, {"fmt": "json"}, name="run_export_json"),
    path("runs/bulk/", views.run_bulk, name="run_bulk"),
    path("runs/<uuid:run_id>/pin/", views.run_pin, name="run_pin"),
    path("workflows/<uuid:workflow_id>/runs/", views.workflow_runs, name="workflow_runs"),
    path(
        "workspaces/<uuid:workspace_id>/retention/",
        views.workspace_retention,
        name="workspace_retention",
    ),
]
