"""`make bench`: every benchmark of issue 7 in one run, as ratios measured side by side.

    .venv/bin/python bench/run.py [--quick] [--only pages,booking,sweeps,peers,import]

Sections: pages (throughput ratios through gunicorn, query counts small vs large), booking
(service vs raw INSERT), sweeps (reminders at 100k and 1M with EXPLAIN, dispatch rate,
rupture and workload sweeps at the large dataset), peers (django-appointment,
django-scheduler in throwaway venvs), import (bench/import_bench.py). All databases are the
benchmark's own and are dropped at the end. --quick shrinks every size, for development.
Prints the readable table on stderr as it goes and at the end, and one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import booking, pages, peers, sweeps
from bench.common import ROOT, Databases, say, throwaway_databases
from bench.data import LARGE, SMALL, Built, Scale, build

SECTIONS = ("pages", "booking", "sweeps", "peers", "import")


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "small": SMALL,
            "large": Scale(clinicians=20, clients=1_000, appointments=20_000),
            "sweep_small": Scale(clinicians=200, clients=10_000, appointments=25_000),
            "sweep_large": Scale(clinicians=200, clients=10_000, appointments=100_000),
            "page_seconds": 2.0,
            "bookings": 100,
            "dispatch": 100,
            "peer_bookings": 50,
            "peer_clinicians": 100,
            "import_appointments": 10_000,
        }
    return {
        "small": SMALL,
        "large": LARGE,
        "sweep_small": Scale(clinicians=200, clients=10_000, appointments=100_000),
        "sweep_large": Scale(clinicians=200, clients=10_000, appointments=1_000_000),
        "page_seconds": 8.0,
        "bookings": 500,
        "dispatch": 1_000,
        "peer_bookings": 200,
        "peer_clinicians": 1_000,
        "import_appointments": 100_000,
    }


class Report:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {"timings_s": {}}
        self.lines: list[tuple[str, str]] = []

    def line(self, label: str, value: str) -> None:
        self.lines.append((label, value))
        say(f"{label}: {value}")

    def timing(self, name: str, started: float) -> None:
        self.data["timings_s"][name] = round(time.perf_counter() - started, 1)


def _build(dbs: Databases, what: str, scale: Scale, report: Report) -> tuple[str, Built]:
    name = dbs.make(what)
    built = build(name, scale)
    report.data.setdefault("datasets", {})[what] = {
        "counts": built.counts,
        "build_s": round(built.seconds, 1),
    }
    report.line(f"dataset {what}", f"{built.counts} built in {built.seconds:.1f} s (COPY)")
    return name, built


def run_pages_and_large(
    dbs: Databases, sizes: dict[str, Any], only: set[str], report: Report
) -> None:
    t = time.perf_counter()
    if "pages" in only:
        pages.collect_static()  # production settings render {% static %} from the manifest
    small_db, small = _build(dbs, "small", sizes["small"], report)
    counts_small = pages.query_counts(small_db, small) if "pages" in only else {}
    dbs.drop(small_db)
    large_db, large = _build(dbs, "large", sizes["large"], report)
    report.timing("datasets_small_and_large", t)

    if "pages" in only:
        t = time.perf_counter()
        counts_large = pages.query_counts(large_db, large)
        equal = True
        rows = {}
        for page, small_row in counts_small.items():
            large_row = counts_large[page]
            same = small_row["queries"] == large_row["queries"]
            equal &= same
            rows[page] = {"small": small_row, "large": large_row, "equal": same}
            flag = "equal" if same else "!!! DIFFERENT — the query count grows with the data !!!"
            report.line(
                f"queries: {page}",
                f"small {small_row['queries']} / large {large_row['queries']} "
                f"(HTTP {small_row['status']}/{large_row['status']}) {flag}",
            )
        report.data["query_counts"] = {"pages": rows, "all_equal": equal}
        if not equal:
            say("!!! QUERY COUNTS DIFFER BETWEEN THE SMALL AND LARGE DATASETS: tell the lead !!!")
        tp = pages.throughput(large_db, large, seconds=sizes["page_seconds"])
        report.data["page_throughput"] = tp
        report.line(
            "trivial view",
            f"{tp['trivial_rps']} req/s (before {tp['trivial_before']['rps']}, "
            f"after {tp['trivial_after']['rps']})",
        )
        for page, row in tp["pages"].items():
            errors = f" ({row['non_200']} non-200: {row['statuses']})" if row["non_200"] else ""
            report.line(
                f"throughput: {page}",
                f"{row['rps']} req/s = {row['ratio_to_trivial']} x trivial{errors}",
            )
        report.timing("pages", t)

    if "booking" in only:
        t = time.perf_counter()
        result = booking.booking_throughput(large_db, large, count=sizes["bookings"])
        report.data["booking"] = result
        report.line(
            "booking: appointment_book / raw INSERT",
            f"{result['service_per_second']} vs {result['raw_insert_per_second']} per s: "
            f"throughput ratio {result['throughput_ratio_service_to_raw']} "
            f"(one booking = {result['time_ratio_service_to_raw']} raw inserts)",
        )
        report.timing("booking", t)

    if "sweeps" in only:
        t = time.perf_counter()
        dispatch = sweeps.dispatch_rate(large_db, limit=sizes["dispatch"])
        report.data["reminder_dispatch"] = dispatch
        report.line(
            "reminder dispatch (one process, locmem)",
            f"{dispatch['per_second_per_process']} /s ({dispatch['ms_each']} ms each; "
            f"{dispatch['states']} {dispatch['channels']})",
        )
        other = sweeps.rupture_and_workload(large_db)
        report.data["large_sweeps"] = other
        report.line(
            "rupture sweep (large)",
            f"{other['rupture_sweep_first_s']} s first, {other['rupture_sweep_again_s']} s again; "
            f"{other['rupture_flags_raised']} flags raised",
        )
        report.line(
            "workload sweep (large)",
            f"{other['workload_sweep_first_s']} s first, "
            f"{other['workload_sweep_again_s']} s again; "
            f"{other['workload_alerts_opened_or_updated']} alerts",
        )
        report.timing("dispatch_rupture_workload", t)
    dbs.drop(large_db)


def run_reminder_sweeps(dbs: Databases, sizes: dict[str, Any], report: Report) -> None:
    t = time.perf_counter()
    results: dict[str, Any] = {}
    for what in ("sweep_small", "sweep_large"):
        name, _built = _build(dbs, what, sizes[what], report)
        result = sweeps.reminder_sweep(name)
        result["what_if_index"] = sweeps.what_if_index(name)
        results[what] = result
        dbs.drop(name)
        plan = result["explain"]["plan"]
        report.line(
            f"reminder sweep at {result['appointments']:,}",
            f"first {result['first_run_s']} s, steady {result['steady_s']} s; "
            f"plan stmt reads appointments by {plan['appointment_access']}; "
            f"with what-if index: steady {result['what_if_index']['steady_s']} s",
        )
    small, large = results["sweep_small"], results["sweep_large"]
    summary = {
        "steady_ratio_large_to_small": round(large["steady_s"] / small["steady_s"], 2),
        "first_run_ratio_large_to_small": round(large["first_run_s"] / small["first_run_s"], 2),
        "what_if_steady_ratio": round(
            large["what_if_index"]["steady_s"] / small["what_if_index"]["steady_s"], 2
        ),
        "uses_index": {k: v["uses_index"] for k, v in large["explain"].items()},
        "seq_scan_on_appointments": {
            k: v["seq_scan_on_appointments"] for k, v in large["explain"].items()
        },
    }
    results["summary"] = summary
    report.data["reminder_sweep"] = results
    report.line(
        "reminder sweep 1M/100k (steady)",
        f"{summary['steady_ratio_large_to_small']} "
        f"(first run {summary['first_run_ratio_large_to_small']}; with what-if index "
        f"{summary['what_if_steady_ratio']})",
    )
    if any(summary["seq_scan_on_appointments"].values()):
        report.line(
            "EXPLAIN",
            "!!! the sweep scans scheduling_appointment sequentially: "
            f"{summary['seq_scan_on_appointments']}; suggested index (NOT added as a "
            f"migration): {sweeps.WHAT_IF_INDEX}",
        )
    else:
        report.line(
            "EXPLAIN", f"every sweep statement reads appointments by index: {summary['uses_index']}"
        )
    print("\n--- EXPLAIN (ANALYZE) of the reminder sweep at the large size ---", file=sys.stderr)
    for stmt, row in large["explain"].items():
        print(f"[{stmt}]\n" + "\n".join(row["plan"]), file=sys.stderr)
    report.timing("reminder_sweeps", t)


def run_peers(dbs: Databases, sizes: dict[str, Any], report: Report) -> None:
    t = time.perf_counter()
    name = dbs.make("peer_ours")
    result = peers.peers(name, bookings=sizes["peer_bookings"], clinicians=sizes["peer_clinicians"])
    dbs.drop(name)
    report.data["peers"] = result
    for label, row in result.items():
        theirs = row["theirs"]
        if row["ours_over_theirs"] is None:
            report.line(
                f"peer {label}",
                f"NOT MEASURED: {theirs.get('status')}: {str(theirs.get('detail', ''))[-300:]!r}",
            )
        else:
            report.line(
                f"peer {label}",
                f"ours {row['ours']['seconds']:.3f} s / theirs "
                f"{theirs['seconds']:.3f} s = {row['ours_over_theirs']}",
            )
    report.timing("peers", t)


def run_import(sizes: dict[str, Any], report: Report) -> None:
    t = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "import_bench.py"),
            "--appointments",
            str(sizes["import_appointments"]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        report.data["import"] = {"status": "failed", "detail": done.stderr[-800:]}
        report.line("import", "FAILED")
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        report.data["import"] = result
        report.line(
            "import",
            f"{result['import']['rows_per_second']:,} rows/s, re-import "
            f"{result['reimport']['rows_per_second']:,} rows/s",
        )
    report.timing("import", t)


def _guarded(section: str, report: Report, func: Callable[..., None], *args: Any) -> None:
    """One failing section is reported loudly; the others still run and print."""
    try:
        func(*args)
    except Exception as exc:
        traceback.print_exc()
        report.data.setdefault("errors", {})[section] = f"{type(exc).__name__}: {exc}"[:1000]
        report.line(f"!!! {section} FAILED", f"{type(exc).__name__}: {exc}"[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    sizes = _sizes(args.quick)
    report = Report()
    report.data["mode"] = "quick" if args.quick else "full"
    started = time.perf_counter()
    with throwaway_databases() as dbs:
        report.timing("migrate_template", started)
        if only & {"pages", "booking", "sweeps"}:
            _guarded(
                "pages/booking/large sweeps", report, run_pages_and_large, dbs, sizes, only, report
            )
        if "sweeps" in only:
            _guarded("reminder sweeps", report, run_reminder_sweeps, dbs, sizes, report)
        if "peers" in only:
            _guarded("peers", report, run_peers, dbs, sizes, report)
    if "import" in only:
        _guarded("import", report, run_import, sizes, report)
    report.timing("total", started)
    report.line("total wall time", f"{report.data['timings_s']['total']} s")
    width = max(len(label) for label, _ in report.lines)
    print("\n=== make bench ===", file=sys.stderr)
    for label, value in report.lines:
        print(f"{label:<{width}}  {value}", file=sys.stderr)
    print(json.dumps(report.data, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
