from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "a2a_site.api"
    label = "api"
    verbose_name = "Public API: tokens and idempotency keys"
