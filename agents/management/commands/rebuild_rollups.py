"""Rebuilds the dashboards' rollups from the raw ledger (after an import or a repair)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from agents.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute every hourly ledger rollup from the ledger."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = rollups_rebuild()
        self.stdout.write(f"Rebuilt {rows} rollup rows from the ledger.")
