from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # Every gateway this process creates records its calls in the database ledger and
        # publishes its breaker transitions. Cheap: nothing here imports litellm.
        from agents.ledger import DatabaseLedger, breaker_record
        from agents.llm import configure_gateways, lean
        from agents.urlpolicy import policy_resolver

        configure_gateways(ledger=DatabaseLedger(), breaker_listener=breaker_record)
        lean.resolver_factory = policy_resolver
