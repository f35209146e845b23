"""Signed no-login links in booking emails: confirm, cancel, ask for another time."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client as HttpClient
from django.utils import timezone

from practice.models import Client, User
from scheduling.links import ACTIONS, client_link_url
from scheduling.models import (
    Appointment,
    AppointmentStatusChange,
    RescheduleRequest,
    Status,
    UsedClientLink,
)
from scheduling.services import appointment_cancel, appointment_reschedule
from tests.factories import book

pytestmark = pytest.mark.usefixtures("run_on_commit")


def link_path(appointment: Appointment, action: str) -> str:
    return client_link_url(appointment, action).removeprefix("http://testserver")


def soon(**delta: float) -> datetime:
    return (timezone.now() + timedelta(**delta)).replace(second=0, microsecond=0)


@pytest.fixture
def appointment(clinician: User, client_record: Client) -> Appointment:
    return book(clinician, client_record, soon(days=3))


def assert_untouched(appointment: Appointment) -> None:
    appointment.refresh_from_db()
    assert appointment.status == Status.SCHEDULED
    assert not AppointmentStatusChange.objects.filter(appointment=appointment).exists()
    assert not UsedClientLink.objects.exists()
    assert not RescheduleRequest.objects.exists()


def test_confirming_by_link_confirms_and_records_how(appointment: Appointment) -> None:
    response = HttpClient().post(link_path(appointment, "confirm"))

    assert response.status_code == 200
    assert "Your appointment is confirmed" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Status.CONFIRMED
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.via == AppointmentStatusChange.Via.CLIENT_LINK
    assert (change.from_status, change.to_status) == (Status.SCHEDULED, Status.CONFIRMED)
    assert change.changed_by is None


def test_opening_a_link_changes_nothing(appointment: Appointment) -> None:
    # Mail scanners fetch every link in an email; only the button on the page may act.
    http = HttpClient()
    paths = {action: link_path(appointment, action) for action in ACTIONS}
    for path in paths.values():
        assert http.get(path).status_code == 200
        assert http.head(path).status_code == 200
    assert_untouched(appointment)
    assert http.post(paths["confirm"]).status_code == 200


def test_the_page_shows_the_clients_local_time_and_nothing_clinical(
    appointment: Appointment, clinician: User, client_record: Client
) -> None:
    client_record.timezone = "America/New_York"
    client_record.save(update_fields=["timezone"])
    local = appointment.starts_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))

    page = HttpClient().get(link_path(appointment, "cancel")).content.decode()

    assert f"{local:%H:%M}" in page
    assert "America/New_York" in page
    assert clinician.get_full_name() in page
    assert "In person" in page
    assert appointment.episode.get_stage_display() not in page
    assert 'name="reason"' in page


def test_a_video_session_shows_its_link(clinician: User, client_record: Client) -> None:
    appointment = book(
        clinician,
        client_record,
        soon(days=2),
        location="video",
        video_url="https://video.example/room-42",
    )
    page = HttpClient().get(link_path(appointment, "confirm")).content.decode()
    assert "https://video.example/room-42" in page


def test_a_tampered_link_is_refused_and_changes_nothing(appointment: Appointment) -> None:
    path = link_path(appointment, "confirm")
    tampered = path.removesuffix("/") + "x/"
    http = HttpClient()

    assert http.get(tampered).status_code == 410
    response = http.post(tampered)

    assert response.status_code == 410
    assert "not valid" in response.content.decode()
    assert_untouched(appointment)


def test_garbage_and_mismatched_tokens_are_refused(appointment: Appointment) -> None:
    http = HttpClient()
    assert http.post("/c/confirm/garbage/").status_code == 410
    # A confirm link pasted into a cancel URL does not cancel.
    token = link_path(appointment, "confirm").split("/")[-2]
    assert http.post(f"/c/cancel/{token}/").status_code == 410
    assert_untouched(appointment)


def test_a_link_expires_when_the_session_begins(appointment: Appointment) -> None:
    path = link_path(appointment, "confirm")
    with time_machine.travel(appointment.starts_at + timedelta(minutes=1)):
        response = HttpClient().post(path)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert_untouched(appointment)


def test_a_link_works_once(appointment: Appointment) -> None:
    path = link_path(appointment, "confirm")
    http = HttpClient()
    assert http.post(path).status_code == 200

    replay = http.post(path)

    assert replay.status_code == 410
    assert "already used" in replay.content.decode()
    assert AppointmentStatusChange.objects.filter(appointment=appointment).count() == 1


def test_links_for_the_old_time_stop_working_after_a_reschedule(
    appointment: Appointment, clinician: User
) -> None:
    old_cancel = link_path(appointment, "cancel")
    new_start = appointment.starts_at + timedelta(days=1)
    appointment_reschedule(
        appointment=appointment,
        starts_at=new_start,
        ends_at=new_start + timedelta(minutes=50),
        actor=clinician,
    )

    response = HttpClient().post(old_cancel, {"reason": "too late"})

    assert response.status_code == 410
    assert "moved" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Status.SCHEDULED
    assert HttpClient().post(link_path(appointment, "confirm")).status_code == 200


def test_a_link_for_a_cancelled_session_is_refused(
    appointment: Appointment, clinician: User
) -> None:
    path = link_path(appointment, "confirm")
    appointment_cancel(
        appointment=appointment,
        by_client=False,
        actor=clinician,
        via=AppointmentStatusChange.Via.STAFF,
    )
    assert HttpClient().post(path).status_code == 410
    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELLED_BY_CLINICIAN


def test_cancelling_well_ahead_is_a_client_cancellation(appointment: Appointment) -> None:
    response = HttpClient().post(link_path(appointment, "cancel"), {"reason": "Travelling"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "cancelled" in page
    assert "late cancellation" not in page
    appointment.refresh_from_db()
    assert appointment.status == Status.CANCELLED_BY_CLIENT
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.via == AppointmentStatusChange.Via.CLIENT_LINK
    assert change.reason == "Travelling"


def test_cancelling_inside_the_window_is_a_late_cancellation(
    clinician: User, client_record: Client
) -> None:
    appointment = book(clinician, client_record, soon(hours=5))

    response = HttpClient().post(link_path(appointment, "cancel"), {"reason": ""})

    assert response.status_code == 200
    page = response.content.decode()
    assert "late cancellation" in page
    assert "24 hours" in page
    appointment.refresh_from_db()
    assert appointment.status == Status.LATE_CANCELLED


def test_asking_for_another_time_needs_a_message(appointment: Appointment) -> None:
    path = link_path(appointment, "reschedule")
    http = HttpClient()

    response = http.post(path, {"message": "   "})

    assert response.status_code == 400
    assert "Tell your clinician which times would suit you" in response.content.decode()
    assert_untouched(appointment)
    # The link was not used up by the mistake.
    assert http.post(path, {"message": "Thursdays after 4 pm"}).status_code == 200


def test_asking_for_another_time_records_the_request(appointment: Appointment) -> None:
    response = HttpClient().post(
        link_path(appointment, "reschedule"), {"message": "Any Thursday after 4 pm"}
    )

    assert response.status_code == 200
    assert "sent to your clinician" in response.content.decode()
    request = RescheduleRequest.objects.get()
    assert request.appointment == appointment
    assert request.message == "Any Thursday after 4 pm"
    assert request.resolved_at is None
    appointment.refresh_from_db()
    assert appointment.status == Status.SCHEDULED
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.via == AppointmentStatusChange.Via.CLIENT_LINK


def test_an_unknown_action_gets_the_friendly_page(appointment: Appointment) -> None:
    token = link_path(appointment, "confirm").split("/")[-2]
    http = HttpClient()
    for method in (http.get, http.post):
        response = method(f"/c/delete/{token}/")
        assert response.status_code == 410
        assert "This link does not work" in response.content.decode()
    assert_untouched(appointment)


def test_whoever_is_signed_in_does_not_matter(
    appointment: Appointment, as_other_clinician: HttpClient
) -> None:
    response = as_other_clinician.post(link_path(appointment, "confirm"))

    assert response.status_code == 200
    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.changed_by is None
    assert change.via == AppointmentStatusChange.Via.CLIENT_LINK
