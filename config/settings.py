"""Pactum settings: read only from the environment (and an optional `.env`).

Every value has a development default so `make run` works on a bare machine;
the production profile (DEBUG off) refuses to start without a real secret key.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("PACTUM_READ_DOTENV", default=True):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

DATA_DIR = Path(env.str("PACTUM_DATA_DIR", default=str(BASE_DIR / "var")))
if not DATA_DIR.is_absolute():
    DATA_DIR = BASE_DIR / DATA_DIR
DATA_DIR.mkdir(parents=True, exist_ok=True)

_DEV_SECRET_KEY = "django-insecure-pactum-development-only-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set a long random SECRET_KEY, or DEBUG=true for development."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY is a development or short key; production needs at least 50 random characters."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORT = env.int("PORT", default=8000)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "core",
    "marketplace",
    "trust",
    "escrow",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'pactum.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: WAL lets readers run beside a
    # writer, IMMEDIATE transactions make concurrent writers wait for the lock
    # (up to the timeout) instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = DATA_DIR / "media"

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Pactum <noreply@pactum.invalid>")
# Where django.core.mail.backends.filebased.EmailBackend writes (EMAIL_BACKEND chooses it).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(DATA_DIR / "mail"))

# Disputes: evidence files (stored under MEDIA_ROOT, never served from a public URL) may
# have at most this many bytes; the other side answers within the pact's
# dispute_response_window_hours, or this many hours when the pact has none.
DISPUTE_FILE_MAX_BYTES = env.int("DISPUTE_FILE_MAX_BYTES", default=5 * 1024 * 1024)
DISPUTE_ANSWER_WINDOW_HOURS = env.int("DISPUTE_ANSWER_WINDOW_HOURS", default=48)
# A request body read whole (JSON, or a multipart upload sent with an Idempotency-Key,
# which hashes the body) may be this large: room for a statement's five largest files.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * DISPUTE_FILE_MAX_BYTES + 1024 * 1024)

# --- REST API --------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PagePagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_RATES": {"auth": env.str("AUTH_THROTTLE_RATE", default="60/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Pactum API",
    "DESCRIPTION": "Hire AI agents under behavioral pacts, judged by a panel, paid through escrow.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EngagementStatusEnum": "marketplace.models.Engagement.Status",
        "ListingStatusEnum": "marketplace.models.AgentListing.Status",
        "NewListingStatusEnum": ["draft", "published"],
    },
}

# --- Celery ----------------------------------------------------------------
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A transport that needs no server: messages are files under PACTUM_DATA_DIR,
    # shared by the web process, the worker and beat on one machine.
    for _sub in ("queue", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        # Without it the transport keeps exchange files in ./control of whatever folder a process starts in.
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # A message taken by a worker that died unacknowledged goes back to the
    # queue after this long (tasks are idempotent, so a redelivery is safe).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- Pactum ------------------------------------------------------------------
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="local")

# Stripe (PAYMENT_GATEWAY=stripe). The key is read when a gateway is built, so a
# process that never talks to Stripe does not need it.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
# Endpoint signing secrets, comma-separated: during a rotation the old and the
# new secret both verify.
STRIPE_WEBHOOK_SECRET = [s.strip() for s in env.list("STRIPE_WEBHOOK_SECRET", default=[]) if s.strip()]
# Where the Stripe API is (tests and stripe-mock point this at a local server).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Where Stripe's onboarding sends a seller back (default: the seller's payouts page).
STRIPE_CONNECT_RETURN_URL = env.str("STRIPE_CONNECT_RETURN_URL", default="")
# The library's own retries of one call (network errors, 409, 5xx), same idempotency key.
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_TIMEOUT_S = env.float("STRIPE_TIMEOUT_S", default=30.0)

# Calls to sellers' agent endpoints. Addresses in private, loopback, link-local
# and other reserved ranges are refused unless this development switch is on
# (`make run` turns it on so the demo agents on 127.0.0.1 are reachable).
AGENT_ENDPOINT_ALLOW_PRIVATE = env.bool("AGENT_ENDPOINT_ALLOW_PRIVATE", default=False)
AGENT_ENDPOINT_DEFAULT_TIMEOUT_MS = env.int("AGENT_ENDPOINT_DEFAULT_TIMEOUT_MS", default=30_000)
AGENT_ENDPOINT_MAX_RESPONSE_BYTES = env.int("AGENT_ENDPOINT_MAX_RESPONSE_BYTES", default=1_000_000)
# The demo agents (three HTTP agents of different quality served under
# /demo-agents/) exist only when this is on; it defaults to DEBUG.
DEMO_AGENTS_ENABLED = env.bool("DEMO_AGENTS_ENABLED", default=DEBUG)
# Jury clauses need at least this many judges' answers, or they are inconclusive.
JURY_QUORUM = env.int("JURY_QUORUM", default=3)
# The trust record (trust/scoring.py): evidence halves in weight every
# TRUST_HALF_LIFE_DAYS; score confidence is (r + s) / (r + s + TRUST_CONFIDENCE_K);
# an agent is "unrated" (listed, never ranked above rated agents) below
# TRUST_MIN_EVIDENCE verified jobs; benchmark claims lose half their fit every
# BENCHMARK_FIT_HALF_LIFE_DAYS.
TRUST_HALF_LIFE_DAYS = env.float("TRUST_HALF_LIFE_DAYS", default=90.0)
TRUST_CONFIDENCE_K = env.float("TRUST_CONFIDENCE_K", default=10.0)
TRUST_MIN_EVIDENCE = env.int("TRUST_MIN_EVIDENCE", default=5)
BENCHMARK_FIT_HALF_LIFE_DAYS = env.float("BENCHMARK_FIT_HALF_LIFE_DAYS", default=365.0)
# Where the platform reaches its own demo agents (make run sets it from PORT).
PACTUM_BASE_URL = env.str("PACTUM_BASE_URL", default=f"http://127.0.0.1:{PORT}")
# LLM judges on the jury of rubric clauses: a JSON list of
# {"name", "base_url", "model", "api_key_env", "timeout_s"?, "max_retries"?}
# (OpenAI-compatible chat completions; the key is read from the named variable
# at call time). Items are checked by trust.judges.llm.configured_llm_judges.
try:
    LLM_JUDGES = env.json("LLM_JUDGES", default=[])
except ValueError as exc:
    raise ImproperlyConfigured(f"LLM_JUDGES is not valid JSON: {exc}") from exc

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
