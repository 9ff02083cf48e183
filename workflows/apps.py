from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"

    def ready(self) -> None:
        from agents.usage import register_usage_finder
        from workflows import signals  # noqa: F401  (connects the Celery worker signals)
        from workflows.usage import published_workflows_using

        register_usage_finder(published_workflows_using)
