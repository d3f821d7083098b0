"""Settings of the reference peer: one app (`chat`) with a SQLite database, no
templates, no static files, one in-memory channel layer (a single Daphne process, like
one Confab instance)."""

import os

DEFAULT_JWT_SECRET = "bench-secret-0123456789abcdef0123456789"

# Used by Django for nothing this server does (no sessions, no signing); fixed so the
# peer starts without configuration.
SECRET_KEY = os.environ.get("PEER_DJANGO_SECRET_KEY", "django-peer-not-secret-0123456789abcdef")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["chat"]
MIDDLEWARE = []
ROOT_URLCONF = "peer.urls"
ASGI_APPLICATION = "peer.asgi.application"

# The chat consumer's messages (chat/models.py): SQLite with Django's defaults, as the
# seed apps have it. run.sh starts every run on a fresh file (PEER_DB). The relay
# consumer never touches it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PEER_DB") or "/tmp/django-peer-chat.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
USE_I18N = False

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
        # Per-channel queue bound; Confab's per-connection outbound queue is 256 too
        # (CONFAB_WS_QUEUE). A full queue drops the message (see consumers.py).
        "CONFIG": {"capacity": 256, "expiry": 60},
    }
}

# HS256 secret for the access tokens sent in `auth`.
PEER_JWT_SECRET = os.environ.get("PEER_JWT_SECRET") or DEFAULT_JWT_SECRET

# Warnings only, so that logging does not dominate the cost being measured.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
