"""Flags as CSV or JSON: each flag with its rule, client reference, clinician, status,
evidence and history. Shared by `manage.py export_flags` and the supervisor's download.

The client is referred to by id and initials, never by name: an export leaves the app and
should carry no more than a supervisor needs to find the case again inside it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from django.db.models import Prefetch, QuerySet

from alliance.models import FlagEvent, RuptureFlag

FORMATS = ("csv", "json")

CSV_COLUMNS = [
    "flag_id",
    "practice",
    "rule",
    "rule_label",
    "severity",
    "status",
    "client_id",
    "client_initials",
    "episode_id",
    "clinician_id",
    "clinician",
    "raised_at",
    "acknowledged_at",
    "resolved_at",
    "kind",
    "marker",
    "summary",
    "evidence",
    "history",
]

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def flags_for_export(flags: QuerySet[RuptureFlag]) -> QuerySet[RuptureFlag]:
    """Everything a record reads, in three queries per chunk whatever the number of flags."""
    return (
        flags.select_related("practice", "client", "clinician")
        .prefetch_related(
            Prefetch("events", queryset=FlagEvent.objects.select_related("by").order_by("at", "pk"))
        )
        .order_by("practice_id", "raised_at", "pk")
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _person(user: Any) -> str:
    if user is None:
        return "system"
    return str(user.get_full_name() or user.email)


def flag_record(flag: RuptureFlag) -> dict[str, Any]:
    """One flag as plain data: JSON-ready, and the source of a CSV row."""
    return {
        "flag_id": flag.pk,
        "practice": flag.practice.slug,
        "rule": flag.rule,
        "rule_label": flag.get_rule_display(),
        "severity": flag.severity,
        "status": flag.status,
        "client_id": flag.client_id,
        "client_initials": flag.client.initials,
        "episode_id": flag.episode_id,
        "clinician_id": flag.clinician_id,
        "clinician": _person(flag.clinician),
        "raised_at": _iso(flag.raised_at),
        "acknowledged_at": _iso(flag.acknowledged_at),
        "resolved_at": _iso(flag.resolved_at),
        "kind": flag.kind,
        "marker": flag.marker,
        "summary": flag.summary,
        "evidence": flag.evidence,
        "history": [
            {
                "at": _iso(event.at),
                "by": _person(event.by),
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "note": event.note,
            }
            for event in flag.events.all()
        ],
    }


def flag_records(flags: QuerySet[RuptureFlag]) -> Iterator[dict[str, Any]]:
    """Records in chunks, so that an export of every flag runs in bounded memory."""
    for flag in flags_for_export(flags).iterator(chunk_size=500):
        yield flag_record(flag)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def write_csv(records: Iterable[dict[str, Any]], out: Writable) -> int:
    """One row per flag; evidence and history as JSON in their cells. Returns the count."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    count = 0
    for record in records:
        writer.writerow({key: _cell(record[key]) for key in CSV_COLUMNS})
        count += 1
    return count


def write_json(records: Iterable[dict[str, Any]], out: Writable) -> int:
    """A JSON array of flag records, written one record at a time. Returns the count."""
    out.write("[")
    count = 0
    for record in records:
        out.write(("," if count else "") + "\n  " + json.dumps(record, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_flags(flags: QuerySet[RuptureFlag], out: Writable, *, fmt: str) -> int:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use csv or json.")
    records = flag_records(flags)
    return write_csv(records, out) if fmt == "csv" else write_json(records, out)
