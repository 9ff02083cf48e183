"""`make dev-distributed` refuses to start a half topology without PostgreSQL and Redis.

Starting the whole topology and stopping it with Ctrl-C is checked by hand (README)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command


def test_without_postgresql_and_redis_it_says_what_to_set(settings: Any) -> None:
    settings.REDIS_URL = ""

    with pytest.raises(CommandError, match="DATABASE_URL .* REDIS_URL"):
        call_command("dev_distributed")
