"""The other system's history used by the import tests: two clinicians (one who left), three
clients, six sessions and two questionnaires, as CSV text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

# The tests' clock: a Tuesday in October, before the clocks go back in Berlin.
NOW = datetime(2024, 10, 15, 12, 0, tzinfo=UTC)

CLINICIANS = [
    {"external_id": "T1", "email": "Hanna.Berg@old.example", "first_name": "Hanna", "last_name": "Berg",
     "languages": "German; English", "specialties": "anxiety;grief", "timezone": "", "active": ""},
    {"external_id": "T2", "email": "ole@old.example", "first_name": "Ole", "last_name": "Lund",
     "languages": "", "specialties": "", "timezone": "Europe/Oslo", "active": "no"},
]  # fmt: skip
CLIENTS = [
    {"external_id": "C1", "first_name": "Ada", "last_name": "Kern", "email": "ada@example.org",
     "phone": "+49 30 1234567", "status": ""},
    {"external_id": "C2", "first_name": "Ben", "last_name": "Roth", "email": "", "phone": "",
     "status": "discharged"},
    {"external_id": "C3", "first_name": "Cem", "last_name": "Aydin", "email": "", "phone": "",
     "status": ""},
]  # fmt: skip
APPOINTMENTS = [
    # Ada: two sessions with Ole (who left), then Hanna, with one booked ahead.
    {"external_id": "A1", "clinician_external_id": "T2", "client_external_id": "C1",
     "starts_at": "2024-03-05T09:00:00+01:00", "ends_at": "2024-03-05T09:50:00+01:00",
     "status": "attended"},
    {"external_id": "A2", "clinician_external_id": "T2", "client_external_id": "C1",
     "starts_at": "2024-03-12 09:00", "duration_minutes": "50", "status": "No-show"},
    {"external_id": "A3", "clinician_external_id": "T1", "client_external_id": "C1",
     "starts_at": "2024-07-02 14:00", "duration_minutes": "50", "status": "attended"},
    {"external_id": "A4", "clinician_external_id": "T1", "client_external_id": "C1",
     "starts_at": "2024-10-22 14:00", "duration_minutes": "50", "status": "scheduled",
     "location": "video", "video_url": "https://meet.example/ada"},
    # Ben: discharged after one session with Hanna, and a cancellation.
    {"external_id": "A5", "clinician_external_id": "T1", "client_external_id": "C2",
     "starts_at": "2024-05-06 10:00", "duration_minutes": "50", "status": "attended",
     "kind": "intake"},
    {"external_id": "A6", "clinician_external_id": "T1", "client_external_id": "C2",
     "starts_at": "2024-05-13 10:00", "duration_minutes": "50", "status": "cancelled_client"},
]  # fmt: skip
RESPONSES = [
    {"external_id": "R1", "client_external_id": "C1", "instrument": "phq-9",
     "completed_at": "2024-03-05 08:45", "appointment_external_id": "A1",
     **{f"phq9_{n}": "2" for n in range(1, 10)}, "phq9_9": "0"},
    # Before the first session with Hanna, with no session named: her episode is nearest.
    {"external_id": "R2", "client_external_id": "C1", "instrument": "GAD-7",
     "completed_at": "2024-07-01T18:00:00+02:00",
     **{f"gad7_{n}": "1" for n in range(1, 8)}},
]  # fmt: skip


def csv_text(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def history(**changes: list[dict[str, str]] | None) -> dict[str, str]:
    """The four files as text; a keyword replaces one file's rows, or leaves it out (None)."""
    rows = {"clinicians": CLINICIANS, "clients": CLIENTS, "appointments": APPOINTMENTS,
            "responses": RESPONSES, **changes}  # fmt: skip
    return {f"{name}.csv": csv_text(value) for name, value in rows.items() if value is not None}


def many_sessions(sessions: int, domain: str = "old.example") -> dict[str, str]:
    """Files with many attended sessions, none overlapping: 40 clinicians with one session
    an hour each, 25 clients each."""
    clinicians, per_clinician = 40, 25
    start = datetime(2023, 1, 2, 8, 0)
    lines = [
        "external_id,clinician_external_id,client_external_id,starts_at,duration_minutes,status"
    ]
    for n in range(sessions):
        clinician, hour = n % clinicians, n // clinicians
        client = clinician * per_clinician + hour % per_clinician
        when = start + timedelta(hours=hour)
        lines.append(f"A{n},T{clinician},C{client},{when:%Y-%m-%d %H:%M},50,attended")
    return {
        "clinicians.csv": "external_id,email,first_name,last_name\n"
        + "".join(f"T{n},t{n}@{domain},T,{n}\n" for n in range(clinicians)),
        "clients.csv": "external_id,first_name,last_name\n"
        + "".join(f"C{n},C,{n}\n" for n in range(clinicians * per_clinician)),
        "appointments.csv": "\n".join(lines) + "\n",
    }
