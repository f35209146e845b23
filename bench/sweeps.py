"""The periodic sweeps at scale: reminders (with EXPLAIN), reminder dispatch, ruptures, workload.

The reminder sweep is timed twice per dataset: the first run plans every reminder that fell
due (inserts), the later runs are the steady state a beat tick sees every minute (nothing new
to plan). The datasets differ in history length only (see bench/data.py), so the due work is
the same at 100k and at 1M sessions and the 1M/100k ratio shows how the sweep grows with the
table. A what-if index is then tried in the throwaway database only, never as a migration.
"""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import mail
from django.db import connection, transaction

from alliance.sweeps import rupture_sweep
from bench.common import timed, use_database
from scheduling import reminders
from scheduling.models import ReminderDelivery
from scheduling.workload import workload_sweep

WHAT_IF_INDEX = (
    "CREATE INDEX bench_whatif_open_starts ON scheduling_appointment (starts_at) "
    "WHERE status IN ('scheduled', 'confirmed')"
)
STATEMENTS = {"plan": reminders.PLAN_SQL, "skip": reminders.SKIP_SQL, "due": reminders.DUE_SQL}


def explain(now: datetime) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement of the sweep, rolled back."""
    out: dict[str, Any] = {}
    params = {"now": now, "since": now - reminders.LOOKBACK}
    for name, statement in STATEMENTS.items():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [row[0] for row in cursor.fetchall()]
            transaction.set_rollback(True)
        text = "\n".join(lines)
        appointment_scans = re.findall(
            r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|"
            r"Bitmap Index Scan)(?: using (\w+))? on (\w+)",
            text,
        )
        on_appointments = [
            f"{kind}{f' using {index}' if index else ''}"
            for kind, index, table in appointment_scans
            if table == "scheduling_appointment"
        ]
        out[name] = {
            "appointment_access": on_appointments,
            "seq_scan_on_appointments": any(a.startswith("Seq Scan") for a in on_appointments),
            "uses_index": any("Index" in a for a in on_appointments)
            or bool(re.search(r"Index (Only )?Scan", text)),
            "execution_ms": _execution_ms(text),
            "plan": lines,
        }
    return out


def _execution_ms(text: str) -> float | None:
    found = re.search(r"Execution Time: ([\d.]+) ms", text)
    return float(found.group(1)) if found else None


def reminder_sweep(dbname: str, *, repeats: int = 3, now: datetime | None = None) -> dict[str, Any]:
    use_database(dbname)
    now = now or datetime.now(UTC)
    connection.ensure_connection()  # time the sweep, not the connection set-up
    due, first = timed(lambda: reminders.reminders_sweep(now=now))
    steady = [timed(lambda: reminders.reminders_sweep(now=now))[1] for _ in range(repeats)]
    rows = ReminderDelivery.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM scheduling_appointment")
        row = cursor.fetchone()
    return {
        "appointments": int(row[0]) if row else 0,
        "first_run_s": round(first, 3),
        "steady_s": round(statistics.median(steady), 4),
        "steady_runs_s": [round(s, 4) for s in steady],
        "reminder_rows": rows,
        "due_now": len(due),
        "explain": explain(now),
    }


def what_if_index(dbname: str, *, repeats: int = 3) -> dict[str, Any]:
    """The suggested index, created in this throwaway database only, and the sweep again."""
    use_database(dbname)
    with connection.cursor() as cursor:
        cursor.execute(WHAT_IF_INDEX)
        cursor.execute("ANALYZE scheduling_appointment")
    now = datetime.now(UTC)
    steady = [timed(lambda: reminders.reminders_sweep(now=now))[1] for _ in range(repeats)]
    return {
        "index": WHAT_IF_INDEX,
        "steady_s": round(statistics.median(steady), 4),
        "explain": explain(now),
    }


def dispatch_rate(dbname: str, *, limit: int) -> dict[str, Any]:
    """reminder_send in a loop, in this one process, with locmem email and SMS backends."""
    use_database(dbname)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_BACKEND = "scheduling.sms.LocmemSmsBackend"
    mail.outbox = []
    now = datetime.now(UTC)
    due = reminders.reminders_sweep(now=now)[:limit]
    states: dict[str, int] = {}

    def send() -> None:
        for delivery_id in due:
            state = reminders.reminder_send(delivery_id=delivery_id, now=now)
            states[state] = states.get(state, 0) + 1

    _, seconds = timed(send)
    channels = dict(
        ReminderDelivery.objects.filter(pk__in=due)
        .values_list("channel")
        .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("pk"))
        .order_by()
    )
    return {
        "sent_or_finished": len(due),
        "seconds": round(seconds, 2),
        "per_second_per_process": round(len(due) / seconds, 1) if seconds else None,
        "ms_each": round(1000 * seconds / len(due), 2) if due else None,
        "states": states,
        "channels": channels,
        "emails_in_outbox": len(mail.outbox),
    }


def rupture_and_workload(dbname: str) -> dict[str, Any]:
    use_database(dbname)
    now = datetime.now(UTC)
    flags, rupture_first = timed(lambda: rupture_sweep(now=now))
    _, rupture_again = timed(lambda: rupture_sweep(now=now))
    alerts, workload_first = timed(lambda: workload_sweep(now=now))
    _, workload_again = timed(lambda: workload_sweep(now=now))
    return {
        "rupture_sweep_first_s": round(rupture_first, 2),
        "rupture_sweep_again_s": round(rupture_again, 2),
        "rupture_flags_raised": len(flags),
        "workload_sweep_first_s": round(workload_first, 3),
        "workload_sweep_again_s": round(workload_again, 3),
        "workload_alerts_opened_or_updated": alerts[0],
        "workload_alerts_resolved": alerts[1],
    }
