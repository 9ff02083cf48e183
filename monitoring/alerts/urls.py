from django.urls import path

from monitoring.alerts import views

urlpatterns = [
    path("", views.alert_list, name="alert_list"),
    path("<int:incident_id>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("<int:incident_id>/resolve/", views.alert_resolve, name="alert_resolve"),
    path("rules/", views.alert_rule_list, name="alert_rule_list"),
    path("rules/new/", views.alert_rule_create, name="alert_rule_create"),
    path("rules/<int:rule_id>/", views.alert_rule_edit, name="alert_rule_edit"),
    path("rules/<int:rule_id>/delete/", views.alert_rule_delete, name="alert_rule_delete"),
    path("channels/", views.alert_channel_list, name="alert_channel_list"),
    path("channels/new/", views.alert_channel_create, name="alert_channel_create"),
    path("channels/<int:channel_id>/", views.alert_channel_detail, name="alert_channel_detail"),
    path(
        "channels/<int:channel_id>/secret/", views.alert_channel_rotate, name="alert_channel_rotate"
    ),
    path(
        "channels/<int:channel_id>/delete/", views.alert_channel_delete, name="alert_channel_delete"
    ),
    path("channels/<int:channel_id>/test/", views.alert_channel_test, name="alert_channel_test"),
    path(
        "deliveries/<int:delivery_id>/redeliver/",
        views.alert_delivery_redeliver,
        name="alert_delivery_redeliver",
    ),
]
