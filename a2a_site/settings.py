"""Settings for A2A Studio.

One file, driven by the environment (every variable is listed in `.env.example`). With nothing
set it boots in the embedded mode: SQLite under `var/`, runs executed inside the web process, live
events over the in-memory channel layer. Setting `DATABASE_URL` and `REDIS_URL` switches to the
distributed mode: PostgreSQL, Celery workers on Redis and the Redis channel layer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url

from a2a_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("A2A_VAR_DIR", str(BASE_DIR / "var")))

# The development key is public on purpose; the `a2a.E001` check refuses it when DEBUG is off.
DEVELOPMENT_SECRET_KEY = "a2a-studio-development-key-never-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# daphne's app makes `runserver` serve ASGI, so WebSockets work in development too; it must come
# first. Only `runserver` needs it: importing it loads Twisted and Autobahn (about 20 MB) into
# every process that sets Django up, Celery workers included, and the `daphne` command (`make
# web`) installs its server itself.
RUNSERVER = sys.argv[1:2] == ["runserver"]
INSTALLED_APPS = [
    *(["daphne"] if RUNSERVER else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "a2a_site.accounts",
    "a2a_site.api",
    "agents",
    "workflows",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that may refuse a request, so /api/v1/ refusals get the API's shape.
    "a2a_site.api.middleware.ApiProblemMiddleware",
    "a2a_site.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "a2a_site.accounts.middleware.CurrentWorkspaceMiddleware",
    "a2a_site.refusals.RequestLimitsMiddleware",
]

ROOT_URLCONF = "a2a_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "a2a_site.accounts.context_processors.workspace",
                "monitoring.alerts.context_processors.notifications",
            ],
        },
    },
]

WSGI_APPLICATION = "a2a_site.wsgi.application"
ASGI_APPLICATION = "a2a_site.asgi.application"

# --- Database -------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite needs the folder before the first query
    DATABASES = {
        "default": {
            # Django's SQLite backend, keeping the placeholders' conversion of each text.
            "ENGINE": "a2a_site.backends.sqlite3",
            "NAME": str(VAR_DIR / "a2a.sqlite3"),
            # WAL lets the embedded executor write while pages read.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, channel layer, cache ---------------------------------------------------
REDIS_URL = env_str("REDIS_URL")

# "celery" hands runs to Celery workers over Redis; "embedded" runs them inside the web process.
EXECUTION_MODE = env_str("A2A_EXECUTION_MODE", "celery" if REDIS_URL else "embedded")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A dead Redis fails fast (connect 2 s) and a half-open connection is found by
                # a PING after 30 s idle; the read timeout stays above the layer's 5 s BZPOPMIN.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": 2,
                        "socket_timeout": 10,
                        "health_check_interval": 30,
                    }
                ],
                "prefix": env_str("A2A_CHANNELS_PREFIX", "a2a:channels"),
                "capacity": 100,
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "a2a",
            "OPTIONS": {
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
                "health_check_interval": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "a2a_site.layers.LoopSafeInMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery reads every CELERY_* setting (see a2a_site/celery.py). Runs must survive a worker that
# dies: late acks plus reject-on-worker-lost, one message prefetched at a time, JSON only, and a
# visibility timeout longer than any step. The database lease, not Redis, is the recovery clock.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("A2A_CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "global_keyprefix": env_str("A2A_CELERY_PREFIX", "a2a:celery:"),
    # A dead Redis fails a publish fast; the worker's BRPOP (1 s) stays under the read timeout.
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
    "health_check_interval": 25,
    # A worker takes from its queues in the order they are declared: high-priority runs first.
    "queue_order_strategy": "priority",
}
# One queue per run priority (workflows/services/dispatch.py), taken without acknowledgements
# by a solo-pool worker (any other pool keeps late acks on them: workflows/signals.py; the
# reaper, not the broker, recovers a run whose message was lost: see PRIORITY_QUEUES there),
# and Celery's default queue "celery" for every other task, acknowledged late. A worker
# started without -Q consumes them all in this order: high-priority runs, then other tasks
# (the reaper among them: a backlog of runs does not hold it up), then normal and low runs.
CELERY_TASK_QUEUES = {
    "a2a-runs-high": {"routing_key": "a2a-runs-high", "no_ack": True},
    "celery": {"routing_key": "celery"},
    "a2a-runs": {"routing_key": "a2a-runs", "no_ack": True},
    "a2a-runs-low": {"routing_key": "a2a-runs-low", "no_ack": True},
}
CELERY_TASK_ROUTES = {"workflows.tasks.run_execute": {"queue": "a2a-runs"}}
if REDIS_URL:
    # kombu's Redis transport with a fix for a worker that died reconnecting after a Redis
    # restart (see a2a_site/broker.py).
    CELERY_BROKER_TRANSPORT = "a2a_site.broker:Transport"
# A launch while the broker is down answers at once (the run is stored; the reaper sends it):
# a publish tries three times within about half a second, not for seconds.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Celery's task events are for Flower-like monitors; nothing here reads them (the monitoring
# pages read the workers' own rows), and each run cost three more Redis publishes on the
# worker's consumer thread, which shares the interpreter with the runs' event loop.
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("A2A_CELERY_TASK_EVENTS", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
WORKER_HEARTBEAT_SECONDS = env_int("A2A_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
# The rows of worker processes silent this long are deleted (the monitoring page's history).
WORKER_KEEP_DAYS = env_int("A2A_WORKER_KEEP_DAYS", 7, minimum=1)
OLLAMA_PROBE_SECONDS = env_int("A2A_OLLAMA_PROBE_SECONDS", 15, minimum=1)
# Runs: a worker renews the leases of all its runs in one UPDATE every heartbeat; the reaper
# resumes runs whose lease expired, and fails a run after RUN_MAX_RESUMES resumes. A killed
# worker's runs resume within lease + reaper interval (about 6 s); a worker whose database stalls
# for longer than lease - heartbeat loses its runs to another (fenced: it writes nothing more).
# A process executes at most RUNS_PER_PROCESS runs at once (coroutines on one event loop).
RUN_LEASE_SECONDS = env_int("A2A_RUN_LEASE_SECONDS", 5, minimum=2)
RUN_HEARTBEAT_SECONDS = env_int("A2A_RUN_HEARTBEAT_SECONDS", 1, minimum=1)
RUN_REAPER_SECONDS = env_int("A2A_RUN_REAPER_SECONDS", 1, minimum=1)
RUN_MAX_RESUMES = env_int("A2A_RUN_MAX_RESUMES", 3, minimum=0)
RUN_QUEUED_REDISPATCH_SECONDS = env_int("A2A_RUN_QUEUED_REDISPATCH_SECONDS", 60, minimum=5)
RUNS_PER_PROCESS = env_int("A2A_RUNS_PER_PROCESS", 300, minimum=1)
# The "minute" of requests- and tokens-per-minute limits, in seconds: 60, except in tests and
# benchmarks that must see a window pass quickly.
RATE_WINDOW_SECONDS = env_int("A2A_RATE_WINDOW_SECONDS", 60, minimum=1)
# Memory guard (workflows/memory_guard.py): a Celery worker whose resident memory passes this many
# MB (0: no limit) takes no new runs, lets its runs finish for up to WORKER_DRAIN_SECONDS, hands
# the rest over (their leases end) and restarts itself.
WORKER_MAX_RSS_MB = env_int("A2A_WORKER_MAX_RSS_MB", 0, minimum=0)
WORKER_DRAIN_SECONDS = env_int("A2A_WORKER_DRAIN_SECONDS", 30, minimum=0)
# PostgreSQL: the engine's few long statements (a step's completion with its call's ledger row
# and rollups, a call's ledger row with its step's start) are prepared once per connection and
# then sent as EXECUTE. Turn off behind a pooler that shares server sessions between clients
# per transaction (PgBouncer's transaction mode before 1.21), where a prepared statement may not
# be there at the next transaction.
PG_PREPARED_STATEMENTS = env_bool("A2A_PG_PREPARED_STATEMENTS", True)
# Threads (each with its own database connection) that run executors use for their queries.
DB_THREADS = env_int("A2A_DB_THREADS", 8, minimum=1)
# In the embedded mode the web server starts its run executor with itself.
EXECUTOR_AUTOSTART = env_bool("A2A_EXECUTOR_AUTOSTART", True)
# In the distributed mode each web process reports itself on the monitoring page too.
WEB_HEARTBEAT = env_bool("A2A_WEB_HEARTBEAT", True)
# Retention: how often old runs are deleted, and in batches of how many runs (each batch one
# short transaction), at most so many batches a round.
RUN_RETENTION_SECONDS = env_int("A2A_RUN_RETENTION_SECONDS", 600, minimum=1)
RUN_RETENTION_BATCH = env_int("A2A_RUN_RETENTION_BATCH", 500, minimum=1)
RUN_RETENTION_MAX_BATCHES = env_int("A2A_RUN_RETENTION_MAX_BATCHES", 20, minimum=1)
# Alerts (monitoring/alerts): every ALERTS_ROUND_SECONDS a round (Celery beat, or the embedded
# executor's housekeeping) evaluates the rules that are due — each once per
# ALERTS_EVALUATE_SECONDS, whatever the number of evaluators — and sends the e-mails and webhooks
# that are due, retried ALERTS_DELIVERY_ATTEMPTS times with a backoff doubling from
# ALERTS_DELIVERY_BACKOFF_SECONDS. Notifications and finished deliveries are kept ALERTS_KEEP_DAYS.
# SITE_URL makes the links in e-mails and webhooks absolute.
ALERTS_ROUND_SECONDS = env_int("A2A_ALERTS_ROUND_SECONDS", 10, minimum=1)
ALERTS_EVALUATE_SECONDS = env_int("A2A_ALERTS_EVALUATE_SECONDS", 60, minimum=1)
ALERTS_DELIVERY_ATTEMPTS = env_int("A2A_ALERTS_DELIVERY_ATTEMPTS", 6, minimum=1)
ALERTS_DELIVERY_BACKOFF_SECONDS = env_int("A2A_ALERTS_DELIVERY_BACKOFF_SECONDS", 30, minimum=1)
ALERTS_WEBHOOK_TIMEOUT_SECONDS = env_int("A2A_ALERTS_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
ALERTS_KEEP_DAYS = env_int("A2A_ALERTS_KEEP_DAYS", 90, minimum=1)
SITE_URL = env_str("A2A_SITE_URL")
# Published workflows served as A2A agents (workflows/a2a): how long a client may keep a card,
# how long a blocking SendMessage waits for the run before answering with the task as it is,
# and the built-in conformance agent at /a2a/conformance/ (for the A2A conformance kit only).
A2A_CARD_MAX_AGE_SECONDS = env_int("A2A_CARD_MAX_AGE_SECONDS", 300, minimum=0)
A2A_BLOCKING_SECONDS = env_int("A2A_BLOCKING_SECONDS", 300, minimum=1)
A2A_CONFORMANCE_AGENT = env_bool("A2A_CONFORMANCE_AGENT", False)
# Webhook subscriptions (workflows/webhooks): a delivery is sent when its event commits and
# retried after WEBHOOKS_BACKOFF_SECONDS × 2^(attempts − 1) (at most WEBHOOKS_BACKOFF_CAP_SECONDS
# apart) until WEBHOOKS_RETRY_HOURS have passed; a round every WEBHOOKS_ROUND_SECONDS (Celery beat,
# or the embedded executor's housekeeping) sends whatever is due.
WEBHOOKS_BACKOFF_SECONDS = env_int("A2A_WEBHOOKS_BACKOFF_SECONDS", 30, minimum=1)
WEBHOOKS_BACKOFF_CAP_SECONDS = env_int("A2A_WEBHOOKS_BACKOFF_CAP_SECONDS", 3 * 3600, minimum=1)
WEBHOOKS_RETRY_HOURS = env_int("A2A_WEBHOOKS_RETRY_HOURS", 24, minimum=1)
WEBHOOKS_TIMEOUT_SECONDS = env_int("A2A_WEBHOOKS_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOKS_ROUND_SECONDS = env_int("A2A_WEBHOOKS_ROUND_SECONDS", 10, minimum=1)
# Finished deliveries (the page's log) are kept this long.
WEBHOOKS_KEEP_DAYS = env_int("A2A_WEBHOOKS_KEEP_DAYS", 30, minimum=1)
# Embedded mode: a delivery's first attempt in a thread of the web process at once (else at the
# next round).
WEBHOOKS_SEND_AT_ONCE = env_bool("A2A_WEBHOOKS_SEND_AT_ONCE", True)
CELERY_BEAT_SCHEDULE = {
    "ollama-fleet-probe": {
        "task": "agents.tasks.ollama_fleet_probe",
        "schedule": OLLAMA_PROBE_SECONDS,
    },
    "run-reaper": {"task": "workflows.tasks.runs_reap", "schedule": RUN_REAPER_SECONDS},
    "run-retention": {
        "task": "workflows.tasks.runs_retention_enforce",
        "schedule": RUN_RETENTION_SECONDS,
    },
    "alerts-round": {"task": "monitoring.tasks.alerts_round", "schedule": ALERTS_ROUND_SECONDS},
    "webhooks-round": {
        "task": "workflows.tasks.webhooks_round",
        "schedule": WEBHOOKS_ROUND_SECONDS,
    },
}

# --- Operations telemetry ------------------------------------------------------------------------
# /metrics (Prometheus) answers a scrape that sends `Authorization: Bearer <A2A_METRICS_TOKEN>` or
# comes from an address in A2A_METRICS_ALLOWED_NETWORKS (addresses or CIDR networks; behind a
# proxy the client address is read as A2A_LOGIN_PROXY_HOPS says). With neither set it refuses all.
METRICS_TOKEN = env_str("A2A_METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("A2A_METRICS_ALLOWED_NETWORKS")
# OpenTelemetry traces of runs, steps and model calls, exported over OTLP/HTTP to this endpoint
# (e.g. http://collector:4318). Unset: tracing is off and costs nothing.
OTEL_ENDPOINT = env_str("A2A_OTEL_ENDPOINT")
OTEL_SERVICE_NAME = env_str("OTEL_SERVICE_NAME", "a2a-studio")

# --- Accounts -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED = env_bool("A2A_SIGNUP_ENABLED", True)
# Sign-up proves the e-mail address first: its link to choose a password works this long.
SIGNUP_LINK_SECONDS = env_int("A2A_SIGNUP_LINK_SECONDS", 2 * 24 * 3600, minimum=60)
# Throttling (a2a_site/accounts/throttle.py), counted in the database over a sliding window:
# failed log-ins per account name and per client address, password-reset requests per e-mail
# address and per client address, sign-ups per e-mail address and per client address. A
# refused attempt is not counted, so a lock always ends one window after the attempts it counts.
LOGIN_WINDOW_SECONDS = env_int("A2A_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1)
LOGIN_FAILURES_PER_ACCOUNT = env_int("A2A_LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("A2A_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_RESETS_PER_ACCOUNT = env_int("A2A_LOGIN_RESETS_PER_ACCOUNT", 3, minimum=1)
LOGIN_RESETS_PER_ADDRESS = env_int("A2A_LOGIN_RESETS_PER_ADDRESS", 10, minimum=1)
LOGIN_SIGNUPS_PER_ACCOUNT = env_int("A2A_LOGIN_SIGNUPS_PER_ACCOUNT", 3, minimum=1)
LOGIN_SIGNUPS_PER_ADDRESS = env_int("A2A_LOGIN_SIGNUPS_PER_ADDRESS", 10, minimum=1)
# How many proxies in front of the site append to X-Forwarded-For: the client address is the
# one that many entries from the right. 0: the connection's own address (REMOTE_ADDR).
LOGIN_PROXY_HOPS = env_int("A2A_LOGIN_PROXY_HOPS", 0, minimum=0)
# The throttled backend stands in for ModelBackend everywhere (log-in page, admin log-in).
AUTHENTICATION_BACKENDS = ["a2a_site.accounts.throttle.ThrottledModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Public API (/api/v1/, a2a_site/api) ----------------------------------------------------------
# Requests per token per window (429 with Retry-After beyond), counted in the cache: Redis in the
# distributed mode, process memory in the embedded one. A token's last use is written at most once
# per API_TOKEN_TOUCH_SECONDS. Idempotency keys are kept API_IDEMPOTENCY_HOURS.
API_RATE_LIMIT = env_int("A2A_API_RATE_LIMIT", 600, minimum=1)
API_RATE_WINDOW_SECONDS = env_int("A2A_API_RATE_WINDOW_SECONDS", 60, minimum=1)
API_TOKEN_TOUCH_SECONDS = env_int("A2A_API_TOKEN_TOUCH_SECONDS", 60, minimum=1)
# A web process trusts a token it verified for this long (0: asks the database every request);
# revoking in the page takes effect at once in that process, within this in the others.
API_TOKEN_CACHE_SECONDS = env_int("A2A_API_TOKEN_CACHE_SECONDS", 1, minimum=0)
# With Redis, a process adds its requests to a token's shared count at least every
# API_RATE_SYNC_MS (and at every request once the count nears the limit), so a token may go over
# its limit by what other processes admitted in that time.
API_RATE_SYNC_MS = env_int("A2A_API_RATE_SYNC_MS", 500, minimum=0)
API_IDEMPOTENCY_HOURS = env_int("A2A_API_IDEMPOTENCY_HOURS", 24, minimum=1)

# --- Credentials ----------------------------------------------------------------------------------
# Fernet keys, comma-separated: the first encrypts, every one decrypts (rotation). Without any, the
# `a2a.W002`/`a2a.E002` checks say so; in DEBUG a key file under var/ is made for the embedded mode.
CREDENTIAL_KEYS = env_list("A2A_CREDENTIAL_KEYS")
CREDENTIAL_KEY_FILE = VAR_DIR / "credential.key"

# Hosts that may be private or loopback addresses (local Ollama nodes, gateways, the demo model).
OUTBOUND_ALLOWED_HOSTS = env_list("A2A_OUTBOUND_ALLOWED_HOSTS")
# On one machine in the embedded mode, the usual local model (Ollama on 127.0.0.1) is the user's
# own: providers and Ollama nodes may use loopback addresses there without an allow-list. The
# distributed and production modes keep refusing them unless allow-listed. Tools never get this.
OUTBOUND_ALLOW_LOOPBACK = env_bool(
    "A2A_OUTBOUND_ALLOW_LOOPBACK", DEBUG and EXECUTION_MODE == "embedded"
)
# The same for agents' tools (http_get), kept apart: an Ollama node the providers may reach is not
# thereby open to every agent's tools. Each workspace can narrow it further (its tool hosts page).
TOOL_ALLOWED_HOSTS = env_list("A2A_TOOL_ALLOWED_HOSTS")
DEMO_MODEL_URL = env_str("A2A_DEMO_MODEL_URL", "http://127.0.0.1:8911")
# Programs a command-line agent provider may run (names or absolute paths), e.g. "claude".
CLI_AGENT_COMMANDS = env_list("A2A_CLI_AGENT_COMMANDS")
# Programs a workspace may register as stdio MCP servers (names or absolute paths), e.g. "npx".
# Empty: MCP servers are reached over HTTP only.
MCP_STDIO_COMMANDS = env_list("A2A_MCP_STDIO_COMMANDS")

# --- E-mail ---------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "A2A Studio <studio@localhost>")

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# Serving from the finders needs no collectstatic: right for development and the test servers.
WHITENOISE_USE_FINDERS = env_bool("A2A_STATIC_FROM_FINDERS", DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if WHITENOISE_USE_FINDERS
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie: the token travels in hx-headers on <body>.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("A2A_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Scripts, styles, images and connections from our own origin only: no inline script, no style
# attribute, no eval (a2a_site/csp.py). Data URLs for images (icons drawn by the canvas).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# A WebSocket handshake must come from the socket's own origin (scheme, host and port), or from
# one of these, each exactly as a browser sends it (e.g. https://studio.example.com:8443); the
# origins in CSRF_TRUSTED_ORIGINS are accepted too. See a2a_site/origin.py.
WEBSOCKET_ALLOWED_ORIGINS = env_list("A2A_WEBSOCKET_ALLOWED_ORIGINS")

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Key-like strings (sk-…, bearer tokens, masked echoes) never reach a log line.
    "filters": {"redact_secrets": {"()": "agents.llm.redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # LiteLLM logs request bodies at DEBUG; those can carry keys and prompts.
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# LiteLLM would fetch its price map over the network at import; the bundled copy is the one we use.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
