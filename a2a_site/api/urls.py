from django.urls import path

from a2a_site.api import views

urlpatterns = [
    path("settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("settings/api-tokens/new/", views.api_token_create, name="api_token_create"),
    path(
        "settings/api-tokens/<uuid:token_id>/revoke/",
        views.api_token_revoke,
        name="api_token_revoke",
    ),
    path("api/v1/docs/", views.api_reference, name="api_reference"),
]
