from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"

    def ready(self) -> None:
        from agents.usage import register_usage_finder
        from workflows import signals  # noqa: F401  (connects the Celery worker signals)
        from workflows.usage import published_workflows_using

        register_usage_finder(published_workflows_using)

        from django.conf import settings

        from a2a_site.accounts.settings_sections import SettingsSection, settings_section_register
        from agents.services.credentials import credential_rotator_register
        from workflows.housekeeping import Duty, housekeeping_register
        from workflows.webhooks.delivery import webhooks_send_due
        from workflows.webhooks.selectors import webhooks_settings_context
        from workflows.webhooks.services import subscription_secrets_rotate

        settings_section_register(
            SettingsSection(
                key="webhooks",
                template="workflows/webhooks/_settings_section.html",
                context=webhooks_settings_context,
            )
        )
        # Signing secrets are encrypted with the provider keys: a key rotation re-encrypts them.
        credential_rotator_register(subscription_secrets_rotate)

        # Without Celery beat, the embedded executor sends the webhooks that are due.
        housekeeping_register(
            Duty("webhooks", webhooks_send_due, lambda: float(settings.WEBHOOKS_ROUND_SECONDS))
        )
