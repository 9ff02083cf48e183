from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        # Without Celery beat, the embedded executor runs the alert rounds with its housekeeping.
        from django.conf import settings

        from a2a_site.accounts.settings_sections import SettingsSection, settings_section_register
        from agents.budgets.signals import budget_threshold_crossed
        from agents.services.credentials import credential_rotator_register
        from monitoring.alerts.evaluation import budget_threshold_crossed_receive
        from monitoring.alerts.rounds import alerts_round
        from monitoring.alerts.services import alert_channel_secrets_rotate
        from monitoring.history.settings import retention_context
        from workflows.housekeeping import Duty, housekeeping_register
        from workflows.services.history import runs_retention_enforce

        # A budget crossing a threshold opens its alert at once, in the process that saw it.
        budget_threshold_crossed.connect(budget_threshold_crossed_receive, dispatch_uid="alerts")

        # Webhook secrets are encrypted with the provider keys: a key rotation re-encrypts them.
        credential_rotator_register(alert_channel_secrets_rotate)
        housekeeping_register(
            Duty("alerts", alerts_round, lambda: float(settings.ALERTS_ROUND_SECONDS))
        )
        # The workspaces' retention: Celery beat's "run-retention", or this duty when embedded.
        housekeeping_register(
            Duty(
                "run-retention",
                runs_retention_enforce,
                lambda: float(settings.RUN_RETENTION_SECONDS),
            )
        )
        settings_section_register(
            SettingsSection(
                key="retention",
                template="monitoring/history/_retention_settings.html",
                context=retention_context,
            )
        )
