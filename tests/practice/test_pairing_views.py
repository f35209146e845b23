from __future__ import annotations

from datetime import timedelta

from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from practice.models import Practice, SupervisionPairing, User
from tests.factories import staff


def test_an_admin_pairs_a_supervisor_with_a_clinician(
    as_admin: HttpClient, practice: Practice, other_clinician: User
) -> None:
    supervisor = staff(practice, "supervisor")
    response = as_admin.post(
        reverse("pairing_new"),
        {
            "supervisor": supervisor.pk,
            "supervisee": other_clinician.pk,
            "started_on": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 302
    assert (
        SupervisionPairing.objects.current().filter(supervisee=other_clinician).get().supervisor
        == supervisor
    )


def test_two_supervisors_at_once_are_refused_by_the_database_rule(
    as_admin: HttpClient, practice: Practice, supervisor: User, clinician: User
) -> None:
    second = staff(practice, "supervisor")
    response = as_admin.post(
        reverse("pairing_new"),
        {
            "supervisor": second.pk,
            "supervisee": clinician.pk,
            "started_on": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 400
    assert b"already has a supervisor for those dates" in response.content
    assert SupervisionPairing.objects.filter(supervisee=clinician).count() == 1


def test_nobody_supervises_themselves(as_admin: HttpClient, practice: Practice) -> None:
    both = staff(practice, "supervisor", "clinician")
    response = as_admin.post(
        reverse("pairing_new"),
        {
            "supervisor": both.pk,
            "supervisee": both.pk,
            "started_on": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 400
    assert b"Nobody supervises themselves" in response.content


def test_ending_a_pairing_and_starting_a_new_one(
    as_admin: HttpClient, practice: Practice, supervisor: User, clinician: User
) -> None:
    pairing = SupervisionPairing.objects.get(supervisee=clinician)
    today = timezone.localdate()
    response = as_admin.post(
        reverse("pairing_end", args=[pairing.pk]), {"ended_on": today.isoformat()}
    )
    assert response.status_code == 302
    second = staff(practice, "supervisor")
    response = as_admin.post(
        reverse("pairing_new"),
        {"supervisor": second.pk, "supervisee": clinician.pk, "started_on": today.isoformat()},
    )
    assert response.status_code == 302
    assert SupervisionPairing.objects.current().get(supervisee=clinician).supervisor == second


def test_a_pairing_cannot_end_before_it_started(
    as_admin: HttpClient, supervisor: User, clinician: User
) -> None:
    pairing = SupervisionPairing.objects.get(supervisee=clinician)
    day = pairing.started_on - timedelta(days=1)
    response = as_admin.post(
        reverse("pairing_end", args=[pairing.pk]), {"ended_on": day.isoformat()}
    )
    assert response.status_code == 400
    assert b"must end after the day it started" in response.content
