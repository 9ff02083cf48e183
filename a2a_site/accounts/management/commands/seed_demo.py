from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from a2a_site.accounts.demo import DEMO_PASSWORD, DEMO_USERNAME, demo_seed


class Command(BaseCommand):
    help = (
        "Creates the demo account and workspace, its offline demo providers and the template "
        "workflows (idempotent). For local use only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off (the demo account has a public password).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "DEBUG is off: the demo account has a public password, so it is not created on "
                "a production server. Use --force if this really is a local installation."
            )
        # Imported here: the accounts app must not need the workflows app to load.
        from workflows.templates_catalog import templates_seed

        result = demo_seed()
        verb = "Created" if result.created else "Kept"
        self.stdout.write(f"{verb} the demo workspace “{result.workspace.name}”.")
        seeded = templates_seed(workspace=result.workspace, user=result.user)
        if seeded:
            names = ", ".join(f"“{workflow.name}”" for workflow in seeded)
            self.stdout.write(f"Added {len(seeded)} template workflows: {names}.")
        else:
            self.stdout.write("The template workflows are already there.")
        self.stdout.write(
            self.style.SUCCESS(f"Log in as {DEMO_USERNAME} with the password {DEMO_PASSWORD}")
        )
