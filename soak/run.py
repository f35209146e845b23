"""`make soak`: load, conflicting bookings and worker faults, on loopback, bounded in time.

    .venv/bin/python soak/run.py [--quick] [--seconds 300] [--users 50] [--json PATH]

Three phases, each in a database of its own, cloned from one throwaway database migrated
at the start (like bench/import_bench.py), all dropped at the end:

1. load: 50 simulated users (clinicians browsing and booking, clients confirming through
   signed links, supervisors triaging) for 5 minutes against gunicorn and a Celery worker;
2. race: 1,000 conflicting bookings at once through the booking service, then a count of
   double bookings by SQL;
3. faults: 10,000 reminders while workers are SIGKILLed every few seconds and a private
   Redis is restarted once, then duplicates and lost reminders by Message-ID.

Prints a readable summary and one JSON document on stdout. Exits 1 if an invariant fails:
0 double bookings, 0 duplicate or lost reminders, 0 server errors (5xx or connection errors)
and 0 unexpected answers under load. SOAK_SECONDS sets the load phase's length.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "practice.settings")
os.environ.setdefault("SECRET_KEY", "soak-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from soak import faults, load, race  # noqa: E402
from soak.procs import celery_worker, database_url, free_port, gunicorn, wait_for_http  # noqa: E402
from soak.stats import CONNECTION_ERROR, SERVER_ERROR, UNEXPECTED, table  # noqa: E402

PHASES = ("load", "race", "faults")


def say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


@contextmanager
def throwaway_databases() -> Iterator[dict[str, str]]:
    """One migrated database, and a clone of it per phase; all dropped afterwards.

    Cloning (CREATE DATABASE ... TEMPLATE) costs a second; migrating three times would cost
    a minute. The clone settings name the clones `<throwaway>_<phase>`.
    """
    name = f"{settings.DATABASES['default']['NAME']}_soak"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    original = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    connection.close()  # a template must have no connections
    created: list[str] = []
    try:
        for phase in PHASES:
            connection.creation.clone_test_db(suffix=phase, verbosity=0, autoclobber=True)
            created.append(phase)
        yield {p: connection.creation.get_test_db_clone_settings(p)["NAME"] for p in PHASES}
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        for phase in created:
            connection.creation.destroy_test_db(name, verbosity=0, suffix=phase)
        connection.creation.destroy_test_db(original, verbosity=0)


def use_database(name: str) -> None:
    connection.close()
    connection.settings_dict["NAME"] = name


def phase_load(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    clinicians, clients, supervisors = load.split_users(args.users)
    rng = random.Random(args.seed)  # noqa: S311
    began = time.monotonic()
    cast = load.seed(
        clinicians=clinicians, supervisors=supervisors, clients_each=20, flags_each=12, rng=rng
    )
    seeded = time.monotonic() - began
    port = free_port()
    queue = f"soak-load-{uuid.uuid4().hex[:8]}"
    (folder / "load-mail").mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "soak.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "MFA_REQUIRED": "true",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "EMAIL_URL": f"filemail://{folder / 'load-mail'}",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
    }
    web = gunicorn(
        port=port,
        env=env,
        log=folder / "gunicorn.log",
        workers=args.web_workers,
        threads=args.web_threads,
    )
    worker = celery_worker(
        name=f"soak-load-{queue}", queue=queue, env=env, log=folder / "load-worker.log"
    )
    try:
        web.start()
        worker.start()
        wait_for_http(port, "/healthz", timeout=90, process=web)
        say(f"load: {args.users} users for {args.seconds:.0f} s on 127.0.0.1:{port}")
        result = load.run_users(
            port=port, cast=cast, clients=clients, seconds=args.seconds, seed_=args.seed
        )
    finally:
        web.stop()
        worker.stop()
    result["seed_seconds"] = round(seeded, 1)
    result["gunicorn"] = {"workers": args.web_workers, "threads": args.web_threads}
    result["seeded_appointments"] = cast.appointments
    # The web path books too: its calendar must be free of double bookings as well.
    result["double_bookings"] = race.double_bookings()
    errors = [
        line for line in web.tail(20000).splitlines() if "Traceback" in line or "ERROR" in line
    ]
    result["gunicorn_error_lines"] = len(errors)
    return result


def invariants(report: dict[str, Any]) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    if "load" in report:
        overall = report["load"]["overall"]
        checks["load: 0 5xx"] = overall[SERVER_ERROR] == 0
        checks["load: 0 connection errors"] = overall[CONNECTION_ERROR] == 0
        checks["load: 0 unexpected answers"] = overall[UNEXPECTED] == 0
        checks["load: 0 double bookings"] = not any(report["load"]["double_bookings"].values())
    if "race" in report:
        checks["race: 0 double bookings"] = not any(report["race"]["double_bookings"].values())
        checks["race: 0 booking errors"] = report["race"]["errors"] == 0
    if "faults" in report:
        result = report["faults"]
        checks["faults: 0 duplicates"] = result["duplicates"] == 0
        checks["faults: 0 lost"] = result["lost"] == 0
        checks["faults: all rows sent"] = result["row_states"].get("sent") == result["reminders"]
    return checks


def readable(report: dict[str, Any]) -> str:
    lines = []
    if "load" in report:
        r = report["load"]
        lines += [
            f"LOAD  {r['users']} users, {r['seconds']} s, "
            f"{r['overall']['requests_per_second']} req/s, "
            f"bookings made {r['bookings_made']}, slot conflicts {r['booking_conflicts']}, "
            f"double bookings {r['double_bookings']}",
            table(r),
        ]
    if "race" in report:
        r = report["race"]
        lines.append(
            f"RACE  {r['attempts']} attempts ({r['threads']} threads x {r['rounds']} rounds) in "
            f"{r['seconds']} s: booked {r['booked']}, refused {r['refused_slot_taken']}, "
            f"errors {r['errors']}, double bookings {r['double_bookings']}"
        )
    if "faults" in report:
        r = report["faults"]
        lines.append(
            f"FAULTS {r['reminders']} reminders in {r['seconds']} s: {r['worker_kills']} worker "
            f"SIGKILLs, {r['redis_restarts']} Redis restart, {r['sweeps_published']} sweeps; "
            f"messages {r['messages_written']}, duplicates {r['duplicates']}, lost {r['lost']}, "
            f"rows {r['row_states']}"
        )
    for name, ok in report["invariants"].items():
        lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and short, for development")
    parser.add_argument("--seconds", type=float, default=None, help="load phase length")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=1000, help="conflicting bookings")
    parser.add_argument("--race-threads", type=int, default=8)
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--fault-workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=6.0, help="seconds between SIGKILLs")
    parser.add_argument("--sweep-every", type=float, default=10.0, help="simulated beat interval")
    parser.add_argument(
        "--fault-seconds", type=float, default=300, help="kills stop after this; then 2 min to heal"
    )
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the JSON document here")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = float(os.environ.get("SOAK_SECONDS") or (30 if args.quick else 300))
    if args.quick:
        args.users, args.attempts, args.reminders = min(args.users, 20), 200, 1000
        args.fault_seconds = min(args.fault_seconds, 60)
    phases = [p for p in args.phases.split(",") if p]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    began = time.monotonic()
    report: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="soak-") as temp, throwaway_databases() as names:
        folder = Path(temp)
        say(f"databases ready in {time.monotonic() - began:.0f} s")
        if "load" in phases:
            use_database(names["load"])
            report["load"] = phase_load(args, folder)
        if "race" in phases:
            use_database(names["race"])
            say(f"race: {args.attempts} conflicting bookings")
            report["race"] = race.run_race(attempts=args.attempts, threads=args.race_threads)
        if "faults" in phases:
            use_database(names["faults"])
            say(f"faults: {args.reminders} reminders, SIGKILL every {args.kill_every:.0f} s")
            (folder / "faults").mkdir()
            report["faults"] = faults.run_faults(
                count=args.reminders,
                workers=args.fault_workers,
                kill_every=args.kill_every,
                sweep_every=args.sweep_every,
                time_limit=args.fault_seconds,
                folder=folder / "faults",
            )
        connection.close()
    report["total_seconds"] = round(time.monotonic() - began, 1)
    report["invariants"] = invariants(report)
    report["passed"] = all(report["invariants"].values())
    print(readable(report))
    document = json.dumps(report, indent=2, sort_keys=True)
    print(document)
    if args.json:
        args.json.write_text(document + "\n")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
