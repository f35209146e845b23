from __future__ import annotations

from datetime import timedelta

from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

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


def test_the_audit_log_answers_who_read_this_clients_record(
    as_admin: HttpClient, as_clinician: HttpClient, client_record: Client, clinician: User
) -> None:
    """A clinical read (the timeline) is found by the client's name, the reader and the day."""
    as_clinician.get(reverse("client_timeline", args=[client_record.pk]))
    today = timezone.localdate()
    page = as_admin.get(
        reverse("audit_log"),
        {
            "client": client_record.last_name,
            "actor": str(clinician.pk),
            "date_from": today.isoformat(),
            "date_to": today.isoformat(),
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "timeline.view" in html
    assert client_record.full_name in html
    # The log names the record; it does not show what the timeline showed.
    assert "<svg" not in html
    yesterday = (today - timedelta(days=1)).isoformat()
    older = as_admin.get(
        reverse("audit_log"), {"client": client_record.last_name, "date_to": yesterday}
    )
    assert "timeline.view" not in older.content.decode()


def test_an_audit_search_with_the_dates_reversed_says_so(as_admin: HttpClient) -> None:
    page = as_admin.get(reverse("audit_log"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert page.status_code == 400
    assert "The end date is before the start date." in page.content.decode()


def test_garbage_audit_filters_never_500(as_admin: HttpClient) -> None:
    page = as_admin.get(reverse("audit_log"), {"actor": "x'; drop", "date_from": "yesterday"})
    assert page.status_code == 400
