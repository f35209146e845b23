from __future__ import annotations

from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import AuditEvent, Client, User


def test_the_clinician_home_lists_the_caseload(
    as_clinician: HttpClient, client_record: Client
) -> None:
    response = as_clinician.get(reverse("home"))
    assert response.status_code == 200
    assert client_record.full_name.encode() in response.content


def test_the_supervisor_home_lists_supervisees(
    as_supervisor: HttpClient, clinician: User, client_record: Client
) -> None:
    response = as_supervisor.get(reverse("home"))
    assert clinician.get_full_name().encode() in response.content
    assert b"1 open episode" in response.content


def test_the_admin_home_shows_counts(as_admin: HttpClient, client_record: Client) -> None:
    response = as_admin.get(reverse("home"))
    assert response.status_code == 200
    assert b"Open episodes" in response.content


def test_the_client_home_is_their_portal(as_client: HttpClient, client_record: Client) -> None:
    response = as_client.get(reverse("home"))
    assert response.status_code == 200
    assert f"Hello, {client_record.first_name}".encode() in response.content


def test_a_login_without_membership_or_client_record_gets_404(db: None) -> None:
    from tests.factories import UserFactory

    http = HttpClient()
    http.force_login(UserFactory.create())
    assert http.get(reverse("home")).status_code == 404


def test_the_audit_log_shows_this_practices_events(
    as_admin: HttpClient, as_clinician: HttpClient, as_outsider: HttpClient, client_record: Client
) -> None:
    as_clinician.get(reverse("client_detail", args=[client_record.pk]))
    response = as_admin.get(reverse("audit_log"), {"action": "client.view"})
    row = f"practice.client #{client_record.pk}".encode()
    assert row in response.content
    assert AuditEvent.objects.count() == 1
    assert row not in as_outsider.get(reverse("audit_log")).content


def test_healthz_answers_without_login(db: None) -> None:
    assert HttpClient().get(reverse("healthz")).content == b"ok"
