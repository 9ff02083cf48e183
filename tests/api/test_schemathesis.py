"""Schemathesis against a live daphne: every operation of the served OpenAPI schema, fuzzed with
valid and invalid requests, answers without a 5xx and as its schema says.

It runs once, in the services pass: daphne serves from PostgreSQL, the database production uses
(its runs still execute in daphne's own process, so no Celery worker is needed). The embedded pass
leaves it out through the `services` marker; without PostgreSQL and Redis it skips with the reason,
and under A2A_REQUIRE_SERVICES=1 that skip is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_token
from tests.conftest import Personas
from tests.support.processes import ARTIFACTS, start_daphne

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        process, url = start_daphne(
            "daphne-api-fuzz",
            REDIS_URL="",
            A2A_EXECUTION_MODE="embedded",
            A2A_API_RATE_LIMIT="100000",
        )
    yield url
    process.stop()


@pytest.mark.timeout(600)
def test_every_operation_answers_as_its_schema_says(
    server: str, personas: Personas, transactional_db: None
) -> None:
    from tests.a2a_site.test_url_permissions import _run
    from tests.agents.factories import make_agent

    _run(personas)
    make_agent(personas.workspace)
    token = make_token(personas.owner, "admin", workspace=personas.workspace)
    report = ARTIFACTS / "schemathesis"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        os.environ.get("A2A_FUZZ_EXAMPLES", "15"),
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]
    # Run from the artifacts folder: Schemathesis keeps a cache where it runs.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=580, cwd=ARTIFACTS)
    (ARTIFACTS / "schemathesis.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
