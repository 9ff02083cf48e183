from django.urls import path

import a2a_site.converters  # noqa: F401  (registers <id:…>)
from workflows import builder_views, fork_views, views
from workflows.a2a import views as a2a_views
from workflows.mcp import views as mcp_views

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow_list"),
    path("workflows/from-template/", views.workflow_from_template, name="workflow_from_template"),
    path("workflows/new/", builder_views.workflow_new, name="workflow_new"),
    path("workflows/<uuid:workflow_id>/", views.workflow_detail, name="workflow_detail"),
    path("workflows/<uuid:workflow_id>/a2a/", a2a_views.workflow_a2a, name="workflow_a2a"),
    path(
        "workflows/<uuid:workflow_id>/builder/",
        builder_views.workflow_builder,
        name="workflow_builder",
    ),
    path(
        "workflows/<uuid:workflow_id>/draft/",
        builder_views.workflow_draft_save,
        name="workflow_draft_save",
    ),
    path(
        "workflows/<uuid:workflow_id>/publish/",
        builder_views.workflow_publish_view,
        name="workflow_publish",
    ),
    path(
        "workflows/<uuid:workflow_id>/node-form/",
        builder_views.workflow_node_form,
        name="workflow_node_form",
    ),
    path(
        "workflows/<uuid:workflow_id>/interface-form/",
        builder_views.workflow_interface_form,
        name="workflow_interface_form",
    ),
    path(
        "workflows/<uuid:workflow_id>/settings-form/",
        builder_views.workflow_settings_form,
        name="workflow_settings_form",
    ),
    path(
        "workflows/<uuid:workflow_id>/versions/<id:number>.json",
        builder_views.workflow_version_json,
        name="workflow_version_json",
    ),
    path("workflows/<uuid:workflow_id>/diff/", builder_views.workflow_diff, name="workflow_diff"),
    path(
        "workflows/<uuid:workflow_id>/import/",
        builder_views.workflow_import_graph,
        name="workflow_import_graph",
    ),
    path(
        "workflows/<uuid:workflow_id>/template/",
        builder_views.workflow_template_graph,
        name="workflow_template_graph",
    ),
    path(
        "workflows/<uuid:workflow_id>/agents/new/",
        builder_views.workflow_agent_new,
        name="workflow_agent_new",
    ),
    path("workflows/<uuid:workflow_id>/run/", views.workflow_run, name="workflow_run"),
    path(
        "workflows/<uuid:workflow_id>/mcp/",
        mcp_views.workflow_mcp_offer_view,
        name="workflow_mcp_offer",
    ),
    path(
        "workflows/<uuid:workflow_id>/playground/",
        views.workflow_playground,
        name="workflow_playground",
    ),
    path(
        "workflows/<uuid:workflow_id>/playground/send/",
        views.workflow_playground_send,
        name="workflow_playground_send",
    ),
    path("workflows/<uuid:workflow_id>/runs.json", views.workflow_run_api, name="workflow_run_api"),
    path(
        "workflows/<uuid:workflow_id>/export/", views.workflow_export_view, name="workflow_export"
    ),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/nodes.json", views.run_nodes_json, name="run_nodes_json"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<uuid:run_id>/answer/", views.run_answer, name="run_answer"),
    path("runs/<uuid:run_id>/retry/", views.run_retry, name="run_retry"),
    path("runs/<uuid:run_id>/again/", views.run_rerun, name="run_rerun"),
    path("runs/<uuid:run_id>/fork/", fork_views.run_fork_view, name="run_fork"),
]
