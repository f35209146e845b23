"""Shared personas: admin, clinician, other_clinician, supervisor, client and an outsider.

The outsider is an admin *and* clinician of another practice, so that every "outsider gets
404" test covers the strongest role a stranger could hold.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client as HttpClient

from practice.celery import app as celery_app
from practice.models import Client, Practice, User
from tests.factories import (
    ClientFactory,
    EpisodeFactory,
    PairingFactory,
    PracticeFactory,
    UserFactory,
    staff,
)

# Unit tests run tasks in-process; the worker tests start a real worker against Redis.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _local_cache(settings: Any) -> None:
    # Rate limits live in the cache; each test starts with a clean one of its own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # No collectstatic in tests: serve from the source folders, unhashed.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Password hashing is deliberately slow; tests do not need that.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def run_on_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests run inside one transaction: run enqueue-after-commit callbacks at once."""
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


@pytest.fixture
def practice(db: None) -> Practice:
    return PracticeFactory.create(name="Lindenhof", slug="lindenhof")


@pytest.fixture
def other_practice(db: None) -> Practice:
    return PracticeFactory.create(name="Elsewhere", slug="elsewhere")


@pytest.fixture
def admin(practice: Practice) -> User:
    return staff(practice, "admin", email="alice@lindenhof.example")


@pytest.fixture
def clinician(practice: Practice) -> User:
    return staff(practice, "clinician", email="bob@lindenhof.example")


@pytest.fixture
def other_clinician(practice: Practice) -> User:
    return staff(practice, "clinician", email="carol@lindenhof.example")


@pytest.fixture
def supervisor(practice: Practice, clinician: User) -> User:
    user = staff(practice, "supervisor", email="dora@lindenhof.example")
    PairingFactory.create(practice=practice, supervisor=user, supervisee=clinician)
    return user


@pytest.fixture
def client_record(practice: Practice, clinician: User) -> Client:
    """A client in an open episode with `clinician`, with a portal login."""
    record = ClientFactory.create(
        practice=practice, user=UserFactory.create(email="erin@example.org")
    )
    EpisodeFactory.create(client=record, clinician=clinician)
    return record


@pytest.fixture
def client_user(client_record: Client) -> User:
    assert client_record.user is not None
    return client_record.user


@pytest.fixture
def outsider(other_practice: Practice) -> User:
    return staff(other_practice, "admin", "clinician", "supervisor", email="mallory@else.example")


def login(user: User) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


@pytest.fixture
def as_admin(admin: User) -> HttpClient:
    return login(admin)


@pytest.fixture
def as_clinician(clinician: User) -> HttpClient:
    return login(clinician)


@pytest.fixture
def as_other_clinician(other_clinician: User) -> HttpClient:
    return login(other_clinician)


@pytest.fixture
def as_supervisor(supervisor: User) -> HttpClient:
    return login(supervisor)


@pytest.fixture
def as_client(client_user: User) -> HttpClient:
    return login(client_user)


@pytest.fixture
def as_outsider(outsider: User) -> HttpClient:
    return login(outsider)


@pytest.fixture
def shipped_instruments(transactional_db: None) -> None:
    """Transactional tests flush every table after they run, the rows the data migration
    shipped (PHQ-9, GAD-7, session feedback) included. Put them back when missing."""
    from importlib import import_module

    from django.apps import apps

    from alliance.models import Instrument

    if not Instrument.objects.shipped().exists():
        import_module("alliance.migrations.0002_shipped_instruments").ship(apps, None)
