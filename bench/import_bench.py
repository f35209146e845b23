"""Benchmark: import 100k appointments (with clinicians, clients and responses) from CSV.

Not a test, and not timed by CI: run it with `make bench` (the same devenv wrapper as the
other targets, so it uses DATABASE_URL or the embedded servers) to see how the importer
scales. It generates the four CSV files in a temporary folder, imports them into a fresh
practice in a throwaway database (created like the test database, then dropped), imports
them a second time (everything is found unchanged), and prints rows per second and peak
memory, as a table and as one JSON line.

    .venv/bin/python bench/import_bench.py [--appointments 100000] [--tracemalloc]

Peak memory is the process's peak resident set (ru_maxrss), which includes Django and the
files held in memory. --tracemalloc also reports the peak of Python allocations during the
import, at the cost of a much slower run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "practice.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from practice.imports import FILE_NAMES, decode_csv, history_import  # noqa: E402
from practice.models import Practice  # noqa: E402

SESSIONS_PER_CLIENT = 20
CLIENTS_PER_CLINICIAN = 25
# Working hours of the generated calendar: six sessions a day, Monday to Friday.
HOURS = (9, 10, 11, 14, 15, 16)
PHQ9_KEYS = [f"phq9_{n}" for n in range(1, 10)]


def generate(folder: Path, appointments: int, rng: random.Random) -> dict[str, int]:
    """Write the four files; return their row counts. Every clinician's sessions take the
    next free slot of their own week grid, so nothing overlaps (the import would refuse it)."""
    clinicians = max(1, appointments // (SESSIONS_PER_CLIENT * CLIENTS_PER_CLINICIAN))
    clients = clinicians * CLIENTS_PER_CLINICIAN
    first_day = date(2022, 1, 3)  # a Monday
    today = date.today()

    def slot(index: int) -> datetime:
        day, hour = divmod(index, len(HOURS))
        week, weekday = divmod(day, 5)
        moment = first_day + timedelta(weeks=week, days=weekday)
        return datetime(moment.year, moment.month, moment.day, HOURS[hour])

    with (folder / "clinicians.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["external_id", "email", "first_name", "last_name", "languages"])
        for n in range(clinicians):
            out.writerow([f"T{n}", f"clinician{n}@bench.example", "Clin", f"Ician {n}", "German"])

    with (folder / "clients.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["external_id", "first_name", "last_name", "email", "phone"])
        for n in range(clients):
            out.writerow([f"C{n}", "Cli", f"Ent {n}", f"client{n}@bench.example", "+4930123456"])

    responses = 0
    with (
        (folder / "appointments.csv").open("w", newline="", encoding="utf-8") as a_handle,
        (folder / "responses.csv").open("w", newline="", encoding="utf-8") as r_handle,
    ):
        a_out, r_out = csv.writer(a_handle), csv.writer(r_handle)
        a_out.writerow(["external_id", "clinician_external_id", "client_external_id",
                        "starts_at", "duration_minutes", "status", "kind"])  # fmt: skip
        r_out.writerow(["external_id", "client_external_id", "instrument", "completed_at",
                        "appointment_external_id", *PHQ9_KEYS])  # fmt: skip
        for n in range(appointments):
            clinician, position = divmod(n, SESSIONS_PER_CLIENT * CLIENTS_PER_CLINICIAN)
            clinician = min(clinician, clinicians - 1)
            client = clinician * CLIENTS_PER_CLINICIAN + position % CLIENTS_PER_CLINICIAN
            starts = slot(position)
            if starts.date() >= today:
                status = "scheduled"
            else:
                roll = rng.random()
                status = (
                    "attended" if roll < 0.8
                    else "no_show" if roll < 0.85
                    else "cancelled_client" if roll < 0.95
                    else "late_cancelled"
                )  # fmt: skip
            kind = "intake" if position < CLIENTS_PER_CLINICIAN else "session"
            # Local wall-clock times in the practice's zone, as most exports give them.
            when = starts.strftime("%Y-%m-%d %H:%M")
            a_out.writerow([f"A{n}", f"T{clinician}", f"C{client}", when, 50, status, kind])
            if status == "attended" and n % 2 == 0:
                answers = [rng.randint(0, 3) for _ in PHQ9_KEYS[:-1]] + [0]
                completed = (starts - timedelta(minutes=15)).strftime("%Y-%m-%d %H:%M")
                r_out.writerow([f"R{n}", f"C{client}", "phq-9", completed, f"A{n}", *answers])
                responses += 1
    return {
        "clinicians.csv": clinicians,
        "clients.csv": clients,
        "appointments.csv": appointments,
        "responses.csv": responses,
    }


def peak_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def run(folder: Path, practice: Practice, *, trace: bool) -> dict[str, Any]:
    started = time.perf_counter()
    files = {name: decode_csv(name, (folder / name).read_bytes()) for name in FILE_NAMES}
    phases: dict[str, float] = {}

    def on_phase(state: str) -> None:
        phases["validated_after_s"] = round(time.perf_counter() - started, 2)

    if trace:
        tracemalloc.start()
    summary = history_import(practice=practice, files=files, on_phase=on_phase)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "seconds": round(seconds, 2),
        **phases,
        "created": summary.created,
        "counts": summary.counts,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if trace:
        result["peak_python_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return result


@contextlib.contextmanager
def throwaway_database() -> Iterator[None]:
    """A database of its own, migrated like the test database, dropped afterwards."""
    name = f"{settings.DATABASES['default']['NAME']}_import_bench"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    original = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=100_000)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python memory")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="import-bench-") as temp:
        folder = Path(temp)
        began = time.perf_counter()
        rows = generate(folder, args.appointments, random.Random(args.seed))  # noqa: S311
        generated = time.perf_counter() - began
        size_mb = sum((folder / name).stat().st_size for name in FILE_NAMES) / 2**20
        baseline = peak_rss_mb()
        with throwaway_database():
            practice = Practice.objects.create(name="Bench", slug="bench", timezone="Europe/Berlin")
            first = run(folder, practice, trace=args.tracemalloc)
            again = run(folder, practice, trace=False)

    total_rows = sum(rows.values())
    per_second = round(total_rows / first["seconds"])
    again_per_second = round(total_rows / again["seconds"])
    report: dict[str, Any] = {
        "rows": rows,
        "total_rows": total_rows,
        "csv_mb": round(size_mb, 1),
        "generate_seconds": round(generated, 2),
        "rss_before_import_mb": round(baseline, 1),
        "import": {**first, "rows_per_second": per_second},
        "reimport": {**again, "rows_per_second": again_per_second},
    }
    validated = first.get("validated_after_s", 0)
    appointments_per_second = round(rows["appointments.csv"] / first["seconds"])
    table = [
        ("rows: clinicians / clients / appointments / responses",
         " / ".join(f"{n:,}" for n in rows.values())),
        ("CSV size", f"{size_mb:.1f} MB"),
        ("import: wall time", f"{first['seconds']:.1f} s (validated after {validated:.1f} s)"),
        ("import: rows per second", f"{per_second:,}"),
        ("import: appointments per second", f"{appointments_per_second:,}"),
        ("re-import (all unchanged): wall time", f"{again['seconds']:.1f} s"),
        ("re-import: rows per second", f"{again_per_second:,}"),
        ("peak RSS (process)", f"{first['peak_rss_mb']:.0f} MB (before: {baseline:.0f} MB)"),
    ]  # fmt: skip
    if "peak_python_mb" in first:
        table.append(("peak Python allocations (tracemalloc)", f"{first['peak_python_mb']:.0f} MB"))
    width = max(len(label) for label, _ in table)
    for label, value in table:
        print(f"{label:<{width}}  {value}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
