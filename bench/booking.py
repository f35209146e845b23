"""Booking throughput: the booking service against a raw INSERT of the same row.

Both write one session per transaction into scheduling_appointment, with its exclusion
constraints, indexes and checks, for the same clinician and client, on a weekend a year
ahead where nothing else is booked (the two runs use disjoint hours, so neither collides).
The service also checks the slot and the parties, finds the open episode, takes the two
advisory locks, records the status change and the audit event; enqueueing the booking notice
(notify) is left out, since it measures Redis rather than the booking.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from bench.common import conninfo, timed, use_database
from bench.data import SESSION, Built
from practice.models import Client, User
from scheduling.services import Slot, appointment_book

INSERT_SQL = """
INSERT INTO scheduling_appointment (starts_at, ends_at, kind, fee_waived, location, video_url,
    status, status_changed_at, link_version, created_at, client_id, clinician_id, episode_id,
    practice_id, auto_no_show, needs_review, override_reason, external_id, created_by_id)
VALUES (%s, %s, 'session', false, 'in_person', '', 'scheduled', now(), 1, now(), %s, %s, %s,
    %s, false, false, '', '', %s)
"""


def _hourly_slots(first: date, count: int, *, skip: int = 0) -> list[datetime]:
    """`count` hourly starts on weekends from `first` on (weekdays hold generated sessions)."""
    # Hours in UTC: local hours would repeat (or vanish) on the days the clocks change.
    starts: list[datetime] = []
    day, index = first, 0
    while len(starts) < count:
        if day.weekday() >= 5:
            for hour in range(24):
                if index >= skip and len(starts) < count:
                    starts.append(datetime.combine(day, time(hour), tzinfo=UTC))
                index += 1
        day += timedelta(days=1)
    return starts


def booking_throughput(dbname: str, built: Built, *, count: int) -> dict[str, Any]:
    use_database(dbname)
    clinician = User.objects.get(pk=built.clinician_id)
    client = Client.objects.select_related("practice").get(pk=built.client_id)
    first = datetime.now(UTC).date() + timedelta(days=365)
    ours_slots = _hourly_slots(first, count)
    raw_slots = _hourly_slots(first, count, skip=count)

    def ours() -> None:
        for start in ours_slots:
            appointment_book(
                clinician=clinician,
                client=client,
                slot=Slot(starts_at=start, ends_at=start + SESSION),
                actor=clinician,
                notify=False,
            )

    def raw() -> None:
        with psycopg.connect(conninfo(dbname), autocommit=True) as conn:
            for start in raw_slots:
                conn.execute(
                    INSERT_SQL,
                    [
                        start,
                        start + SESSION,
                        client.pk,
                        clinician.pk,
                        built.client_id,
                        built.practice_id,
                        clinician.pk,
                    ],
                )

    # Raw first, then ours, then raw again on fresh hours would double the data; one round
    # each, raw first so that neither benefits from the other's warmed-up pages unfairly.
    _, raw_seconds = timed(raw)
    _, ours_seconds = timed(ours)
    return {
        "bookings": count,
        "service_per_second": round(count / ours_seconds, 1),
        "raw_insert_per_second": round(count / raw_seconds, 1),
        "service_ms_each": round(1000 * ours_seconds / count, 3),
        "raw_insert_ms_each": round(1000 * raw_seconds / count, 3),
        # Our time divided by the raw INSERT's: how many raw inserts one booking costs.
        "time_ratio_service_to_raw": round(ours_seconds / raw_seconds, 2),
        "throughput_ratio_service_to_raw": round(raw_seconds / ours_seconds, 4),
    }
