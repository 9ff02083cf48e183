"""System checks for misconfiguration, reported by `manage.py check` and at every start.

Each message says what is wrong and what to do, and never prints a secret.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

EXECUTION_MODES = ("embedded", "celery")


@register()
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the public development key while DEBUG is off.",
                hint="Set SECRET_KEY to a long random value, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`.",
                id="a2a.E001",
            )
        ]
    return []


@register()
def check_credential_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from cryptography.fernet import Fernet

    keys = settings.CREDENTIAL_KEYS
    if not keys:
        if settings.DEBUG:
            return []  # development falls back to a key file under var/ (see agents.crypto)
        return [
            Error(
                "A2A_CREDENTIAL_KEYS is not set, so provider credentials cannot be encrypted.",
                hint="Generate a key with `python manage.py generate_credential_key` and set "
                "A2A_CREDENTIAL_KEYS to it (comma-separate several keys when rotating).",
                id="a2a.E002",
            )
        ]
    messages: list[CheckMessage] = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            messages.append(
                Error(
                    f"Key number {position} in A2A_CREDENTIAL_KEYS is not a valid Fernet key.",
                    hint="Each key is 32 url-safe base64-encoded bytes; generate one with "
                    "`python manage.py generate_credential_key`.",
                    id="a2a.E003",
                )
            )
    return messages


@register()
def check_execution(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    mode = settings.EXECUTION_MODE
    if mode not in EXECUTION_MODES:
        return [
            Error(
                f"A2A_EXECUTION_MODE is {mode!r}.",
                hint="Use 'embedded' (runs inside the web process) or 'celery' (Celery workers).",
                id="a2a.E004",
            )
        ]
    messages: list[CheckMessage] = []
    if mode == "celery" and not settings.REDIS_URL:
        messages.append(
            Error(
                "A2A_EXECUTION_MODE is 'celery' but REDIS_URL is not set.",
                hint="Celery workers receive runs through Redis: set REDIS_URL, or use 'embedded'.",
                id="a2a.E005",
            )
        )
    engine = settings.DATABASES["default"]["ENGINE"]
    if mode == "celery" and engine.endswith("sqlite3"):
        messages.append(
            Warning(
                "Celery workers share a SQLite file with the web process.",
                hint="Set DATABASE_URL to a PostgreSQL database for the distributed mode.",
                id="a2a.W006",
            )
        )
    return messages


@register()
def check_redis(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    url = settings.REDIS_URL
    if not url:
        return []
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        return [
            Error(
                f"REDIS_URL is set but Redis does not answer ({type(error).__name__}).",
                hint="Start Redis, fix REDIS_URL, or unset it to run in the embedded mode.",
                id="a2a.E007",
            )
        ]
    return []


@register()
def check_static_manifest(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With DEBUG off, every page names its scripts through the manifest `collectstatic` writes:
    without it each page answers 500 (`Missing staticfiles manifest entry`), and with one left
    from an older release the pages that use a newer file do."""
    from django.contrib.staticfiles.finders import get_finders
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import storages

    storage = storages.create_storage(settings.STORAGES["staticfiles"])
    if not isinstance(storage, ManifestFilesMixin):
        return []
    hint = "Run `python manage.py collectstatic --noinput` before starting the web server."
    if storage.read_manifest() is None:
        return [
            Error(
                f"The static files manifest is missing from STATIC_ROOT ({settings.STATIC_ROOT}), "
                "so every page would answer 500.",
                hint=hint + " (`make web` does.)",
                id="a2a.E010",
            )
        ]
    missing = sorted(
        {
            path
            for finder in get_finders()
            for path, _ in finder.list(["CVS", ".*", "*~"])
            if storage.hashed_files.get(path.replace("\\", "/")) is None
        }
    )
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        return [
            Error(
                f"The static files manifest in STATIC_ROOT lacks {shown}: it was collected "
                "from an older release, and pages using these files would answer 500.",
                hint=hint,
                id="a2a.E011",
            )
        ]
    return []


@register()
def check_metrics_networks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    import ipaddress

    errors: list[CheckMessage] = []
    for entry in settings.METRICS_ALLOWED_NETWORKS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"A2A_METRICS_ALLOWED_NETWORKS holds {entry!r}, which is not an address "
                    "or network.",
                    hint="Use addresses or CIDR networks, comma-separated, e.g. "
                    "127.0.0.1,10.0.0.0/8.",
                    id="a2a.E012",
                )
            )
    return errors
