"""Django settings. Every knob is a BML_* environment variable; defaults are the embedded parts."""

import os
from pathlib import Path

import dj_database_url

from bml_site import config

BASE_DIR = config.BASE_DIR
VAR_DIR = config.var_dir()

SECRET_KEY = config.secret_key()
DEBUG = os.environ.get("BML_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("BML_ALLOWED_HOSTS", "*").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("BML_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "apps.projects",
    "apps.storage",
    "apps.billing",
    "apps.system",
    "apps.jobs",
    "apps.datasets",
    "apps.warehouse",
    "apps.serving",
    "apps.annotation",
    "apps.notebooks",
    "apps.visual",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "bml_site.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.storage.middleware.StorageUnavailableMiddleware",
]

ROOT_URLCONF = "bml_site.urls"

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
                "apps.projects.context_processors.project_switcher",
            ],
        },
    },
]

ASGI_APPLICATION = "bml_site.asgi.application"

# SQLite in WAL mode with IMMEDIATE transactions and a busy timeout: the web process and
# the Q cluster write concurrently, and writers must wait rather than fail "database is locked".
_sqlite_default = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BML_DATABASE_URL", _sqlite_default), conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: the real Q cluster runs in another process during tests.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A database cache, so the Q cluster's heartbeat is visible to the web process (/healthz).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "bml_cache",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("BML_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Where the common sample models are built (apps/warehouse/common.py); one cache may serve
# several appliances (the test suite shares one), since a build depends only on the code.
COMMON_MODELS_CACHE = Path(os.environ.get("BML_COMMON_MODELS_CACHE") or VAR_DIR / "common-models")
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on a missing root; finders serve the files
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

