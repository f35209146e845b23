"""A synthetic group practice, written with COPY: clinicians, clients, episodes, sessions,
measure histories and flags.

Shape (the defaults are the "large" practice of issue 7): 200 clinicians, each with a fixed
caseload (10,000 clients in all, one open episode each), five sessions a working day on a
fixed hourly grid. Sessions fill the calendar backwards from ``FUTURE_WEEKS`` ahead, so a
larger dataset is a longer *history* with the same near future: 500,000 sessions cover about
two years, 1,000,000 about four. That keeps the reminder sweep's due work the same at every
size, so its time may only grow with the size of the table, which is what we want to see.

Nothing overlaps: a clinician's sessions sit on distinct grid slots, and a client sees only
their own clinician, so both exclusion constraints hold (PostgreSQL checks them during COPY).

    .venv/bin/python bench/data.py [--appointments 500000] [--clinicians 200] [--clients 10000]

run alone, it builds the practice in a throwaway database, prints the counts, and drops it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import zoneinfo
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import conninfo, say, throwaway_databases, timed, use_database

TZ = "Europe/Berlin"
ZONE = zoneinfo.ZoneInfo(TZ)
# The daily grid: 50-minute sessions starting on these local hours, Monday to Friday.
HOURS = (9, 10, 11, 14, 15, 16, 17, 8, 12, 13, 18, 19)
SESSION = timedelta(minutes=50)
FUTURE_WEEKS = 4
SUPERVISION_GROUP = 10  # every 10th clinician supervises the next nine
PHQ9 = [f"phq9_{n}" for n in range(1, 10)]
FEEDBACK = ["relationship", "goals_topics", "approach", "overall"]
PHQ9_BANDS = [
    (20, "severe"),
    (15, "moderately severe"),
    (10, "moderate"),
    (5, "mild"),
    (0, "minimal"),
]
TOTP_DATA = json.dumps({"secret": "bench-not-a-secret"})


@dataclass(frozen=True)
class Scale:
    clinicians: int
    clients: int
    appointments: int
    sessions_per_day: int = 5
    flag_share: float = 0.03


SMALL = Scale(clinicians=10, clients=200, appointments=5_000)
LARGE = Scale(clinicians=200, clients=10_000, appointments=500_000)


@dataclass
class Built:
    """What the generator made, and the ids the benchmarks start from."""

    scale: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    practice_id: int = 0
    admin_id: int = 0
    clinician_id: int = 0  # the first clinician, also a supervisor
    supervisor_id: int = 0
    client_id: int = 0  # the first client of that clinician
    first_day: str = ""
    today: str = ""


def _workdays_back(start_monday: date, count: int) -> list[date]:
    """`count` working days (Mon-Fri) ending the day before `start_monday`, oldest first."""
    days: list[date] = []
    day = start_monday - timedelta(days=1)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def _slot_starts(day: date, per_day: int) -> list[datetime]:
    return [
        datetime.combine(day, time(hour), tzinfo=ZONE).astimezone(UTC)
        for hour in sorted(HOURS[:per_day])
    ]


def build(dbname: str, scale: Scale, *, seed: int = 7, now: datetime | None = None) -> Built:
    """Fill the (migrated, empty) database `dbname` with one synthetic practice."""
    use_database(dbname)
    built = Built(scale=asdict(scale))
    _, built.seconds = timed(lambda: _fill(dbname, scale, built, seed, now or datetime.now(UTC)))
    return built


def _fill(dbname: str, scale: Scale, built: Built, seed: int, now: datetime) -> None:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    today = now.astimezone(ZONE).date()
    this_monday = today - timedelta(days=today.weekday())
    per_day = scale.sessions_per_day
    per_clinician = scale.clients // scale.clinicians
    n_days = -(-scale.appointments // (scale.clinicians * per_day))
    days = _workdays_back(this_monday + timedelta(weeks=FUTURE_WEEKS), n_days)
    first_day = days[0]
    opened = datetime.combine(first_day - timedelta(days=7), time(8), tzinfo=UTC)
    counts: dict[str, int] = {}

    with psycopg.connect(conninfo(dbname)) as conn:
        cur = conn.cursor()
        practice_id = cur.execute(
            """INSERT INTO practice_practice (name, slug, timezone, reminder_offsets,
                   reminder_channels, sms_quiet_starts, sms_quiet_ends, cancellation_window,
                   weekly_hours_cap, daily_session_cap, minimum_break, rest_days,
                   outreach_limit, no_show_grace, default_caseload_capacity,
                   overbooking_needs_reason, created_at)
               VALUES ('Bench practice', 'bench', %s, ARRAY['48 hours', '2 hours']::interval[],
                   ARRAY['email', 'sms'], '21:00', '08:00', '24 hours', 30, 8, '10 minutes',
                   ARRAY[6, 7], 3, '15 minutes', %s, false, %s) RETURNING id""",
            [TZ, per_clinician, opened],
        ).fetchone()
        assert practice_id is not None
        built.practice_id = pid = int(practice_id[0])
        instruments: dict[str, int] = dict(
            cur.execute("SELECT code, id FROM alliance_instrument").fetchall()
        )

        # Staff: clinicians 1..C, then one admin. Every one has TOTP, as MFA requires.
        admin_id = scale.clinicians + 1
        with cur.copy(
            "COPY practice_user (id, password, is_superuser, first_name, last_name, is_staff,"
            " is_active, date_joined, email) FROM STDIN"
        ) as copy:
            for n in range(1, admin_id + 1):
                last = "Admin" if n == admin_id else f"Clinician {n}"
                email = f"staff{n}@bench.example"
                copy.write_row([n, "!", False, "Bench", last, False, True, opened, email])
        with cur.copy(
            "COPY practice_membership (id, is_admin, is_clinician, is_supervisor, is_active,"
            " joined_at, user_id, practice_id) FROM STDIN"
        ) as copy:
            for n in range(1, admin_id + 1):
                staff_clinician = n != admin_id
                supervisor = staff_clinician and (n - 1) % SUPERVISION_GROUP == 0
                copy.write_row(
                    [n, not staff_clinician, staff_clinician, supervisor, True, opened, n, pid]
                )
        with cur.copy(
            "COPY practice_clinicianprofile (id, languages, specialties, timezone, working_days,"
            " work_starts, work_ends, membership_id, agenda_time, backgrounds, external_id,"
            " gender) FROM STDIN"
        ) as copy:
            for n in range(1, scale.clinicians + 1):
                copy.write_row(
                    [
                        n,
                        "{German,English}",
                        "{}",
                        "",
                        "{1,2,3,4,5}",
                        time(8),
                        time(20),
                        n,
                        time(7),
                        "{}",
                        f"T{n}",
                        "",
                    ]
                )
        with cur.copy(
            "COPY mfa_authenticator (type, data, user_id, created_at) FROM STDIN"
        ) as copy:
            for n in range(1, admin_id + 1):
                copy.write_row(["totp", TOTP_DATA, n, opened])
        with cur.copy(
            "COPY practice_supervisionpairing (started_on, practice_id, supervisee_id,"
            " supervisor_id) FROM STDIN"
        ) as copy:
            for n in range(1, scale.clinicians + 1):
                head = (n - 1) // SUPERVISION_GROUP * SUPERVISION_GROUP + 1
                if n != head:
                    copy.write_row([first_day - timedelta(days=7), pid, n, head])
        counts["clinicians"] = scale.clinicians

        # Clients and their one open episode: client k belongs to clinician k // per + 1.
        with cur.copy(
            "COPY practice_client (id, first_name, last_name, email, phone, preferred_language,"
            " timezone, status, needs, preferred_clinician_gender, cultural_background,"
            " preferred_times, created_at, practice_id, email_reminders, sms_reminders,"
            " external_id, faith_background) FROM STDIN"
        ) as copy:
            for k in range(1, scale.clients + 1):
                copy.write_row(
                    [
                        k,
                        "Client",
                        f"Number {k}",
                        f"client{k}@bench.example",
                        "+4930123456",
                        "German",
                        "",
                        "active",
                        "{}",
                        "",
                        "",
                        "{}",
                        opened,
                        pid,
                        rng.random() > 0.05,
                        rng.random() > 0.3,
                        f"C{k}",
                        "",
                    ]
                )
        with cur.copy(
            "COPY practice_episode (id, stage, opened_on, close_reason, client_id, clinician_id,"
            " handoff_note, over_capacity_reason) FROM STDIN"
        ) as copy:
            for k in range(1, scale.clients + 1):
                clinician = min((k - 1) // per_clinician + 1, scale.clinicians)
                copy.write_row([k, "middle", opened.date(), "", k, clinician, "", ""])
        counts["clients"] = counts["episodes"] = scale.clients

        # Sessions and the measures answered after them.
        appointments = responses = 0
        seen: set[int] = set()
        feedback_id, phq9_id = instruments["session-feedback"], instruments["phq-9"]
        with (
            conn.cursor().copy(
                "COPY scheduling_appointment (id, starts_at, ends_at, kind, fee_waived, location,"
                " video_url, status, status_changed_at, link_version, created_at, client_id,"
                " clinician_id, episode_id, practice_id, auto_no_show, needs_review,"
                " override_reason, external_id) FROM STDIN"
            ) as a_copy,
        ):
            pending_responses: list[list[Any]] = []
            for day_index, day in enumerate(days):
                starts = _slot_starts(day, per_day)
                for c in range(scale.clinicians):
                    base = c * per_clinician
                    for s, start in enumerate(starts):
                        if appointments >= scale.appointments:
                            break
                        client = base + (day_index * per_day + s) % per_clinician + 1
                        appointments += 1
                        aid = appointments
                        end = start + SESSION
                        if start > now:
                            status = "confirmed" if rng.random() < 0.15 else "scheduled"
                        else:
                            roll = rng.random()
                            status = (
                                "attended"
                                if roll < 0.8
                                else "no_show"
                                if roll < 0.85
                                else "cancelled_client"
                                if roll < 0.95
                                else "late_cancelled"
                            )
                        kind = "session" if client in seen else "intake"
                        seen.add(client)
                        created = start - timedelta(days=14)
                        a_copy.write_row(
                            [
                                aid,
                                start,
                                end,
                                kind,
                                False,
                                "in_person",
                                "",
                                status,
                                created,
                                1,
                                created,
                                client,
                                c + 1,
                                client,
                                pid,
                                False,
                                False,
                                "",
                                "",
                            ]
                        )
                        if status == "attended" and aid % 2 == 0:
                            pending_responses.append(_feedback(aid, client, end, feedback_id, rng))
                            if aid % 4 == 0:
                                pending_responses.append(_phq9(aid, client, end, phq9_id, rng))
        with cur.copy(
            "COPY alliance_response (instrument_version, answers, total, subscales, band,"
            " safety_triggered, completed_at, collected_via, free_text, appointment_id,"
            " client_id, episode_id, instrument_id, external_id) FROM STDIN"
        ) as copy:
            for row in pending_responses:
                copy.write_row(row)
                responses += 1
        counts["appointments"], counts["responses"] = appointments, responses

        # Some open rupture flags, for the supervisors' queue and the timelines.
        flags = 0
        with cur.copy(
            "COPY alliance_ruptureflag (rule, severity, trigger_key, evidence, raised_at,"
            " client_id, clinician_id, episode_id, practice_id, kind, marker, note, status)"
            " FROM STDIN"
        ) as copy:
            for k in range(1, scale.clients + 1):
                if rng.random() < scale.flag_share or k == 1:
                    clinician = min((k - 1) // per_clinician + 1, scale.clinicians)
                    raised = now - timedelta(days=rng.randint(1, 20))
                    copy.write_row(
                        [
                            "low_alliance",
                            35,
                            f"bench:{k}",
                            json.dumps({"total": 30}),
                            raised,
                            k,
                            clinician,
                            k,
                            pid,
                            "",
                            "",
                            "",
                            "open",
                        ]
                    )
                    flags += 1
        counts["flags"] = flags

        for table in (
            "practice_user",
            "practice_membership",
            "practice_clinicianprofile",
            "practice_client",
            "practice_episode",
            "scheduling_appointment",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(conninfo(dbname), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")

    built.counts = counts
    built.admin_id = admin_id
    built.clinician_id = built.supervisor_id = 1
    built.client_id = 1
    built.first_day = first_day.isoformat()
    built.today = today.isoformat()


def _feedback(
    aid: int, client: int, end: datetime, instrument: int, rng: random.Random
) -> list[Any]:
    low = rng.random() < 0.03
    answers: dict[str, Any] = {
        key: rng.randint(3, 7) if low else rng.randint(8, 10) for key in FEEDBACK
    }
    total = sum(answers.values())
    answers |= {"felt_off": 1 if low else 0, "felt_off_text": ""}
    return [
        1,
        json.dumps(answers),
        total,
        "{}",
        "",
        False,
        end + timedelta(minutes=5),
        "link",
        "",
        aid,
        client,
        client,
        instrument,
        "",
    ]


def _phq9(aid: int, client: int, end: datetime, instrument: int, rng: random.Random) -> list[Any]:
    answers = {key: rng.randint(0, 2) for key in PHQ9[:-1]} | {"phq9_9": 0}
    total = sum(answers.values())
    band = next(label for lower, label in PHQ9_BANDS if total >= lower)
    return [
        1,
        json.dumps(answers),
        total,
        "{}",
        band,
        False,
        end + timedelta(minutes=6),
        "link",
        "",
        aid,
        client,
        client,
        instrument,
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=LARGE.appointments)
    parser.add_argument("--clinicians", type=int, default=LARGE.clinicians)
    parser.add_argument("--clients", type=int, default=LARGE.clients)
    args = parser.parse_args()
    scale = Scale(clinicians=args.clinicians, clients=args.clients, appointments=args.appointments)
    with throwaway_databases() as dbs:
        name = dbs.make("data")
        built = build(name, scale)
    say(f"built in {built.seconds:.1f} s")
    print(json.dumps(asdict(built)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
