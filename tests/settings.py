"""Settings for the test suite and for the processes it starts (daphne, Celery workers)."""

import os

from cryptography.fernet import Fernet

from a2a_site.settings import *  # noqa: F403
from a2a_site.settings import DATABASES, VAR_DIR

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
