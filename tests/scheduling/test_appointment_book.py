"""scheduling.services.appointment_book: one session, its notice, and what it refuses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from pytest_django import DjangoCaptureOnCommitCallbacks

from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.links import client_link_read
from scheduling.models import (
    Appointment,
    AppointmentStatusChange,
    Kind,
    Location,
    Status,
    TimeOff,
)
from scheduling.services import Slot, SlotTaken, appointment_book, availability_warnings
from tests.factories import ClientFactory, EpisodeFactory, book

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def _monday_morning() -> Iterator[None]:
    # Monday 2 March 2026, 08:00 in Berlin: the week ahead is ordinary working time.
    with time_machine.travel(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), tick=False):
        yield


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026, Berlin wall-clock time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


def slot(starts_at: datetime, minutes: int = 50, **fields: Any) -> Slot:
    return Slot(starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes), **fields)


@pytest.fixture
def zora(practice: Practice, clinician: User) -> Client:
    """Another client of the same clinician, with a name that must not leak."""
    other = ClientFactory.create(
        practice=practice, first_name="Zora", last_name="Quist", email="zora@example.org"
    )
    EpisodeFactory.create(client=other, clinician=clinician)
    return other


def test_it_books_a_scheduled_session_and_records_who_booked_it(
    clinician: User, client_record: Client, admin: User
) -> None:
    appointment = appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=admin
    )

    appointment.refresh_from_db()
    assert appointment.status == Status.SCHEDULED
    assert appointment.starts_at == at(3, 10)
    assert appointment.ends_at == at(3, 10, 50)
    assert appointment.episode == Episode.objects.get(client=client_record)
    assert appointment.practice == client_record.practice
    assert appointment.created_by == admin
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert (change.from_status, change.to_status) == ("", Status.SCHEDULED)
    assert change.changed_by == admin
    assert change.via == AppointmentStatusChange.Via.STAFF
    assert change.at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert AuditEvent.objects.about(appointment).filter(action="appointment.book").exists()


def test_the_booking_notice_waits_for_the_commit(
    clinician: User,
    client_record: Client,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )
        # Still inside the transaction: nothing may have gone out yet.
        assert mail.outbox == []
    assert len(callbacks) == 1
    assert mail.outbox == []
    callbacks[0]()
    assert len(mail.outbox) == 1


@pytest.mark.usefixtures("run_on_commit")
def test_the_booking_notice_has_working_links_and_no_clinical_content(
    clinician: User, client_record: Client, zora: Client
) -> None:
    client_record.needs = ["trauma"]
    client_record.save(update_fields=["needs"])
    book(clinician, zora, at(3, 9))  # Zora's session just before, with the same clinician
    mail.outbox.clear()

    # The ending session: what kind of session it is stays out of the email.
    appointment = appointment_book(
        clinician=clinician,
        client=client_record,
        slot=slot(at(3, 10), kind=Kind.TERMINATION, fee_waived=True),
        actor=clinician,
    )

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [client_record.email]
    assert isinstance(message, EmailMultiAlternatives)
    html = message.alternatives[0][0]
    assert isinstance(html, str)
    body = str(message.body)
    for text in (message.subject, body, html):
        lowered = text.lower()
        for clinical in ("termination", "ending", "fee", "trauma", "episode", "stage"):
            assert clinical not in lowered, clinical
        for other_clients_data in ("zora", "quist", "zora@example.org"):
            assert other_clients_data not in lowered
    assert clinician.get_full_name() in body

    tokens = dict(re.findall(r"http://testserver/c/(confirm|cancel|reschedule)/([^/\s]+)/", body))
    assert set(tokens) == {"confirm", "cancel", "reschedule"}
    for action, token in tokens.items():
        assert client_link_read(token, action).appointment == appointment
        assert f"/c/{action}/{token}/" in html


@pytest.mark.usefixtures("run_on_commit")
def test_the_booking_notice_gives_the_time_in_the_clients_timezone(
    clinician: User, client_record: Client
) -> None:
    # The client has no zone of their own, so the practice's: Europe/Berlin (UTC+1 in March).
    appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
    )
    body = mail.outbox[0].body
    assert "Tuesday 3 March 2026, 10:00 (Europe/Berlin)" in body


@pytest.mark.usefixtures("run_on_commit")
def test_the_booking_notice_follows_a_client_abroad_even_across_midnight(
    clinician: User, client_record: Client
) -> None:
    client_record.timezone = "America/New_York"
    client_record.save(update_fields=["timezone"])
    # 02:00 on Tuesday in Berlin is 20:00 on Monday in New York (01:00 UTC).
    appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(3, 2)), actor=clinician
    )
    body = mail.outbox[0].body
    assert "Monday 2 March 2026, 20:00 (America/New_York)" in body
    assert "For Monday 2 March" in body


def test_it_refuses_an_overlapping_session_and_names_the_slot_taken(
    clinician: User, client_record: Client, zora: Client
) -> None:
    book(clinician, zora, at(3, 9, 30))

    with pytest.raises(SlotTaken) as refused:
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )

    assert isinstance(refused.value, ValidationError)
    message = refused.value.messages[0]
    assert "Tue 03 Mar 2026, 09:30–10:20" in message
    assert "(client ZQ)" in message
    assert "Zora" not in message and "Quist" not in message  # initials, not the name
    assert Appointment.objects.count() == 1
    assert not Appointment.objects.filter(client=client_record).exists()


def test_it_refuses_the_client_at_the_same_time_with_another_clinician_without_naming_them(
    clinician: User, other_clinician: User, client_record: Client
) -> None:
    # An earlier episode with the other clinician, closed, but a session there still stands.
    EpisodeFactory.create(
        client=client_record,
        clinician=other_clinician,
        stage=Episode.Stage.CLOSED,
        opened_on=datetime(2026, 1, 5).date(),
        closed_on=datetime(2026, 3, 1).date(),
        close_reason=Episode.CloseReason.TRANSFERRED,
    )
    book(other_clinician, client_record, at(3, 10, 15))

    with pytest.raises(SlotTaken) as refused:
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )

    message = refused.value.messages[0]
    assert "10:15–11:05" in message
    assert client_record.full_name in message
    for private in (
        other_clinician.first_name,
        other_clinician.last_name,
        other_clinician.email,
    ):
        assert private not in message
    assert Appointment.objects.filter(clinician=clinician).count() == 0


@pytest.mark.parametrize(
    "status", [Status.CANCELLED_BY_CLIENT, Status.CANCELLED_BY_CLINICIAN, Status.LATE_CANCELLED]
)
def test_a_cancelled_session_does_not_hold_the_slot(
    clinician: User, client_record: Client, zora: Client, status: str
) -> None:
    book(clinician, zora, at(3, 10), status=status)

    appointment = appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
    )

    assert appointment.status == Status.SCHEDULED
    assert Appointment.objects.filter(starts_at=at(3, 10)).count() == 2


@pytest.mark.parametrize("status", [Status.ATTENDED, Status.NO_SHOW, Status.CONFIRMED])
def test_attended_no_show_and_confirmed_sessions_hold_the_slot(
    clinician: User, client_record: Client, zora: Client, status: str
) -> None:
    book(clinician, zora, at(3, 10), status=status)
    with pytest.raises(SlotTaken):
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )


def test_back_to_back_sessions_are_allowed(
    clinician: User, client_record: Client, zora: Client
) -> None:
    first = appointment_book(
        clinician=clinician, client=zora, slot=slot(at(3, 10)), actor=clinician
    )
    second = appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(3, 10, 50)), actor=clinician
    )

    assert first.ends_at == second.starts_at
    assert Appointment.objects.active().for_clinician(clinician).count() == 2


def test_one_minute_of_overlap_is_refused(
    clinician: User, client_record: Client, zora: Client
) -> None:
    appointment_book(clinician=clinician, client=zora, slot=slot(at(3, 10)), actor=clinician)
    with pytest.raises(SlotTaken):
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10, 49)), actor=clinician
        )


def test_it_needs_an_open_episode_with_this_clinician(
    clinician: User, other_clinician: User, client_record: Client, practice: Practice
) -> None:
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            clinician=other_clinician,
            client=client_record,
            slot=slot(at(3, 10)),
            actor=other_clinician,
        )
    assert "client" in refused.value.message_dict

    waiting = ClientFactory.create(practice=practice, status=Client.Status.WAITLIST)
    with pytest.raises(ValidationError):
        appointment_book(clinician=clinician, client=waiting, slot=slot(at(3, 10)), actor=clinician)

    episode = Episode.objects.get(client=client_record)
    episode.close(reason=Episode.CloseReason.COMPLETED, on=datetime(2026, 3, 2).date())
    with pytest.raises(ValidationError):
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )
    assert not Appointment.objects.exists()


def test_it_refuses_a_clinician_of_another_practice(client_record: Client, outsider: User) -> None:
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            clinician=outsider, client=client_record, slot=slot(at(3, 10)), actor=outsider
        )
    assert "clinician" in refused.value.message_dict
    assert not Appointment.objects.exists()


def test_only_a_termination_session_can_be_fee_waived(
    clinician: User, client_record: Client
) -> None:
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            clinician=clinician,
            client=client_record,
            slot=slot(at(3, 10), kind=Kind.SESSION, fee_waived=True),
            actor=clinician,
        )
    assert "fee_waived" in refused.value.message_dict
    assert not Appointment.objects.exists()

    ending = appointment_book(
        clinician=clinician,
        client=client_record,
        slot=slot(at(3, 10), kind=Kind.TERMINATION, fee_waived=True),
        actor=clinician,
    )
    assert ending.fee_waived and ending.kind == Kind.TERMINATION


def test_a_video_session_needs_its_link(clinician: User, client_record: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            clinician=clinician,
            client=client_record,
            slot=slot(at(3, 10), location=Location.VIDEO),
            actor=clinician,
        )
    assert "video_url" in refused.value.message_dict
    assert not Appointment.objects.exists()

    video = appointment_book(
        clinician=clinician,
        client=client_record,
        slot=slot(at(3, 10), location=Location.VIDEO, video_url="https://meet.example.org/x"),
        actor=clinician,
    )
    assert video.video_url == "https://meet.example.org/x"


def test_a_session_must_end_after_it_starts(clinician: User, client_record: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10), 0), actor=clinician
        )
    assert "ends_at" in refused.value.message_dict


def test_ordinary_working_time_has_no_warnings(clinician: User) -> None:
    assert availability_warnings(clinician=clinician, starts_at=at(3, 10), ends_at=at(3, 11)) == []


def test_a_weekend_session_warns_and_can_still_be_booked(
    clinician: User, client_record: Client
) -> None:
    saturday = at(7, 10)
    warnings = availability_warnings(
        clinician=clinician, starts_at=saturday, ends_at=saturday + timedelta(minutes=50)
    )
    assert warnings == ["Saturday is not one of this clinician's working days."]

    appointment = appointment_book(
        clinician=clinician, client=client_record, slot=slot(saturday), actor=clinician
    )
    assert appointment.pk is not None


@pytest.mark.parametrize(("hour", "minute"), [(7, 0), (16, 30), (19, 0)])
def test_a_session_outside_working_hours_warns_and_can_still_be_booked(
    clinician: User, client_record: Client, hour: int, minute: int
) -> None:
    start = at(4, hour, minute)  # a Wednesday; working hours are 09:00 to 17:00
    warnings = availability_warnings(
        clinician=clinician, starts_at=start, ends_at=start + timedelta(minutes=50)
    )
    assert warnings == ["This is outside working hours (09:00–17:00)."]

    appointment_book(clinician=clinician, client=client_record, slot=slot(start), actor=clinician)
    assert Appointment.objects.filter(starts_at=start).exists()


def test_working_hours_are_read_in_the_clinicians_own_timezone(
    practice: Practice, clinician: User
) -> None:
    profile = clinician.membership.clinician_profile
    profile.timezone = "America/New_York"
    profile.save(update_fields=["timezone"])
    # 10:00 in Berlin is 04:00 in New York.
    assert availability_warnings(clinician=clinician, starts_at=at(3, 10), ends_at=at(3, 11)) == [
        "This is outside working hours (09:00–17:00)."
    ]
    assert availability_warnings(clinician=clinician, starts_at=at(3, 16), ends_at=at(3, 17)) == []


def test_time_off_warns_and_the_session_can_still_be_booked(
    clinician: User, other_clinician: User, client_record: Client
) -> None:
    TimeOff.objects.create(
        clinician=clinician, starts_at=at(3, 0), ends_at=at(6, 0), reason="conference"
    )
    TimeOff.objects.create(clinician=other_clinician, starts_at=at(9, 0), ends_at=at(10, 0))

    warnings = availability_warnings(clinician=clinician, starts_at=at(4, 10), ends_at=at(4, 11))
    assert warnings == ["The clinician is on time off then (conference)."]
    # Another clinician's leave, or the days around it, say nothing.
    assert availability_warnings(clinician=clinician, starts_at=at(9, 10), ends_at=at(9, 11)) == []
    assert availability_warnings(clinician=clinician, starts_at=at(6, 10), ends_at=at(6, 11)) == []

    appointment = appointment_book(
        clinician=clinician, client=client_record, slot=slot(at(4, 10)), actor=clinician
    )
    assert appointment.status == Status.SCHEDULED


def test_an_inactive_clinician_cannot_be_booked(client_record: Client, clinician: User) -> None:
    clinician.membership.is_active = False
    clinician.membership.save(update_fields=["is_active"])
    with pytest.raises(ValidationError):
        appointment_book(
            clinician=clinician, client=client_record, slot=slot(at(3, 10)), actor=clinician
        )
    assert not Appointment.objects.exists()
