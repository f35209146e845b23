"""Booking, moving, cancelling and attendance through the clinician's pages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import Client, Practice, User
from scheduling.models import Appointment, AppointmentStatusChange, Status
from tests.factories import ClientFactory, EpisodeFactory, book

BERLIN = ZoneInfo("Europe/Berlin")
pytestmark = pytest.mark.usefixtures("run_on_commit")


@pytest.fixture(autouse=True)
def _monday_morning() -> object:
    # Monday 2 March 2026, 08:00 in Berlin: the week ahead is free working time.
    with time_machine.travel(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def form(client: Client, **overrides: object) -> dict[str, object]:
    return {
        "client": client.pk,
        "day": "2026-03-03",
        "start_time": "10:00",
        "duration": "50",
        "kind": "session",
        "location": "in_person",
        "repeat": "none",
        **overrides,
    }


def test_a_clinician_books_a_session_for_their_client(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    response = as_clinician.post(reverse("appointment_new"), form(client_record))
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.starts_at == datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN)
    assert appointment.clinician == clinician
    assert appointment.status == Status.SCHEDULED
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "/c/confirm/" in body
    # Local time of the client (Europe/Berlin by the practice), not UTC.
    assert "Tuesday 3 March 2026, 10:00" in body


def test_a_clinician_cannot_book_someone_elses_client(
    as_other_clinician: HttpClient, client_record: Client
) -> None:
    response = as_other_clinician.post(reverse("appointment_new"), form(client_record))
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
    assert not Appointment.objects.exists()


def test_an_overlap_comes_back_as_a_form_error_naming_the_slot(
    as_clinician: HttpClient, clinician: User, client_record: Client, practice: Practice
) -> None:
    other = ClientFactory.create(practice=practice, first_name="Zora", last_name="Quist")
    book(clinician, other, datetime(2026, 3, 3, 9, 30, tzinfo=BERLIN))
    response = as_clinician.post(reverse("appointment_new"), form(client_record))
    assert response.status_code == 400
    assert b"already has a session" in response.content
    assert b"09:30" in response.content and b"ZQ" in response.content
    assert Appointment.objects.count() == 1


def test_outside_working_hours_warns_and_books_on_request(
    as_clinician: HttpClient, client_record: Client
) -> None:
    data = form(client_record, day="2026-03-07")  # a Saturday
    response = as_clinician.post(reverse("appointment_new"), data)
    assert response.status_code == 200
    assert b"not one of this clinician" in response.content
    assert not Appointment.objects.exists()
    response = as_clinician.post(reverse("appointment_new"), {**data, "book_anyway": "on"})
    assert response.status_code == 302
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"day": "not-a-date"}, b"Enter a valid date"),
        ({"start_time": "25:99"}, b"Enter a valid time"),
        ({"duration": "7"}, b"Select a valid choice"),
        ({"location": "video"}, b"A video session needs its link"),
        ({"fee_waived": "on"}, b"Only a termination session can be fee-waived"),
        ({"repeat": "weekly"}, b"End the series on a date or after a number"),
        ({"day": "2026-03-29", "start_time": "02:30"}, b"does not exist"),
        ({"day": "9999-01-01"}, b"between 2000 and 2100"),
    ],
)
def test_bad_booking_input_is_explained_and_books_nothing(
    as_clinician: HttpClient, client_record: Client, overrides: dict[str, str], message: bytes
) -> None:
    response = as_clinician.post(reverse("appointment_new"), form(client_record, **overrides))
    assert response.status_code == 400
    assert message in response.content
    assert not Appointment.objects.exists()


def test_a_series_books_free_dates_and_lists_conflicts(
    as_clinician: HttpClient, clinician: User, client_record: Client, practice: Practice
) -> None:
    other = ClientFactory.create(practice=practice)
    book(clinician, other, datetime(2026, 3, 17, 10, 0, tzinfo=BERLIN))
    response = as_clinician.post(
        reverse("appointment_new"), form(client_record, repeat="weekly", interval="1", count="4")
    )
    assert response.status_code == 200
    assert b"3 sessions booked, 1 not" in response.content
    assert b"Tue 17 Mar 2026, 10:00" in response.content
    assert Appointment.objects.filter(client=client_record).count() == 3
    assert len(mail.outbox) == 1  # one notice for the series


def test_an_admin_books_for_any_clinician(
    as_admin: HttpClient, clinician: User, client_record: Client
) -> None:
    response = as_admin.post(
        reverse("appointment_new"), {**form(client_record), "clinician": clinician.pk}
    )
    assert response.status_code == 302
    assert Appointment.objects.get().clinician == clinician


def test_a_supervisor_and_a_client_cannot_book(
    as_supervisor: HttpClient, as_client: HttpClient, as_outsider: HttpClient
) -> None:
    assert as_supervisor.get(reverse("appointment_new")).status_code == 404
    assert as_client.get(reverse("appointment_new")).status_code == 404


def test_moving_a_session(as_clinician: HttpClient, clinician: User, client_record: Client) -> None:
    appointment = book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    response = as_clinician.post(
        reverse("appointment_reschedule", args=[appointment.pk]),
        {"day": "2026-03-04", "start_time": "11:00", "duration": "50"},
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.starts_at == datetime(2026, 3, 4, 11, 0, tzinfo=BERLIN)
    assert appointment.link_version == 2


def test_cancelling_needs_a_reason_and_keeps_the_history(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    url = reverse("appointment_cancel", args=[appointment.pk])
    assert as_clinician.post(url, {"reason": ""}).status_code == 400
    response = as_clinician.post(url, {"reason": "Clinician ill"})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELLED_BY_CLINICIAN
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.changed_by == clinician and change.reason == "Clinician ill"


def test_attendance_is_recorded_after_the_session_began(
    as_clinician: HttpClient,
    clinician: User,
    client_record: Client,
    _monday_morning: time_machine.Traveller,
) -> None:
    appointment = book(clinician, client_record, datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN))
    url = reverse("appointment_attendance", args=[appointment.pk])
    as_clinician.post(url, {"status": "attended"})
    appointment.refresh_from_db()
    assert appointment.status == Status.SCHEDULED  # not begun yet
    _monday_morning.move_to(datetime(2026, 3, 2, 9, 55, tzinfo=UTC))
    as_clinician.post(url, {"status": "attended"})
    appointment.refresh_from_db()
    assert appointment.status == Status.ATTENDED


def test_a_supervisor_reads_but_cannot_change_a_supervisees_session(
    as_supervisor: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    assert (
        as_supervisor.get(reverse("appointment_detail", args=[appointment.pk])).status_code == 200
    )
    url = reverse("appointment_cancel", args=[appointment.pk])
    assert as_supervisor.post(url, {"reason": "x"}).status_code == 403


@pytest.mark.parametrize(
    "name",
    [
        "appointment_detail",
        "appointment_reschedule",
        "appointment_cancel",
        "appointment_attendance",
    ],
)
def test_outsiders_and_other_clinicians_get_404(
    as_outsider: HttpClient,
    as_other_clinician: HttpClient,
    clinician: User,
    client_record: Client,
    name: str,
) -> None:
    appointment = book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    for http in (as_outsider, as_other_clinician):
        assert http.post(reverse(name, args=[appointment.pk])).status_code == 404


def test_the_week_view_shows_the_sessions_of_the_week(
    as_clinician: HttpClient, clinician: User, client_record: Client, practice: Practice
) -> None:
    book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    later = ClientFactory.create(practice=practice, last_name="Nextweek")
    EpisodeFactory.create(client=later, clinician=clinician)
    book(clinician, later, datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN))
    response = as_clinician.get(reverse("calendar_week"), {"date": "2026-03-04"})
    assert response.status_code == 200
    assert client_record.last_name.encode() in response.content
    assert b"Nextweek" not in response.content
    assert b"1 session, 0.8 booked hours" in response.content


def test_the_day_view_offers_free_slots(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN))
    response = as_clinician.get(reverse("calendar_day"), {"date": "2026-03-03", "date2": "x"})
    assert b"Book 09:00" in response.content
    assert b"Book 10:00" not in response.content
    assert b"Book 11:00" in response.content


def test_calendar_input_never_breaks_the_page(
    as_clinician: HttpClient, as_admin: HttpClient, outsider: User
) -> None:
    assert as_clinician.get(reverse("calendar_week"), {"date": "garbage"}).status_code == 200
    assert as_clinician.get(reverse("calendar_day"), {"date": "2026-02-30"}).status_code == 200
    # Another practice's clinician id is simply not a calendar here.
    assert as_admin.get(reverse("calendar_week"), {"clinician": outsider.pk}).status_code == 404
    assert (
        as_clinician.get(reverse("calendar_week"), {"clinician": "99999999999999"}).status_code
        == 200
    )


def test_admins_open_any_clinicians_calendar_but_clinicians_only_their_own(
    as_admin: HttpClient, as_other_clinician: HttpClient, clinician: User
) -> None:
    assert as_admin.get(reverse("calendar_week"), {"clinician": clinician.pk}).status_code == 200
    assert (
        as_other_clinician.get(reverse("calendar_week"), {"clinician": clinician.pk}).status_code
        == 404
    )


def test_an_old_week_shows_past_days_without_booking_buttons(
    as_clinician: HttpClient,
) -> None:
    response = as_clinician.get(reverse("calendar_day"), {"date": "2026-02-02"})
    assert b"Book " not in response.content.replace(b"Book a session", b"")
