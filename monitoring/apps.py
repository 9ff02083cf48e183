from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        from a2a_site.accounts.settings_sections import SettingsSection, settings_section_register
        from monitoring.history.settings import retention_context

        settings_section_register(
            SettingsSection(
                key="retention",
                template="monitoring/history/_retention_settings.html",
                context=retention_context,
            )
        )
