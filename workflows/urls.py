from django.urls import path

from workflows import views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow_list"),
    path("workflows/from-template/", views.workflow_from_template, name="workflow_from_template"),
    path("workflows/<uuid:workflow_id>/", views.workflow_detail, name="workflow_detail"),
    path("workflows/<uuid:workflow_id>/run/", views.workflow_run, name="workflow_run"),
    path("workflows/<uuid:workflow_id>/runs.json", views.workflow_run_api, name="workflow_run_api"),
    path(
        "workflows/<uuid:workflow_id>/export/", views.workflow_export_view, name="workflow_export"
    ),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<uuid:run_id>/answer/", views.run_answer, name="run_answer"),
    path("runs/<uuid:run_id>/retry/", views.run_retry, name="run_retry"),
    path("runs/<uuid:run_id>/again/", views.run_rerun, name="run_rerun"),
]
