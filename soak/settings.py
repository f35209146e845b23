"""Settings for the soak's gunicorn: production settings, static files served unhashed.

Production settings want collectstatic's manifest, and STATIC_ROOT is shared with `make run`;
serving from the source folders (as the tests do) keeps the soak from writing there.
"""

from __future__ import annotations

from practice.settings import *  # noqa: F403
from practice.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
