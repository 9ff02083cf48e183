from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # Every gateway this process creates records its calls in the database ledger and
        # publishes its breaker transitions. Cheap: nothing here imports litellm.
        from agents.ledger import DatabaseLedger, breaker_record
        from agents.llm import configure_gateways, lean
        from agents.services.middleware import middleware_source
        from agents.urlpolicy import policy_resolver

        # ...and passes through its workspace's middleware hooks.
        configure_gateways(
            ledger=DatabaseLedger(),
            breaker_listener=breaker_record,
            middleware=middleware_source,
        )
        lean.resolver_factory = policy_resolver

        from a2a_site.accounts.settings_sections import SettingsSection, settings_section_register
        from agents.middleware_views import middleware_settings_context

        settings_section_register(
            SettingsSection(
                key="gateway_middleware",
                template="agents/_middleware_settings.html",
                context=middleware_settings_context,
            )
        )
