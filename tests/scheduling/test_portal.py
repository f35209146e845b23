"""A portal client's own appointments: list, confirm, cancel, ask for another time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from practice.models import Client, Practice, User
from scheduling.models import Appointment, AppointmentStatusChange, RescheduleRequest, Status
from tests.factories import ClientFactory, book

pytestmark = pytest.mark.usefixtures("run_on_commit")

Via = AppointmentStatusChange.Via


def soon(**delta: float) -> datetime:
    return (timezone.now() + timedelta(**delta)).replace(second=0, microsecond=0)


def action_url(appointment: Appointment, action: str) -> str:
    return reverse("portal_appointment_action", args=[appointment.pk, action])


@pytest.fixture
def mine(clinician: User, client_record: Client) -> Appointment:
    return book(clinician, client_record, soon(days=3))


@pytest.fixture
def theirs(practice: Practice, clinician: User) -> Appointment:
    other = ClientFactory.create(practice=practice, first_name="Ivy", last_name="Nguyen")
    return book(clinician, other, soon(days=4))


def test_a_client_sees_only_their_own_appointments(
    as_client: HttpClient,
    clinician: User,
    client_record: Client,
    mine: Appointment,
    theirs: Appointment,
) -> None:
    earlier = book(clinician, client_record, soon(days=-7), status=Status.ATTENDED)

    response = as_client.get(reverse("portal_appointments"))

    assert response.status_code == 200
    assert list(response.context["upcoming"]) == [mine]
    assert list(response.context["past"]) == [earlier]
    page = response.content.decode()
    assert action_url(mine, "cancel") in page
    assert action_url(mine, "reschedule") in page
    assert f"/portal/appointments/{theirs.pk}/" not in page
    assert "Nguyen" not in page


def test_another_clients_appointment_is_404(as_client: HttpClient, theirs: Appointment) -> None:
    assert as_client.get(action_url(theirs, "cancel")).status_code == 404
    assert as_client.post(action_url(theirs, "confirm")).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.SCHEDULED


def test_staff_get_404_on_the_portal(
    as_clinician: HttpClient, as_admin: HttpClient, mine: Appointment
) -> None:
    for http in (as_clinician, as_admin):
        assert http.get(reverse("portal_appointments")).status_code == 404
        assert http.post(action_url(mine, "confirm")).status_code == 404
    mine.refresh_from_db()
    assert mine.status == Status.SCHEDULED


def test_outsider_gets_404(as_outsider: HttpClient, mine: Appointment) -> None:
    assert as_outsider.get(reverse("portal_appointments")).status_code == 404
    assert as_outsider.get(action_url(mine, "cancel")).status_code == 404
    assert as_outsider.post(action_url(mine, "cancel")).status_code == 404
    mine.refresh_from_db()
    assert mine.status == Status.SCHEDULED


def test_signed_out_visitors_are_sent_to_sign_in(mine: Appointment) -> None:
    response = HttpClient().get(reverse("portal_appointments"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_an_unknown_action_is_404(as_client: HttpClient, mine: Appointment) -> None:
    assert as_client.get(action_url(mine, "delete")).status_code == 404
    assert as_client.post(action_url(mine, "delete")).status_code == 404


def test_a_client_confirms_through_the_portal(
    as_client: HttpClient, client_user: User, mine: Appointment
) -> None:
    response = as_client.post(action_url(mine, "confirm"), follow=True)

    assert response.redirect_chain == [(reverse("portal_appointments"), 302)]
    assert "Your appointment is confirmed" in response.content.decode()
    mine.refresh_from_db()
    assert mine.status == Status.CONFIRMED
    change = AppointmentStatusChange.objects.get(appointment=mine)
    assert (change.via, change.changed_by) == (Via.PORTAL, client_user)


def test_a_client_cancels_through_the_portal(
    as_client: HttpClient, client_user: User, mine: Appointment
) -> None:
    form = as_client.get(action_url(mine, "cancel"))
    assert form.status_code == 200
    assert 'name="reason"' in form.content.decode()
    mine.refresh_from_db()
    assert mine.status == Status.SCHEDULED

    response = as_client.post(action_url(mine, "cancel"), {"reason": "Moving away"})

    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.status == Status.CANCELLED_BY_CLIENT
    change = AppointmentStatusChange.objects.get(appointment=mine)
    assert (change.via, change.changed_by, change.reason) == (
        Via.PORTAL,
        client_user,
        "Moving away",
    )


def test_a_late_cancel_through_the_portal_says_so(
    as_client: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = book(clinician, client_record, soon(hours=3))

    response = as_client.post(action_url(appointment, "cancel"), {"reason": ""}, follow=True)

    assert "late cancellation" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Status.LATE_CANCELLED


def test_a_client_asks_for_another_time_through_the_portal(
    as_client: HttpClient, mine: Appointment
) -> None:
    empty = as_client.post(action_url(mine, "reschedule"), {"message": ""})
    assert empty.status_code == 400
    assert not RescheduleRequest.objects.exists()

    response = as_client.post(action_url(mine, "reschedule"), {"message": "Mornings, please"})

    assert response.status_code == 302
    assert RescheduleRequest.objects.get().message == "Mornings, please"


def test_a_refused_action_shows_why_and_changes_nothing(
    as_client: HttpClient, clinician: User, client_record: Client
) -> None:
    cancelled = book(clinician, client_record, soon(days=5), status=Status.CANCELLED_BY_CLINICIAN)

    response = as_client.post(action_url(cancelled, "confirm"))

    assert response.status_code == 400
    assert "can no longer be confirmed" in response.content.decode()
    cancelled.refresh_from_db()
    assert cancelled.status == Status.CANCELLED_BY_CLINICIAN
    assert not AppointmentStatusChange.objects.filter(appointment=cancelled).exists()
