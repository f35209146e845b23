"""Many bookings for one slot at the same instant: PostgreSQL lets exactly one through.

Each thread has its own database connection and its own transaction, as concurrent web
requests would; a barrier releases them together. Nothing here sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from practice.models import Client, Episode, Practice, User
from scheduling.models import Appointment
from scheduling.services import Slot, SlotTaken, _insert, appointment_book
from tests.factories import ClientFactory, EpisodeFactory, staff

THREADS = 24
START = datetime(2031, 6, 3, 8, 0, tzinfo=UTC)  # far ahead: no clock needed

pytestmark = pytest.mark.usefixtures("transactional_db")


def race(attempt: Callable[[int], Appointment]) -> list[Appointment | BaseException]:
    """Run ``attempt(i)`` in THREADS threads released at once; return what each got."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[Appointment | BaseException | None] = [None] * THREADS

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = attempt(index)
        except BaseException as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a booking thread hung"
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def assert_exactly_one_won(outcomes: list[Appointment | BaseException]) -> Appointment:
    winners = [o for o in outcomes if isinstance(o, Appointment)]
    refused = [o for o in outcomes if isinstance(o, SlotTaken)]
    others = [o for o in outcomes if not isinstance(o, Appointment | SlotTaken)]
    assert others == [], f"losers must get SlotTaken, not {others!r}"
    assert len(winners) == 1
    assert len(refused) == THREADS - 1
    for exc in refused:
        assert "already has a session" in exc.messages[0]
    return winners[0]


def test_twenty_four_clients_racing_for_one_clinicians_slot_leave_one_booking(
    practice: Practice, clinician: User
) -> None:
    clients = [ClientFactory.create(practice=practice) for _ in range(THREADS)]
    for client in clients:
        EpisodeFactory.create(client=client, clinician=clinician)
    slot = Slot(starts_at=START, ends_at=START + timedelta(minutes=50))

    outcomes = race(
        lambda i: appointment_book(
            clinician=clinician, client=clients[i], slot=slot, actor=clinician, notify=False
        )
    )

    winner = assert_exactly_one_won(outcomes)
    active = Appointment.objects.active().for_clinician(clinician)
    assert active.count() == 1
    assert active.get().pk == winner.pk
    assert Appointment.objects.overlapping(slot.starts_at, slot.ends_at).count() == 1


def test_staggered_overlapping_slots_racing_still_leave_one_booking(
    practice: Practice, clinician: User
) -> None:
    # Not the same start: every pair of these 50-minute slots overlaps by at least 27 minutes.
    clients = [ClientFactory.create(practice=practice) for _ in range(THREADS)]
    for client in clients:
        EpisodeFactory.create(client=client, clinician=clinician)

    def attempt(i: int) -> Appointment:
        start = START + timedelta(minutes=i)
        slot = Slot(starts_at=start, ends_at=start + timedelta(minutes=50))
        return appointment_book(
            clinician=clinician, client=clients[i], slot=slot, actor=clinician, notify=False
        )

    assert_exactly_one_won(race(attempt))
    assert Appointment.objects.active().for_clinician(clinician).count() == 1


def test_one_client_racing_with_twenty_four_clinicians_leaves_one_booking(
    practice: Practice, client_record: Client, clinician: User
) -> None:
    # A client has one open episode at a time, so appointment_book can only ever book them
    # with that one clinician. To race the client's own no-overlap rule, go one level down
    # to the service's insert, with an (earlier, closed) episode for each other clinician.
    clinicians = [clinician] + [staff(practice, "clinician", mfa=False) for _ in range(23)]
    episodes = {clinician.pk: Episode.objects.get(client=client_record, clinician=clinician)}
    for other in clinicians[1:]:
        episodes[other.pk] = EpisodeFactory.create(
            client=client_record,
            clinician=other,
            stage=Episode.Stage.CLOSED,
            opened_on=datetime(2026, 1, 5).date(),
            closed_on=datetime(2026, 2, 5).date(),
            close_reason=Episode.CloseReason.TRANSFERRED,
        )
    slot = Slot(starts_at=START, ends_at=START + timedelta(minutes=50))

    outcomes = race(
        lambda i: _insert(
            practice=practice,
            clinician=clinicians[i],
            client=client_record,
            episode=episodes[clinicians[i].pk],
            slot=slot,
            actor=clinicians[i],
        )
    )

    assert_exactly_one_won(outcomes)
    assert Appointment.objects.active().for_client(client_record).count() == 1
    assert Appointment.objects.overlapping(slot.starts_at, slot.ends_at).count() == 1


def test_one_client_booked_twenty_four_times_into_one_slot_gets_one_session(
    clinician: User, client_record: Client
) -> None:
    # A double-submitted form, many times over: both no-overlap rules apply at once.
    slot = Slot(starts_at=START, ends_at=START + timedelta(minutes=50))

    outcomes = race(
        lambda i: appointment_book(
            clinician=clinician, client=client_record, slot=slot, actor=clinician, notify=False
        )
    )

    assert_exactly_one_won(outcomes)
    assert Appointment.objects.filter(client=client_record).count() == 1
