from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        # Without Celery beat, the embedded executor runs the alert rounds with its housekeeping.
        from django.conf import settings

        from agents.budgets.signals import budget_threshold_crossed
        from monitoring.alerts.evaluation import budget_threshold_crossed_receive
        from monitoring.alerts.rounds import alerts_round
        from workflows.housekeeping import Duty, housekeeping_register

        # A budget crossing a threshold opens its alert at once, in the process that saw it.
        budget_threshold_crossed.connect(budget_threshold_crossed_receive, dispatch_uid="alerts")

        housekeeping_register(
            Duty("alerts", alerts_round, lambda: float(settings.ALERTS_ROUND_SECONDS))
        )