# Uploads: raw PUT bodies larger than this are refused with 413 before they are read.
MAX_UPLOAD_BYTES = int(os.environ.get("BML_MAX_UPLOAD_MB", "5120")) * 1024 * 1024
# Prediction requests: the largest body a service accepts, and how long the gateway waits
# for a replica's answer before it answers 504.
SERVING_MAX_BODY_BYTES = int(os.environ.get("BML_SERVING_MAX_BODY_MB", "32")) * 1024 * 1024
SERVING_TIMEOUT_S = float(os.environ.get("BML_SERVING_TIMEOUT_S", "60"))
# /metrics: the bearer token Prometheus sends (`Authorization: Bearer <token>`); unset, only
# staff users signed in to the console may read it (it names every project's services).
METRICS_TOKEN = os.environ.get("BML_METRICS_TOKEN", "")
# Job webhooks to this machine's own addresses (loopback, link-local) are refused unless
# allowed: the embedded store's admin ports listen there without authentication.
NOTIFY_WEBHOOK_ALLOW_LOCAL = os.environ.get("BML_WEBHOOK_ALLOW_LOCAL", "0") == "1"
# Notebooks: the address their kernels reach the appliance's API at (BML_API_URL in the
# instance), how often their data/ is synchronized with the storage path, how often a
# running instance's disk use and activity are checked, and the default auto-stop time.
NOTEBOOK_API_URL = os.environ.get("BML_INTERNAL_URL", "http://127.0.0.1:8000")
NOTEBOOK_SYNC_S = float(os.environ.get("BML_NOTEBOOK_SYNC_S", "60"))
NOTEBOOK_CHECK_S = float(os.environ.get("BML_NOTEBOOK_CHECK_S", "30"))
NOTEBOOK_AUTO_STOP_MINUTES = int(os.environ.get("BML_NOTEBOOK_AUTO_STOP_MINUTES", "120"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

S3 = config.s3_settings()

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "apps.projects.api.permissions.ProjectRolePermission",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "bml_site.api_body.JSONParser",  # 400, not 500: deep nesting, NaN, 1e400
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "bml_site.api_schema.ModuleTaggedSchema",
    "DEFAULT_PAGINATION_CLASS": "bml_site.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "apps.storage.api.exceptions.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BML appliance API",
    "DESCRIPTION": (
        "The appliance's modules, one tag each, as in the console. Sign in with a session or "
        "send `Authorization: Token <key>` (the console's API token page). Everything a user "
        "owns belongs to a project: another project's objects answer 404, and a viewer is "
        "refused every write (403). Errors name the field they are about."
    ),
    "VERSION": "1",
    # One tag per module; bml_site.api_schema gives every operation its module's tag.
    "TAGS": [
        {
            "name": "projects",
            "description": "Projects and their members (owner, developer, viewer roles), "
            "with running and total counts of notebooks, jobs and prediction services.",
        },
        {
            "name": "storage",
            "description": "Object storage (BOS): buckets of your projects, the folders and "
            "files in them (list, upload, download, delete); the bos:// paths every other "
            "module reads from and writes to.",
        },
        {
            "name": "datasets",
            "description": "Table data sets: create, upload csv/tsv/txt in two steps (preview "
            "with guessed header, column names and types; then a conversion job to parquet), "
            "read rows, per-column statistics and the parquet parts; public data sets.",
        },
        {
            "name": "annotation",
            "description": "Text annotation tasks (entity-relationship, entity-attribute): "
            "tags, uploads of txt/docx/pdf files, documents split into sentences, spans and "
            "triples by character offsets, finishing and review, exports.",
        },
        {
            "name": "jobs",
            "description": "Training jobs (your code or a built-in algorithm) on a resource "
            "package: create, list, logs, metrics, terminate, clone, delete.",
        },
        {
            "name": "notebooks",
            "description": "Notebook instances (JupyterLab) of your projects: create, start, "
            "stop, delete, their log; list their notebooks and convert one to a job's code.",
        },
        {
            "name": "visual",
            "description": "Visual modeling: experiments whose graph of components (data "
            "sets, preprocessing, training, prediction, evaluation) is checked, run on the job "
            "engine with unchanged nodes reused, viewed (data, reports, logs), compared and "
            "released to the model warehouse.",
        },
        {
            "name": "warehouse",
            "description": "The model warehouse: models and their versions, imported from "
            "bos:// or an upload and validated by loading, or released from a job; the "
            "common models.",
        },
        {
            "name": "serving",
            "description": "Online prediction services: versions (a warehouse model version "
            "each, with replicas and a share of the traffic), configuration history and "
            "rollback, stop/restart, access keys, call quality over time, replica logs.",
        },
        {
            "name": "billing",
            "description": "Resource packages (the price table): the CPU, memory and "
            "accelerators that notebooks, jobs and prediction services can ask for.",
        },
        {
            "name": "system",
            "description": "The machine: its accelerators (GPUs, Kunlun XPUs) and what holds each.",
        },
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Jobs and services both have a "status"; name their enums instead of hashing them.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.JobStatus",
        "ServiceStatusEnum": "apps.serving.models.ServiceStatus",
        "DocumentStatusEnum": "apps.annotation.models.DocumentStatus",
        "UploadStatusEnum": "apps.annotation.models.UploadStatus",
        "TagKindEnum": "apps.annotation.models.TagKind",
        # A device's kind and a package's device_kind would both be "DeviceKindEnum".
        "DeviceKindEnum": "workers.models.DeviceKind",
        "PackageDeviceKindEnum": "apps.billing.models.DeviceKind",
    },
}

# Django-Q2: the ORM broker on the same database by default, Redis when BML_REDIS_URL is set.
Q_CLUSTER = {
    "name": os.environ.get("BML_Q_CLUSTER_NAME", "bml"),
    "workers": int(os.environ.get("BML_Q_WORKERS", "2")),
    "timeout": 600,
    "retry": 900,
    "max_attempts": 1,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
}
if os.environ.get("BML_REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["BML_REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"

# Devices: detected with torch/paddle at start-up, or declared, e.g. "cuda:2,xpu:1".
DECLARED_DEVICES = os.environ.get("BML_DEVICES", "")
HOST_NAME = os.environ.get("BML_HOST_NAME") or os.uname().nodename

EMAIL_BACKEND = os.environ.get(
    "BML_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_FILE_PATH = os.environ.get("BML_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("BML_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("BML_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("BML_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("BML_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("BML_EMAIL_TLS", "0") == "1"
DEFAULT_FROM_EMAIL = os.environ.get("BML_EMAIL_FROM", "bml@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors": {"()": "bml_site.log_filters.ClientErrorsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["client_errors"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("BML_LOG_LEVEL", "INFO")},
    # One line per request to the notebook servers and the store is noise in the logs.
    "loggers": {"httpx": {"level": "WARNING"}},
}
