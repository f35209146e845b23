"""Conflicting bookings at the same instant, through the booking service, then a count of
double bookings in the database by SQL.

Rounds of THREADS attempts, released together by a barrier, each thread with its own
database connection and transaction as concurrent web requests would have. Every round aims
at one clinician's slot in one of three ways: many clients at the same start, many clients
at staggered overlapping starts, or one client submitted many times. Exactly one attempt per
round may win.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from practice.models import Client, ClinicianProfile, Episode, Membership, Practice, User
from scheduling.models import ACTIVE_STATUSES, Appointment
from scheduling.services import Slot, SlotTaken, appointment_book

# Pairs of active appointments of one clinician (or one client) whose times intersect.
# Independent of the exclusion constraints they check: plain interval arithmetic.
DOUBLE_BOOKINGS_SQL = """
SELECT count(*)
FROM scheduling_appointment a
JOIN scheduling_appointment b
  ON a.{column} = b.{column} AND a.id < b.id
 AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
WHERE a.status = ANY(%(active)s) AND b.status = ANY(%(active)s)
"""


def double_bookings() -> dict[str, int]:
    found = {}
    with connection.cursor() as cursor:
        for column in ("clinician_id", "client_id"):
            cursor.execute(
                DOUBLE_BOOKINGS_SQL.format(column=column), {"active": list(ACTIVE_STATUSES)}
            )
            found[f"per_{column.removesuffix('_id')}"] = int(cursor.fetchone()[0])
    return found


def _seed(clinicians: int, clients_each: int) -> list[tuple[User, list[Client]]]:
    practice = Practice.objects.create(name="Race practice", slug="race", timezone="UTC")
    cast = []
    for n in range(clinicians):
        user = User.objects.create(email=f"racer{n}@soak.example")
        membership = Membership.objects.create(user=user, practice=practice, is_clinician=True)
        ClinicianProfile.objects.create(membership=membership)
        clients = Client.objects.bulk_create(
            Client(practice=practice, first_name="R", last_name=f"{n}-{c}")
            for c in range(clients_each)
        )
        Episode.objects.bulk_create(Episode(client=c, clinician=user) for c in clients)
        cast.append((user, clients))
    return cast


def run_race(*, attempts: int, threads: int) -> dict[str, Any]:
    rounds = max(1, attempts // threads)
    clinicians = 5
    cast = _seed(clinicians, threads)
    # Far enough ahead that nothing else is booked there; rounds two hours apart, so that
    # only the attempts within one round overlap each other.
    base = (timezone.now() + timedelta(days=400)).replace(minute=0, second=0, microsecond=0)
    outcomes: Counter[str] = Counter()
    winners = [0] * rounds
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def attempt(index: int) -> None:
        try:
            for r in range(rounds):
                clinician, clients = cast[r % clinicians]
                start: datetime = base + timedelta(hours=2 * r)
                client = clients[index]
                if r % 3 == 1:
                    start += timedelta(minutes=5 * index)  # all within 50 minutes: all overlap
                elif r % 3 == 2:
                    client = clients[0]  # one client, double-submitted `threads` times
                slot = Slot(starts_at=start, ends_at=start + timedelta(minutes=50))
                barrier.wait(timeout=60)
                try:
                    appointment_book(
                        clinician=clinician, client=client, slot=slot, actor=clinician, notify=False
                    )
                except SlotTaken:
                    outcome = "refused_slot_taken"
                except Exception as exc:  # anything else is a failure of the booking path
                    outcome = "error"
                    with lock:
                        errors.append(repr(exc)[:300])
                else:
                    outcome = "booked"
                    with lock:
                        winners[r] += 1
                with lock:
                    outcomes[outcome] += 1
        except threading.BrokenBarrierError:
            with lock:
                errors.append("barrier broken: a thread hung or failed")
        finally:
            connection.close()

    began = time.monotonic()
    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    elapsed = time.monotonic() - began
    found = double_bookings()
    return {
        "attempts": sum(outcomes.values()),
        "threads": threads,
        "rounds": rounds,
        "seconds": round(elapsed, 1),
        "booked": outcomes["booked"],
        "refused_slot_taken": outcomes["refused_slot_taken"],
        "errors": outcomes["error"],
        "error_samples": errors[:5],
        "rounds_with_one_winner": sum(w == 1 for w in winners),
        "rounds_with_several_winners": sum(w > 1 for w in winners),
        "active_appointments": Appointment.objects.active().filter(practice__slug="race").count(),
        "double_bookings": found,
    }
