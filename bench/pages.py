"""Page throughput through gunicorn, as a ratio to a trivial view; query counts per page.

Throughput: gunicorn (sync workers, --no-control-socket) on 127.0.0.1 serves the benchmark's
database with production settings (DEBUG off) plus BENCH_TRIVIAL_VIEW=true. Each page is
requested by a few client threads for a fixed time with a real session cookie (a database
session made with SessionStore; the staff users have a TOTP authenticator row, so the MFA
middleware lets them through exactly as it does in production). Each page's requests per
second is divided by /bench/trivial/'s, measured by the same server, in the same run.

Query counts: the same pages, in this process, with django.test.Client and
CaptureQueriesContext, at the small and at the large dataset. They must be equal.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import ROOT, database_url, say, use_database
from bench.data import Built
from practice.models import User


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    user: str  # which Built id signs in: clinician, supervisor or admin


def pages_for(built: Built) -> list[Page]:
    return [
        Page("clinician week view", "/calendar/", "clinician"),
        Page("client timeline", f"/clients/{built.client_id}/timeline/", "clinician"),
        Page("supervisor review queue", "/supervision/queue/", "supervisor"),
        Page("caseload board", "/caseload/", "admin"),
    ]


TRIVIAL = Page("trivial view (baseline)", "/bench/trivial/", "clinician")


def _user_id(built: Built, role: str) -> int:
    return {
        "clinician": built.clinician_id,
        "supervisor": built.supervisor_id,
        "admin": built.admin_id,
    }[role]


# --- Query counts (in process) -------------------------------------------------------------


def query_counts(dbname: str, built: Built) -> dict[str, Any]:
    """Queries per page, for one dataset. Each page is requested twice; the second count is
    reported (the first may fill per-process caches such as content types)."""
    use_database(dbname)
    client = Client(HTTP_HOST="127.0.0.1")
    counts: dict[str, Any] = {}
    for page in pages_for(built):
        client.force_login(User.objects.get(pk=_user_id(built, page.user)))
        status = 0
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(page.path, secure=True)
            status = response.status_code
        counts[page.name] = {"queries": len(ctx.captured_queries), "status": status}
    return counts


# --- Throughput through gunicorn -----------------------------------------------------------


def _session_cookie(user_id: int) -> str:
    user = User.objects.get(pk=user_id)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    assert store.session_key is not None
    return store.session_key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def collect_static() -> None:
    call_command("collectstatic", interactive=False, verbosity=0)


@contextlib.contextmanager
def gunicorn(dbname: str, *, workers: int) -> Iterator[int]:
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url(dbname),
        "BENCH_TRIVIAL_VIEW": "true",
        "BENCH_STATIC_ROOT": str(settings.STATIC_ROOT),
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "MFA_REQUIRED": "true",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    argv = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "practice.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--no-control-socket",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    proc = subprocess.Popen(argv, env=env, start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status < 500:
                    break
            time.sleep(0.3)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _hammer(port: int, path: str, cookie: str, *, seconds: float, threads: int) -> dict[str, Any]:
    """Requests per second of `path` with `threads` concurrent clients for `seconds`."""
    headers = {"Cookie": f"sessionid={cookie}", "Host": "127.0.0.1"}
    done = [0] * threads
    bad: list[int] = []
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                bad.append(response.status)
            done[slot] += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()

    started = time.monotonic()
    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(done)
    return {
        "requests": total,
        "seconds": round(elapsed, 2),
        "rps": round(total / elapsed, 1),
        "non_200": len(bad),
        "statuses": sorted(set(bad))[:5],
    }


def throughput(dbname: str, built: Built, *, seconds: float, workers: int = 3) -> dict[str, Any]:
    use_database(dbname)
    cookies = {
        role: _session_cookie(_user_id(built, role))
        for role in ("clinician", "supervisor", "admin")
    }
    threads = workers * 2
    results: dict[str, Any] = {}
    with gunicorn(dbname, workers=workers) as port:
        # Warm every worker's imports, templates and connections before measuring.
        for page in [TRIVIAL, *pages_for(built)]:
            _hammer(port, page.path, cookies[page.user], seconds=1.0, threads=threads)
        # Baseline before and after the pages: drift from other load shows in the two.
        before = _hammer(port, TRIVIAL.path, cookies["clinician"], seconds=seconds, threads=threads)
        for page in pages_for(built):
            say(f"throughput: {page.name}")
            results[page.name] = _hammer(
                port, page.path, cookies[page.user], seconds=seconds, threads=threads
            )
        after = _hammer(port, TRIVIAL.path, cookies["clinician"], seconds=seconds, threads=threads)
    baseline = (before["rps"] + after["rps"]) / 2
    for row in results.values():
        row["ratio_to_trivial"] = round(row["rps"] / baseline, 4) if baseline else None
    return {
        "workers": workers,
        "client_threads": threads,
        "seconds_per_page": seconds,
        "trivial_before": before,
        "trivial_after": after,
        "trivial_rps": round(baseline, 1),
        "pages": results,
    }


if __name__ == "__main__":
    sys.exit("run it through bench/run.py --only pages")
