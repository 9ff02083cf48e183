from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # Every gateway this process creates records its calls in the database ledger and
        # publishes its breaker transitions. Cheap: nothing here imports litellm.
        from django.conf import settings

        from agents.ledger import DatabaseLedger, breaker_record
        from agents.llm import configure_gateways, lean
        from agents.llm.capacity import RedisCapacity
        from agents.services.limits import agent_limiter
        from agents.services.middleware import middleware_source
        from agents.urlpolicy import policy_resolver

        capacity = None
        if settings.REDIS_URL and settings.EXECUTION_MODE != "embedded":
            # Rate limits, cool-downs and breakers shared by every worker process.
            capacity = RedisCapacity(
                settings.REDIS_URL,
                listener=breaker_record,
                window_s=settings.RATE_WINDOW_SECONDS,
            )
        agent_limiter.capacity = capacity
        # ...and passes through its workspace's middleware hooks.
        configure_gateways(
            ledger=DatabaseLedger(),
            breaker_listener=breaker_record,
            capacity=capacity,
            rate_window_s=settings.RATE_WINDOW_SECONDS,
            middleware=middleware_source,
        )
        lean.resolver_factory = policy_resolver

        from agents.stamps import stamps_connect

        stamps_connect()

        from a2a_site.accounts.settings_sections import SettingsSection, settings_section_register
        from agents.middleware_views import middleware_settings_context

        settings_section_register(
            SettingsSection(
                key="gateway_middleware",
                template="agents/_middleware_settings.html",
                context=middleware_settings_context,
            )
        )
