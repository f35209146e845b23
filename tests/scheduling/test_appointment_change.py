"""Moving, cancelling and recording attendance: scheduling.services after the booking."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from practice.models import AuditEvent, Client, Practice, User
from scheduling.links import LinkRefused, client_link_read, client_link_token
from scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    RescheduleRequest,
    Status,
)
from scheduling.services import (
    SeriesResult,
    Slot,
    SlotTaken,
    appointment_book,
    appointment_cancel,
    appointment_record_attendance,
    appointment_reschedule,
    series_create,
    series_reschedule,
)
from tests.factories import ClientFactory, EpisodeFactory, book

BERLIN = ZoneInfo("Europe/Berlin")
Via = AppointmentStatusChange.Via
NOW = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)  # Thursday 1 October 2026, 10:00 in Berlin


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def zora(practice: Practice, clinician: User) -> Client:
    other = ClientFactory.create(practice=practice, first_name="Zora", last_name="Quist")
    EpisodeFactory.create(client=other, clinician=clinician)
    return other


@pytest.fixture
def session(clinician: User, client_record: Client) -> Appointment:
    """Monday 5 October, 10:00 in Berlin, confirmed by the client."""
    return book(clinician, client_record, berlin(10, 5, 10), status=Status.CONFIRMED)


@pytest.fixture
def weekly(clinician: User, client_record: Client) -> SeriesResult:
    """Eight Mondays at 10:00 in Berlin from 5 October; summer time ends on 25 October."""
    first = berlin(10, 5, 10)
    return series_create(
        clinician=clinician,
        client=client_record,
        first=Slot(starts_at=first, ends_at=first + timedelta(minutes=50)),
        frequency=AppointmentSeries.Frequency.WEEKLY,
        interval=1,
        until=None,
        count=8,
        actor=clinician,
    )


def occurrences(series: AppointmentSeries) -> list[Appointment]:
    return list(Appointment.objects.filter(series=series).order_by("starts_at"))


def on(series: AppointmentSeries, month: int, day: int) -> Appointment:
    return next(
        a
        for a in occurrences(series)
        if a.starts_at.astimezone(BERLIN).date() == date(2026, month, day)
    )


# --- Rescheduling --------------------------------------------------------------------------


def test_rescheduling_moves_the_session_and_asks_for_confirmation_again(
    session: Appointment, clinician: User
) -> None:
    old_link = client_link_token(session, "confirm")
    RescheduleRequest.objects.create(appointment=session, message="Thursdays suit me better")

    moved = appointment_reschedule(
        appointment=session,
        starts_at=berlin(10, 8, 11),
        ends_at=berlin(10, 8, 11, 50),
        actor=clinician,
    )

    moved.refresh_from_db()
    assert (moved.starts_at, moved.ends_at) == (berlin(10, 8, 11), berlin(10, 8, 11, 50))
    assert moved.link_version == 2
    assert moved.status == Status.SCHEDULED
    assert moved.status_changed_at == NOW
    change = moved.status_changes.last()
    assert change is not None
    assert (change.from_status, change.to_status) == (Status.CONFIRMED, Status.SCHEDULED)
    assert (change.changed_by, change.via, change.reason, change.at) == (
        clinician,
        Via.STAFF,
        "rescheduled",
        NOW,
    )
    # The links sent for the old time stop working; the client's request is answered.
    with pytest.raises(LinkRefused, match="moved"):
        client_link_read(old_link, "confirm")
    assert client_link_read(client_link_token(moved, "confirm"), "confirm").appointment == moved
    assert RescheduleRequest.objects.get().resolved_at == NOW
    assert AuditEvent.objects.about(moved).filter(action="appointment.reschedule").exists()


@pytest.mark.usefixtures("run_on_commit")
def test_rescheduling_sends_a_fresh_notice(session: Appointment, clinician: User) -> None:
    appointment_reschedule(
        appointment=session,
        starts_at=berlin(10, 8, 11),
        ends_at=berlin(10, 8, 11, 50),
        actor=clinician,
    )
    assert len(mail.outbox) == 1
    assert "/c/confirm/" in mail.outbox[0].body


def test_rescheduling_into_a_taken_slot_raises_slot_taken_and_changes_nothing(
    session: Appointment, clinician: User, zora: Client
) -> None:
    book(clinician, zora, berlin(10, 8, 11, 30))
    history = session.status_changes.count()

    with pytest.raises(SlotTaken) as refused:
        appointment_reschedule(
            appointment=session,
            starts_at=berlin(10, 8, 11),
            ends_at=berlin(10, 8, 11, 50),
            actor=clinician,
        )

    assert "11:30–12:20" in refused.value.messages[0]
    assert "(client ZQ)" in refused.value.messages[0]
    session.refresh_from_db()
    assert session.starts_at == berlin(10, 5, 10)
    assert session.link_version == 1
    assert session.status == Status.CONFIRMED
    assert session.status_changes.count() == history


def test_only_a_scheduled_or_confirmed_session_can_be_moved(
    clinician: User, client_record: Client
) -> None:
    done = book(clinician, client_record, berlin(9, 28, 10), status=Status.ATTENDED)
    with pytest.raises(ValidationError):
        appointment_reschedule(
            appointment=done,
            starts_at=berlin(10, 8, 11),
            ends_at=berlin(10, 8, 11, 50),
            actor=clinician,
        )
    done.refresh_from_db()
    assert (done.starts_at, done.status) == (berlin(9, 28, 10), Status.ATTENDED)


def test_a_session_cancelled_meanwhile_cannot_be_moved_back_to_life(
    session: Appointment, clinician: User, client_user: User
) -> None:
    stale = Appointment.objects.get(pk=session.pk)  # e.g. loaded by a concurrent request
    appointment_cancel(appointment=session, by_client=True, actor=client_user, via=Via.PORTAL)

    with pytest.raises(ValidationError):
        appointment_reschedule(
            appointment=stale,
            starts_at=berlin(10, 8, 11),
            ends_at=berlin(10, 8, 11, 50),
            actor=clinician,
        )


def test_moving_one_occurrence_of_a_series_leaves_the_others(
    weekly: SeriesResult, clinician: User
) -> None:
    third = on(weekly.series, 10, 19)

    result = series_reschedule(
        appointment=third,
        scope="this",
        new_time=time(14, 0),
        duration=timedelta(minutes=50),
        actor=clinician,
    )

    assert [a.pk for a in result.booked] == [third.pk]
    assert result.conflicts == []
    local = {a.pk: a.starts_at.astimezone(BERLIN) for a in occurrences(weekly.series)}
    assert local[third.pk] == berlin(10, 19, 14)
    assert all(moment.hour == 10 for pk, moment in local.items() if pk != third.pk)
    assert Appointment.objects.get(pk=third.pk).link_version == 2


def test_moving_this_and_following_occurrences_keeps_earlier_ones_and_survives_dst(
    weekly: SeriesResult, clinician: User, client_user: User, zora: Client
) -> None:
    # 2 November was cancelled by the client; 9 November at 14:00 Zora already has.
    appointment_cancel(
        appointment=on(weekly.series, 11, 2), by_client=True, actor=client_user, via=Via.PORTAL
    )
    book(clinician, zora, berlin(11, 9, 14))
    third = on(weekly.series, 10, 19)

    result = series_reschedule(
        appointment=third,
        scope="following",
        new_time=time(14, 0),
        duration=timedelta(minutes=50),
        actor=clinician,
    )

    after = {a.starts_at.astimezone(BERLIN).date(): a for a in occurrences(weekly.series)}
    # Earlier occurrences untouched.
    for day in (date(2026, 10, 5), date(2026, 10, 12)):
        assert after[day].starts_at.astimezone(BERLIN).hour == 10
        assert after[day].link_version == 1
    # This and the later open ones at 14:00 local, before and after the clocks change.
    moved_days = [date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 16), date(2026, 11, 23)]
    for day in moved_days:
        assert after[day].starts_at.astimezone(BERLIN).hour == 14
        assert after[day].ends_at - after[day].starts_at == timedelta(minutes=50)
        assert after[day].link_version == 2
    assert after[date(2026, 10, 19)].starts_at.astimezone(UTC).hour == 12
    assert after[date(2026, 10, 26)].starts_at.astimezone(UTC).hour == 13
    # The cancelled one stays where it was; the clash stays put and is reported.
    assert after[date(2026, 11, 2)].starts_at.astimezone(BERLIN).hour == 10
    assert after[date(2026, 11, 2)].status == Status.CANCELLED_BY_CLIENT
    assert after[date(2026, 11, 9)].starts_at.astimezone(BERLIN).hour == 10
    assert [start for start, _ in result.conflicts] == [berlin(11, 9, 14)]
    assert "(client ZQ)" in result.conflicts[0][1]
    assert sorted(a.starts_at.astimezone(BERLIN).date() for a in result.booked) == moved_days


def test_an_attended_occurrence_cannot_be_moved(
    weekly: SeriesResult, clinician: User, clock: time_machine.Traveller
) -> None:
    first = on(weekly.series, 10, 5)
    clock.move_to(berlin(10, 5, 11))
    appointment_record_attendance(appointment=first, status=Status.ATTENDED, actor=clinician)
    first.refresh_from_db()

    with pytest.raises(ValidationError):
        series_reschedule(
            appointment=first,
            scope="this",
            new_time=time(14, 0),
            duration=timedelta(minutes=50),
            actor=clinician,
        )


# --- Cancelling ----------------------------------------------------------------------------


def test_a_client_cancelling_outside_the_window_is_an_ordinary_cancellation(
    session: Appointment, client_user: User, practice: Practice
) -> None:
    assert practice.cancellation_window == timedelta(hours=24)

    cancelled = appointment_cancel(
        appointment=session, by_client=True, actor=client_user, via=Via.PORTAL, reason="flu"
    )

    assert [a.pk for a in cancelled] == [session.pk]
    session.refresh_from_db()
    assert session.status == Status.CANCELLED_BY_CLIENT
    assert session.status_changed_at == NOW
    change = session.status_changes.get()
    assert (change.from_status, change.to_status) == (Status.CONFIRMED, Status.CANCELLED_BY_CLIENT)
    assert (change.changed_by, change.via, change.reason, change.at) == (
        client_user,
        Via.PORTAL,
        "flu",
        NOW,
    )
    assert AuditEvent.objects.about(session).filter(action="appointment.cancel").exists()


@pytest.mark.parametrize(
    ("before_start", "expected"),
    [
        (timedelta(hours=24), Status.CANCELLED_BY_CLIENT),
        (timedelta(hours=23, minutes=59), Status.LATE_CANCELLED),
        (timedelta(hours=2), Status.LATE_CANCELLED),
    ],
    ids=["exactly-24h", "just-inside", "two-hours"],
)
def test_a_client_cancelling_inside_the_window_is_a_late_cancellation(
    session: Appointment,
    client_user: User,
    clock: time_machine.Traveller,
    before_start: timedelta,
    expected: str,
) -> None:
    clock.move_to(session.starts_at - before_start)

    appointment_cancel(appointment=session, by_client=True, actor=client_user, via=Via.CLIENT_LINK)

    session.refresh_from_db()
    assert session.status == expected
    assert session.status_changes.get().via == Via.CLIENT_LINK


def test_a_clinician_cancelling_is_never_late(
    session: Appointment, clinician: User, clock: time_machine.Traveller
) -> None:
    clock.move_to(session.starts_at - timedelta(hours=1))

    appointment_cancel(
        appointment=session, by_client=False, actor=clinician, via=Via.STAFF, reason="ill"
    )

    session.refresh_from_db()
    assert session.status == Status.CANCELLED_BY_CLINICIAN
    change = session.status_changes.get()
    assert (change.changed_by, change.via, change.reason) == (clinician, Via.STAFF, "ill")


def test_cancelling_following_cancels_the_rest_of_the_series(
    weekly: SeriesResult, clinician: User
) -> None:
    third = on(weekly.series, 10, 19)

    cancelled = appointment_cancel(
        appointment=third,
        by_client=False,
        actor=clinician,
        via=Via.STAFF,
        reason="parental leave",
        scope="following",
    )

    assert len(cancelled) == 6
    statuses = [a.status for a in occurrences(weekly.series)]
    assert statuses == [Status.SCHEDULED] * 2 + [Status.CANCELLED_BY_CLINICIAN] * 6
    changes = AppointmentStatusChange.objects.filter(
        appointment__series=weekly.series, to_status=Status.CANCELLED_BY_CLINICIAN
    )
    assert changes.count() == 6
    assert {(c.changed_by, c.via, c.reason, c.at) for c in changes} == {
        (clinician, Via.STAFF, "parental leave", NOW)
    }


def test_a_client_cancelling_following_from_inside_the_window_is_late_only_for_the_first(
    weekly: SeriesResult, client_user: User, clock: time_machine.Traveller
) -> None:
    clock.move_to(berlin(10, 4, 20))  # Sunday evening before the first Monday

    appointment_cancel(
        appointment=on(weekly.series, 10, 5),
        by_client=True,
        actor=client_user,
        via=Via.PORTAL,
        scope="following",
    )

    statuses = [a.status for a in occurrences(weekly.series)]
    assert statuses == [Status.LATE_CANCELLED] + [Status.CANCELLED_BY_CLIENT] * 7


def test_cancelling_this_occurrence_leaves_the_rest(weekly: SeriesResult, clinician: User) -> None:
    appointment_cancel(
        appointment=on(weekly.series, 10, 19), by_client=False, actor=clinician, via=Via.STAFF
    )
    statuses = [a.status for a in occurrences(weekly.series)]
    assert statuses.count(Status.CANCELLED_BY_CLINICIAN) == 1
    assert statuses.count(Status.SCHEDULED) == 7


def test_a_session_cannot_be_cancelled_twice(session: Appointment, clinician: User) -> None:
    appointment_cancel(appointment=session, by_client=False, actor=clinician, via=Via.STAFF)
    with pytest.raises(ValidationError):
        appointment_cancel(appointment=session, by_client=True, actor=clinician, via=Via.STAFF)
    session.refresh_from_db()
    assert session.status == Status.CANCELLED_BY_CLINICIAN
    assert session.status_changes.count() == 1


def test_a_cancelled_slot_can_be_booked_again(
    session: Appointment, clinician: User, zora: Client
) -> None:
    appointment_cancel(appointment=session, by_client=False, actor=clinician, via=Via.STAFF)
    again = appointment_book(
        clinician=clinician,
        client=zora,
        slot=Slot(starts_at=session.starts_at, ends_at=session.ends_at),
        actor=clinician,
    )
    assert again.status == Status.SCHEDULED


# --- Attendance ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.ATTENDED, Status.NO_SHOW])
def test_attendance_cannot_be_recorded_before_the_session_begins(
    session: Appointment, clinician: User, clock: time_machine.Traveller, status: str
) -> None:
    clock.move_to(session.starts_at - timedelta(minutes=1))
    with pytest.raises(ValidationError):
        appointment_record_attendance(appointment=session, status=status, actor=clinician)
    session.refresh_from_db()
    assert session.status == Status.CONFIRMED
    assert not session.status_changes.exists()


@pytest.mark.parametrize("status", [Status.ATTENDED, Status.NO_SHOW])
def test_attendance_is_recorded_once_the_session_has_begun(
    session: Appointment, clinician: User, clock: time_machine.Traveller, status: str
) -> None:
    clock.move_to(session.starts_at + timedelta(minutes=20))

    appointment_record_attendance(appointment=session, status=status, actor=clinician)

    session.refresh_from_db()
    assert session.status == status
    change = session.status_changes.get()
    assert (change.from_status, change.to_status) == (Status.CONFIRMED, status)
    assert (change.changed_by, change.via, change.at) == (
        clinician,
        Via.STAFF,
        session.starts_at + timedelta(minutes=20),
    )
    assert change.reason
    # Recording the same again changes nothing and writes no second row.
    appointment_record_attendance(appointment=session, status=status, actor=clinician)
    assert session.status_changes.count() == 1


def test_attendance_can_be_corrected_after_the_session(
    session: Appointment, clinician: User, clock: time_machine.Traveller
) -> None:
    clock.move_to(session.starts_at + timedelta(hours=2))
    appointment_record_attendance(appointment=session, status=Status.NO_SHOW, actor=clinician)
    appointment_record_attendance(appointment=session, status=Status.ATTENDED, actor=clinician)
    session.refresh_from_db()
    assert session.status == Status.ATTENDED
    assert [(c.from_status, c.to_status) for c in session.status_changes.all()] == [
        (Status.CONFIRMED, Status.NO_SHOW),
        (Status.NO_SHOW, Status.ATTENDED),
    ]


@pytest.mark.parametrize("cancelled", [Status.CANCELLED_BY_CLIENT, Status.CANCELLED_BY_CLINICIAN])
@pytest.mark.parametrize("status", [Status.ATTENDED, Status.NO_SHOW, Status.LATE_CANCELLED])
def test_attendance_is_refused_on_a_cancelled_session(
    clinician: User,
    client_record: Client,
    clock: time_machine.Traveller,
    cancelled: str,
    status: str,
) -> None:
    session = book(clinician, client_record, berlin(10, 5, 10), status=cancelled)
    clock.move_to(session.starts_at + timedelta(minutes=20))
    with pytest.raises(ValidationError):
        appointment_record_attendance(appointment=session, status=status, actor=clinician)
    session.refresh_from_db()
    assert session.status == cancelled


def test_only_attendance_statuses_can_be_recorded(
    session: Appointment, clinician: User, clock: time_machine.Traveller
) -> None:
    clock.move_to(session.starts_at + timedelta(minutes=20))
    with pytest.raises(ValidationError):
        appointment_record_attendance(
            appointment=session, status=Status.CANCELLED_BY_CLINICIAN, actor=clinician
        )


def test_a_late_cancelled_session_whose_slot_was_rebooked_cannot_become_attended(
    session: Appointment, clinician: User, zora: Client, clock: time_machine.Traveller
) -> None:
    clock.move_to(session.starts_at - timedelta(hours=3))
    appointment_cancel(appointment=session, by_client=True, actor=None, via=Via.CLIENT_LINK)
    book(clinician, zora, session.starts_at)  # the freed slot goes to someone on the list
    clock.move_to(session.starts_at + timedelta(hours=1))

    with pytest.raises(ValidationError):
        appointment_record_attendance(appointment=session, status=Status.ATTENDED, actor=clinician)


# --- The record of every change ------------------------------------------------------------


def test_every_change_is_kept_with_who_when_and_why(
    clinician: User, client_record: Client, client_user: User, clock: time_machine.Traveller
) -> None:
    first = berlin(10, 5, 10)
    appointment = appointment_book(
        clinician=clinician,
        client=client_record,
        slot=Slot(starts_at=first, ends_at=first + timedelta(minutes=50)),
        actor=clinician,
    )
    clock.move_to(berlin(10, 2, 9))
    appointment_reschedule(
        appointment=appointment,
        starts_at=berlin(10, 6, 10),
        ends_at=berlin(10, 6, 10, 50),
        actor=clinician,
    )
    clock.move_to(berlin(10, 3, 18))
    appointment_cancel(
        appointment=appointment,
        by_client=True,
        actor=client_user,
        via=Via.PORTAL,
        reason="new job",
    )

    history = [
        (c.from_status, c.to_status, c.changed_by, c.via, c.reason, c.at)
        for c in appointment.status_changes.order_by("at", "pk")
    ]
    assert history == [
        ("", Status.SCHEDULED, clinician, Via.STAFF, "booked", NOW),
        (Status.SCHEDULED, Status.SCHEDULED, clinician, Via.STAFF, "rescheduled", berlin(10, 2, 9)),
        (
            Status.SCHEDULED,
            Status.CANCELLED_BY_CLIENT,
            client_user,
            Via.PORTAL,
            "new job",
            berlin(10, 3, 18),
        ),
    ]
