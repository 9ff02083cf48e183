from django.urls import path

import a2a_site.converters  # noqa: F401  (registers <id:…>)
from agents import middleware_views, playground, price_views, views
from agents.mcp import views as mcp_views
from agents.remote import views as remote_views

urlpatterns = [
    path("", views.agent_list, name="agent_list"),
    path("new/", views.agent_create, name="agent_create"),
    path("<uuid:agent_id>/", views.agent_detail, name="agent_detail"),
    path("<uuid:agent_id>/edit/", views.agent_edit, name="agent_edit"),
    path("<uuid:agent_id>/duplicate/", views.agent_duplicate, name="agent_duplicate"),
    path("<uuid:agent_id>/delete/", views.agent_delete, name="agent_delete"),
    path("<uuid:agent_id>/playground/", views.agent_playground, name="agent_playground"),
    path(
        "<uuid:agent_id>/playground/stream/",
        playground.playground_stream,
        name="agent_playground_stream",
    ),
    path("mcp/", mcp_views.mcp_server_list, name="agent_mcp_servers"),
    path("mcp/new/", mcp_views.mcp_server_create, name="agent_mcp_server_create"),
    path("mcp/<uuid:server_id>/", mcp_views.mcp_server_detail, name="agent_mcp_server_detail"),
    path("mcp/<uuid:server_id>/edit/", mcp_views.mcp_server_edit, name="agent_mcp_server_edit"),
    path(
        "mcp/<uuid:server_id>/delete/", mcp_views.mcp_server_delete, name="agent_mcp_server_delete"
    ),
    path("mcp/<uuid:server_id>/tools/", mcp_views.mcp_server_tools, name="agent_mcp_server_tools"),
    path(
        "mcp/<uuid:server_id>/tools/<str:tool>/test/",
        mcp_views.mcp_tool_test,
        name="agent_mcp_tool_test",
    ),
    path("providers/", views.provider_list, name="provider_list"),
    path("tool-hosts/", views.tool_host_policy_edit, name="tool_host_policy"),
    path("remote-agents/", remote_views.remote_agent_list, name="remote_agent_list"),
    path("remote-agents/card/", remote_views.remote_agent_card, name="remote_agent_card"),
    path(
        "remote-agents/<uuid:remote_agent_id>/",
        remote_views.remote_agent_edit,
        name="remote_agent_edit",
    ),
    path(
        "remote-agents/<uuid:remote_agent_id>/refresh/",
        remote_views.remote_agent_refresh,
        name="remote_agent_refresh",
    ),
    path(
        "remote-agents/<uuid:remote_agent_id>/delete/",
        remote_views.remote_agent_delete,
        name="remote_agent_delete",
    ),
    path("middleware/", middleware_views.gateway_middleware_edit, name="gateway_middleware"),
    path("providers/new/", views.provider_create, name="provider_create"),
    path("providers/<uuid:provider_id>/", views.provider_detail, name="provider_detail"),
    path("providers/<uuid:provider_id>/edit/", views.provider_edit, name="provider_edit"),
    path("providers/<uuid:provider_id>/delete/", views.provider_delete, name="provider_delete"),
    path(
        "providers/<uuid:provider_id>/prices/",
        price_views.provider_price_set,
        name="provider_price_set",
    ),
    path(
        "providers/<uuid:provider_id>/prices/remove/",
        price_views.provider_price_remove,
        name="provider_price_remove",
    ),
    path("providers/<uuid:provider_id>/check/", views.provider_check, name="provider_check"),
    path("providers/test/", views.provider_test_new, name="provider_test_new"),
    path("providers/<uuid:provider_id>/test/", views.provider_test, name="provider_test"),
    path("providers/<uuid:provider_id>/nodes/", views.node_create, name="node_create"),
    path(
        "providers/<uuid:provider_id>/nodes/<id:node_id>/delete/",
        views.node_delete,
        name="node_delete",
    ),
    path(
        "providers/<uuid:provider_id>/nodes/<id:node_id>/memory/",
        views.node_memory,
        name="node_memory",
    ),
    path(
        "providers/<uuid:provider_id>/nodes/<id:node_id>/pull/",
        views.node_pull,
        name="node_pull",
    ),
    path(
        "providers/<uuid:provider_id>/nodes/<id:node_id>/pull/status/",
        views.node_pull_status,
        name="node_pull_status",
    ),
]
