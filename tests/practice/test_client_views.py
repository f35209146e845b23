from __future__ import annotations

from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import AuditEvent, Client, Practice, User
from tests.factories import ClientFactory

VALID = {
    "first_name": "Hanna",
    "last_name": "Berg",
    "email": "hanna@example.org",
    "phone": "+49 30 1234567",
    "preferred_language": "German",
    "timezone": "Europe/Berlin",
    "needs": "anxiety, sleep",
    "preferred_times": ["morning"],
}


def test_an_admin_adds_a_client(as_admin: HttpClient, practice: Practice) -> None:
    response = as_admin.post(reverse("client_new"), VALID)
    assert response.status_code == 302
    client = Client.objects.get(email="hanna@example.org")
    assert client.practice == practice
    assert client.phone == "+49301234567"
    assert client.needs == ["anxiety", "sleep"]
    assert client.status == Client.Status.WAITLIST


def test_bad_client_input_is_explained_and_saves_nothing(as_admin: HttpClient) -> None:
    response = as_admin.post(
        reverse("client_new"),
        {**VALID, "email": "not-an-email", "phone": "12ab", "timezone": "Nowhere/City"},
    )
    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content
    assert b"international format" in response.content
    assert b"not a known time zone" in response.content
    assert not Client.objects.exists()


def test_a_client_needs_some_way_to_be_reached(as_admin: HttpClient) -> None:
    response = as_admin.post(reverse("client_new"), {**VALID, "email": "", "phone": ""})
    assert response.status_code == 400
    assert b"Give an email address or a phone number" in response.content


def test_reading_a_client_record_is_audited(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    response = as_clinician.get(
        reverse("client_detail", args=[client_record.pk]), REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.about(client_record).get(action="client.view")
    assert event.actor == clinician
    assert event.ip_address == "10.1.2.3"
    assert event.practice == client_record.practice


def test_the_supervisor_reads_their_supervisees_client(
    as_supervisor: HttpClient, client_record: Client
) -> None:
    assert as_supervisor.get(reverse("client_detail", args=[client_record.pk])).status_code == 200


def test_another_clinician_gets_404_and_nothing_is_logged_as_read(
    as_other_clinician: HttpClient, client_record: Client
) -> None:
    response = as_other_clinician.get(reverse("client_detail", args=[client_record.pk]))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="client.view").exists()


def test_a_client_never_opens_staff_pages_even_their_own_record(
    as_client: HttpClient, client_record: Client
) -> None:
    assert as_client.get(reverse("client_list")).status_code == 404
    assert as_client.get(reverse("client_edit", args=[client_record.pk])).status_code == 403


def test_clinicians_cannot_edit_client_records(
    as_clinician: HttpClient, client_record: Client
) -> None:
    response = as_clinician.post(reverse("client_edit", args=[client_record.pk]), VALID)
    assert response.status_code == 403
    client_record.refresh_from_db()
    assert client_record.email != VALID["email"]


def test_an_admin_edits_a_client(as_admin: HttpClient, client_record: Client) -> None:
    response = as_admin.post(reverse("client_edit", args=[client_record.pk]), VALID)
    assert response.status_code == 302
    client_record.refresh_from_db()
    assert client_record.first_name == "Hanna"
    assert AuditEvent.objects.about(client_record).filter(action="client.update").exists()


def test_the_client_list_is_the_caseload_for_a_clinician(
    as_clinician: HttpClient, client_record: Client, practice: Practice
) -> None:
    stranger = ClientFactory.create(practice=practice, last_name="Zzyzx")
    response = as_clinician.get(reverse("client_list"))
    assert client_record.last_name.encode() in response.content
    assert stranger.last_name.encode() not in response.content


def test_the_client_list_filters_and_survives_odd_input(
    as_admin: HttpClient, client_record: Client
) -> None:
    response = as_admin.get(
        reverse("client_list"), {"q": client_record.last_name, "status": "bogus", "page": "x"}
    )
    assert response.status_code == 200
    assert client_record.last_name.encode() in response.content
    response = as_admin.get(reverse("client_list"), {"status": "waitlist"})
    assert client_record.last_name.encode() not in response.content
