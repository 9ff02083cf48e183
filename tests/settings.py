"""Settings for the test suite and for the processes it starts (daphne, Celery workers)."""

import os

from cryptography.fernet import Fernet


def _worker_redis_url() -> None:
    """Each pytest-xdist worker gets a Redis database of its own, as it gets its own test database.

    The first worker keeps REDIS_URL's; the others take theirs, in order, from
    A2A_TEST_REDIS_WORKER_DBS (comma-separated numbers). The processes a worker starts inherit the
    choice through the environment and keep it (they also see the worker's variable).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("REDIS_URL", "")
    if not worker or not url or os.environ.get("A2A_TEST_REDIS_WORKER_URL"):
        return
    index = int(worker.removeprefix("gw"))
    if index:
        from urllib.parse import urlsplit, urlunsplit

        from django.core.exceptions import ImproperlyConfigured

        spare = [db.strip() for db in os.environ.get("A2A_TEST_REDIS_WORKER_DBS", "").split(",")]
        spare = [db for db in spare if db]
        if len(spare) < index or not all(db.isdigit() for db in spare):
            raise ImproperlyConfigured(
                f"pytest-xdist worker {worker} needs a Redis database of its own: list one "
                "per worker after the first in A2A_TEST_REDIS_WORKER_DBS (e.g. 7 or 6,7)."
            )
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(path=f"/{spare[index - 1]}"))
        os.environ["REDIS_URL"] = url
    os.environ["A2A_TEST_REDIS_WORKER_URL"] = url


_worker_redis_url()

from a2a_site.settings import *  # noqa: E402, F403
from a2a_site.settings import DATABASES, VAR_DIR  # noqa: E402

# Hashing cost is not what the tests are about.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so the processes the tests start can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tests start executors themselves when they want one (a server the suite starts may ask for its
# own with A2A_EXECUTOR_AUTOSTART=true, as `make run` has it).
EXECUTOR_AUTOSTART = os.environ.get("A2A_EXECUTOR_AUTOSTART") == "true"
# Tokens are looked up at every request unless a test (or a server the suite starts) asks for
# the web process's short memory of verified tokens.
API_TOKEN_CACHE_SECONDS = int(os.environ.get("A2A_API_TOKEN_CACHE_SECONDS", "0"))
# In-process tests send webhooks by calling the round; a server the suite starts may ask.
WEBHOOKS_SEND_AT_ONCE = os.environ.get("A2A_WEBHOOKS_SEND_AT_ONCE") == "true"
# Likewise a web process's heartbeat (a suite importing the ASGI app would otherwise beat).
WEB_HEARTBEAT = os.environ.get("A2A_WEB_HEARTBEAT") == "true"

# The suite and the servers it starts speak plain HTTP on loopback.
DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

# One key per test session, shared with the processes the suite starts through the environment.
CREDENTIAL_KEYS = [os.environ.setdefault("A2A_TEST_CREDENTIAL_KEY", Fernet.generate_key().decode())]

# The suite checks the outbound policy as the distributed mode applies it; the embedded mode's
# loopback allowance is tested where it is overridden on purpose.
OUTBOUND_ALLOW_LOOPBACK = False
