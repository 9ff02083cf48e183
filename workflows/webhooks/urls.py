from django.urls import path

from workflows.webhooks import views

urlpatterns = [
    path("", views.webhook_list, name="webhook_list"),
    path("new/", views.webhook_create, name="webhook_create"),
    path("<int:subscription_id>/", views.webhook_detail, name="webhook_detail"),
    path("<int:subscription_id>/secret/", views.webhook_rotate, name="webhook_rotate"),
    path("<int:subscription_id>/delete/", views.webhook_delete, name="webhook_delete"),
    path("<int:subscription_id>/test/", views.webhook_test, name="webhook_test"),
    path(
        "deliveries/<int:delivery_id>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
