from __future__ import annotations

from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import AuditEvent, ClinicianProfile, Membership, Practice, User
from tests.factories import ClientFactory, EpisodeFactory


def test_the_member_list_shows_this_practices_staff_only(
    as_admin: HttpClient, clinician: User, outsider: User
) -> None:
    response = as_admin.get(reverse("member_list"))
    assert response.status_code == 200
    assert clinician.email.encode() in response.content
    assert outsider.email.encode() not in response.content


def test_an_admin_changes_roles(as_admin: HttpClient, clinician: User) -> None:
    membership = Membership.objects.get(user=clinician)
    response = as_admin.post(
        reverse("member_edit", args=[membership.pk]),
        {"roles": ["clinician", "supervisor"], "is_active": "on"},
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.is_supervisor and membership.is_clinician
    assert AuditEvent.objects.filter(action="membership.update").exists()


def test_a_member_needs_a_role(as_admin: HttpClient, clinician: User) -> None:
    membership = Membership.objects.get(user=clinician)
    response = as_admin.post(reverse("member_edit", args=[membership.pk]), {"is_active": "on"})
    assert response.status_code == 400
    assert b"Choose at least one role" in response.content


def test_an_admin_cannot_lock_themselves_out(as_admin: HttpClient, admin: User) -> None:
    membership = Membership.objects.get(user=admin)
    response = as_admin.post(
        reverse("member_edit", args=[membership.pk]), {"roles": ["clinician"], "is_active": "on"}
    )
    assert response.status_code == 400
    assert b"cannot remove your own admin role" in response.content
    membership.refresh_from_db()
    assert membership.is_admin


def test_a_clinician_with_open_episodes_keeps_the_role(
    as_admin: HttpClient, clinician: User, practice: Practice
) -> None:
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=clinician)
    membership = Membership.objects.get(user=clinician)
    response = as_admin.post(
        reverse("member_edit", args=[membership.pk]), {"roles": ["supervisor"], "is_active": "on"}
    )
    assert response.status_code == 400
    assert b"still has open episodes" in response.content


def test_an_admin_edits_a_clinician_profile(as_admin: HttpClient, clinician: User) -> None:
    membership = Membership.objects.get(user=clinician)
    response = as_admin.post(
        reverse("clinician_profile_edit", args=[membership.pk]),
        {
            "languages": "English, Turkish",
            "specialties": "trauma",
            "caseload_capacity": "18",
            "timezone": "Europe/Istanbul",
            "working_days": ["1", "2", "3"],
            "work_starts": "08:00",
            "work_ends": "16:00",
            "agenda_time": "06:30",
        },
    )
    assert response.status_code == 302
    profile = ClinicianProfile.objects.get(membership=membership)
    assert profile.languages == ["English", "Turkish"]
    assert profile.working_days == [1, 2, 3]
    assert profile.effective_capacity == 18


def test_profile_errors_are_clear(as_admin: HttpClient, clinician: User) -> None:
    membership = Membership.objects.get(user=clinician)
    response = as_admin.post(
        reverse("clinician_profile_edit", args=[membership.pk]),
        {
            "caseload_capacity": "-3",
            "timezone": "Mars/Olympus",
            "working_days": ["9"],
            "work_starts": "17:00",
            "work_ends": "09:00",
        },
    )
    assert response.status_code == 400
    for text in [
        b"not a known time zone",
        b"Working hours must end after",
        b"not one of the available",
    ]:
        assert text in response.content
    assert ClinicianProfile.objects.get(membership=membership).work_starts.hour == 9


def test_a_clinician_cannot_see_members(as_clinician: HttpClient) -> None:
    assert as_clinician.get(reverse("member_list")).status_code == 404
