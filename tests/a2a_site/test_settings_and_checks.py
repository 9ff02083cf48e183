"""Configuration: typed environment readers, system checks, and the deploy check."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from a2a_site import checks
from a2a_site.env import env_bool, env_int, env_list
from tests.support.processes import ROOT


def test_env_readers_parse_and_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2A_X_BOOL", "Yes")
    monkeypatch.setenv("A2A_X_INT", "42")
    monkeypatch.setenv("A2A_X_LIST", " a, b ,,c ")
    assert env_bool("A2A_X_BOOL", False) is True
    assert env_int("A2A_X_INT", 1) == 42
    assert env_list("A2A_X_LIST") == ["a", "b", "c"]
    assert env_bool("A2A_X_MISSING", True) is True
    monkeypatch.setenv("A2A_X_BLANK", " ")
    assert env_bool("A2A_X_BLANK", True) is True, "a blank value keeps the default"
    monkeypatch.setenv("A2A_X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="A2A_X_BOOL must be a boolean"):
        env_bool("A2A_X_BOOL", False)
    monkeypatch.setenv("A2A_X_INT", "-3")
    with pytest.raises(ImproperlyConfigured, match="A2A_X_INT must be at least 0"):
        env_int("A2A_X_INT", 1, minimum=0)


def _ids(messages: list) -> list[str]:
    return [message.id for message in messages]


def test_development_secret_key_is_refused_without_debug(settings) -> None:
    settings.DEBUG = False
    settings.SECRET_KEY = settings.DEVELOPMENT_SECRET_KEY
    assert _ids(checks.check_secret_key()) == ["a2a.E001"]
    settings.SECRET_KEY = "x" * 60
    assert checks.check_secret_key() == []


def test_credential_keys_are_required_in_production_and_validated(settings) -> None:
    settings.DEBUG = False
    settings.CREDENTIAL_KEYS = []
    assert _ids(checks.check_credential_keys()) == ["a2a.E002"]
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode(), "not-a-key"]
    messages = checks.check_credential_keys()
    assert _ids(messages) == ["a2a.E003"]
    assert "Key number 2" in messages[0].msg
    assert "not-a-key" not in messages[0].msg + (messages[0].hint or "")


def test_execution_mode_needs_redis_for_celery(settings) -> None:
    settings.EXECUTION_MODE = "celery"
    settings.REDIS_URL = ""
    assert "a2a.E005" in _ids(checks.check_execution())
    settings.EXECUTION_MODE = "threads"
    assert _ids(checks.check_execution()) == ["a2a.E004"]


def test_unreachable_redis_is_reported_without_its_url(settings) -> None:
    from tests.support.processes import free_port

    settings.REDIS_URL = f"redis://:s3cret-password@127.0.0.1:{free_port()}/0"
    messages = checks.check_redis()
    assert _ids(messages) == ["a2a.E007"]
    assert "s3cret" not in messages[0].msg


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("A2A_", "DJANGO_"))}
    env.pop("DEBUG", None)
    env["DJANGO_SETTINGS_MODULE"] = "a2a_site.settings"
    env["A2A_VAR_DIR"] = str(ROOT / "var" / "deploy-check")
    return env


@pytest.mark.slow
def test_deploy_check_is_clean_with_production_values(tmp_path) -> None:
    env = _base_env() | {
        "A2A_VAR_DIR": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "-production-secret-" + "9" * 30,
        "ALLOWED_HOSTS": "studio.example.com",
        "A2A_CREDENTIAL_KEYS": Fernet.generate_key().decode(),
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
    }
    # The documented start collects the static files first; without them every page is a 500.
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "a2a.E010" in result.stderr
    assert "collectstatic" in result.stderr
    collected = _manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
    assert collected.returncode == 0, collected.stderr
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # ...and a page then renders with the production settings (it names js/theme.js).
    page = subprocess.run(
        [sys.executable, "-c", _RENDER_LOGIN_PAGE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert page.returncode == 0, page.stderr
    assert page.stdout.startswith("200 "), page.stdout
    assert "/static/js/theme." in page.stdout


_RENDER_LOGIN_PAGE = """
import django
django.setup()
from django.test import Client
response = Client().get("/accounts/login/", HTTP_HOST="studio.example.com", secure=True)
print(response.status_code, response.content.decode())
"""


def test_a_missing_or_outdated_static_manifest_is_an_error(settings, tmp_path) -> None:
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    }
    messages = checks.check_static_manifest()
    assert _ids(messages) == ["a2a.E010"]
    assert "collectstatic" in (messages[0].hint or "")

    # A manifest from an older release that lacks a file the pages now use.
    (tmp_path / "staticfiles.json").write_text(
        '{"version": "1.1", "paths": {"css/app.css": "css/app.0123456789ab.css"}, "hash": "x"}'
    )
    messages = checks.check_static_manifest()
    assert _ids(messages) == ["a2a.E011"]
    assert "js/theme.js" in messages[0].msg or "more" in messages[0].msg

    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    assert checks.check_static_manifest() == []


@pytest.mark.slow
def test_check_explains_a_production_misconfiguration() -> None:
    env = _base_env() | {"DEBUG": "false", "ALLOWED_HOSTS": "studio.example.com"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "a2a.E001" in result.stderr
    assert "a2a.E002" in result.stderr


def test_every_environment_variable_is_documented_in_env_example() -> None:
    import re

    source = (ROOT / "a2a_site" / "settings.py").read_text()
    read = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z0-9_]+)\"", source))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern no longer finds the settings' variables"
    assert sorted(read - documented) == []
    assert sorted(documented - read) == []


def test_make_web_collects_the_static_files_before_serving() -> None:
    result = subprocess.run(
        ["make", "-n", "web"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    commands = [line for line in result.stdout.splitlines() if line.strip()]
    collect = next(i for i, line in enumerate(commands) if "collectstatic --noinput" in line)
    serve = next(i for i, line in enumerate(commands) if "daphne" in line)
    assert collect < serve
