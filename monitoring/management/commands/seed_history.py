"""`manage.py seed_history --runs N [--member USERNAME]`: a realistic run history to review."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from a2a_site.accounts.models import User
from agents.rollups import rollups_rebuild
from monitoring.history.seed import LONG_RUN_ID, SEED_WORKSPACE_NAME, seed_history


class Command(BaseCommand):
    help = (
        f"Fills the workspace “{SEED_WORKSPACE_NAME}” with N runs over 90 days, shaped as the "
        f"engine writes them (idempotent: a second call adds only what is missing), plus the "
        f"200-step run {LONG_RUN_ID}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--runs", type=int, default=1000, help="how many runs (default 1000)")
        parser.add_argument(
            "--member", help="also make this existing user an owner of the sample workspace"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        runs = options["runs"]
        if runs < 0:
            raise CommandError("--runs must be 0 or more.")
        member = None
        if options["member"]:
            member = User.objects.filter(username=options["member"]).first()
            if member is None:
                raise CommandError(f"No user is called “{options['member']}”.")
        began = time.monotonic()

        def progress(done: int, total: int) -> None:
            if done % 10_000 == 0 or done == total:
                self.stdout.write(
                    f"  {done:,} of {total:,} runs ({time.monotonic() - began:.0f} s)"
                )

        result = seed_history(runs=runs, member=member, progress=progress)
        # The dashboards read hourly rollups of the ledger: rebuilt for the rows just written.
        rollup_rows = rollups_rebuild(result.workspace.pk)
        self.stdout.write(f"  {rollup_rows:,} rollup rows rebuilt from the ledger")
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {result.created:,} runs; “{result.workspace.name}” holds {result.total:,} "
                f"seeded runs and the 200-step run {result.long_run_id} "
                f"({time.monotonic() - began:.1f} s)."
            )
        )
