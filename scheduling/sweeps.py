"""Every periodic job, runnable at once (``manage.py sweep``) or one by one from beat.

Sweeps take ``now`` so that operators and tests can run them "as if" at another time. Each
is set-based and self-healing: it looks at the database as it is, not at queued tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from scheduling import agendas, noshows, reminders, workload


def run_all(*, now: datetime, send: Callable[[str, list[int], datetime], Any]) -> dict[str, Any]:
    """Run every sweep once. ``send(kind, ids)`` delivers the work the sweeps found: the
    command sends synchronously, beat enqueues tasks."""
    report: dict[str, Any] = {}
    report["no_shows"] = len(noshows.noshow_sweep(now=now))
    opened, resolved = workload.workload_sweep(now=now)
    report["workload_alerts"] = {"opened_or_updated": opened, "resolved": resolved}
    due = reminders.reminders_sweep(now=now)
    send("reminder", due, now)
    report["reminders_due"] = len(due)
    agenda_ids = agendas.agenda_sweep(now=now)
    send("agenda", agenda_ids, now)
    heads_up_ids = agendas.heads_up_sweep(now=now)
    send("heads_up", heads_up_ids, now)
    report["agendas"] = len(agenda_ids)
    report["heads_ups"] = len(heads_up_ids)
    return report


def send_now(kind: str, ids: list[int], now: datetime) -> None:
    """Synchronous delivery, for the command: the same services the workers call."""
    for pk in ids:
        if kind == "reminder":
            reminders.reminder_send(delivery_id=pk, now=now)
        elif kind == "agenda":
            agendas.agenda_send(notice_id=pk)
        elif kind == "heads_up":
            agendas.heads_up_send(notice_id=pk)
