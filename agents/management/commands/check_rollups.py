"""Recomputes the dashboards' rollups from the raw ledger and reports any difference."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.rollups import rollups_check, rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the hourly ledger rollups from the ledger and report every difference "
        "(exit status 1 if any); --repair rebuilds them afterwards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--repair", action="store_true", help="Rebuild the rollups.")
        parser.add_argument(
            "--show", type=int, default=20, help="How many differences to list (default 20)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = rollups_check()
        for mismatch in mismatches[: options["show"]]:
            self.stdout.write(str(mismatch))
        if len(mismatches) > options["show"]:
            self.stdout.write(f"… and {len(mismatches) - options['show']} more.")
        self.stdout.write(f"rollup_mismatches={len(mismatches)}")
        if mismatches and options["repair"]:
            rows = rollups_rebuild()
            self.stdout.write(f"Rebuilt {rows} rollup rows from the ledger.")
            return
        if mismatches:
            raise CommandError(f"{len(mismatches)} rollup values differ from the ledger.")
