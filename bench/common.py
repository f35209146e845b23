"""Shared helpers of the benchmarks: Django set-up, throwaway databases, timing, the table.

Every database the benchmarks touch is their own: named ``<DATABASE_URL's name>_bench_<what>``,
created here (migrated once, then copied with ``CREATE DATABASE ... TEMPLATE``) and dropped
when the run ends, like ``import_bench.py`` does with its one database.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402
from psycopg import sql  # noqa: E402

T = TypeVar("T")

# The name DATABASE_URL gave, before we point Django at one of our own databases.
BASE_NAME: str = settings.DATABASES["default"]["NAME"]
TEMPLATE = "template"


def db_name(what: str) -> str:
    return f"{BASE_NAME}_bench_{what}"


def conninfo(dbname: str) -> str:
    """A libpq connection string for `dbname` on DATABASE_URL's server."""
    db = settings.DATABASES["default"]
    parts = {
        "dbname": dbname,
        "host": db.get("HOST") or "",
        "port": str(db.get("PORT") or ""),
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v})


def database_url(dbname: str) -> str:
    """DATABASE_URL for a child process (gunicorn, celery) that should use `dbname`."""
    db = settings.DATABASES["default"]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{dbname}"


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo("postgres"), autocommit=True)


def drop_database(name: str) -> None:
    assert "_bench_" in name, "only ever drop the benchmark's own databases"
    with _admin() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def copy_database(name: str, *, template: str) -> None:
    drop_database(name)
    with _admin() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def use_database(name: str) -> None:
    """Point Django's default connection at `name` (the next query reconnects)."""
    connections["default"].close()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


def migrate_template() -> str:
    """Create and migrate the template database the others are copied from."""
    name = db_name(TEMPLATE)
    drop_database(name)
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    connections["default"].close()
    return name


class Databases:
    """Our throwaway databases; every one of them is dropped on exit."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def make(self, what: str) -> str:
        name = db_name(what)
        copy_database(name, template=db_name(TEMPLATE))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        connections["default"].close()
        drop_database(name)
        if name in self.created:
            self.created.remove(name)


@contextlib.contextmanager
def throwaway_databases() -> Iterator[Databases]:
    template = migrate_template()
    dbs = Databases()
    dbs.created.append(template)
    try:
        yield dbs
    finally:
        connections["default"].close()
        settings.DATABASES["default"]["NAME"] = BASE_NAME
        for name in reversed(dbs.created):
            with contextlib.suppress(psycopg.Error):
                drop_database(name)


def timed(func: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = func()
    return result, time.perf_counter() - started


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None
