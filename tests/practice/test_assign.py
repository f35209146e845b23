"""The waitlist, matching suggestions, and assigning a waitlisted client to a clinician."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from practice import caseload
from practice.models import AuditEvent, Client, ClinicianProfile, Episode, Practice, User
from tests.factories import ClientFactory, EpisodeFactory, staff
from tests.practice.caseload_helpers import set_capacity


@pytest.fixture
def waiting(practice: Practice) -> Client:
    return ClientFactory.create(
        practice=practice,
        first_name="Erin",
        last_name="Vogel",
        status=Client.Status.WAITLIST,
        preferred_language="German",
        needs=["anxiety"],
        preferred_times=["evening"],
    )


@pytest.fixture
def nadia(practice: Practice) -> User:
    user = staff(practice, "clinician", first_name="Nadia", last_name="Berger", mfa=False)
    ClinicianProfile.objects.filter(membership__user=user).update(
        languages=["German", "English"], specialties=["anxiety"], caseload_capacity=1
    )
    return user


def assign_url(client: Client) -> str:
    return reverse("client_assign", args=[client.pk])


def test_the_waitlist_lists_who_waits_here_with_the_best_match(
    as_admin: HttpClient,
    waiting: Client,
    nadia: User,
    client_record: Client,
    other_practice: Practice,
) -> None:
    elsewhere = ClientFactory.create(practice=other_practice, status=Client.Status.WAITLIST)
    response = as_admin.get(reverse("waitlist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Erin Vogel" in page
    assert client_record.full_name not in page  # active, not waiting
    assert elsewhere.full_name not in page
    assert "Nadia Berger" in page  # the best match


def test_the_matching_page_ranks_clinicians_and_says_why(
    as_admin: HttpClient, waiting: Client, nadia: User, clinician: User
) -> None:
    response = as_admin.get(reverse("waitlist_client", args=[waiting.pk]))
    assert response.status_code == 200
    suggestions = response.context["suggestions"]
    assert [s.clinician.clinician_id for s in suggestions] == [nadia.pk, clinician.pk]
    page = response.content.decode()
    assert "Speaks German" in page
    assert "Specialises in anxiety" in page
    assert "Does not work in the evening (09:00–17:00)" in page
    assert "Does not list German as a language" in page
    assert f"Assign to {nadia.get_full_name()}" in page


def test_an_admin_assigns_a_waitlisted_client(
    as_admin: HttpClient, admin: User, waiting: Client, nadia: User
) -> None:
    response = as_admin.post(assign_url(waiting), {"clinician": nadia.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse("client_detail", args=[waiting.pk])
    episode = Episode.objects.get(client=waiting)
    assert episode.clinician == nadia and episode.is_open
    assert episode.stage == Episode.Stage.INTAKE
    assert episode.over_capacity_reason == ""
    waiting.refresh_from_db()
    assert waiting.status == Client.Status.ACTIVE
    actions = set(AuditEvent.objects.about(episode).values_list("action", flat=True))
    assert actions == {"episode.open", "episode.assign"}
    assert AuditEvent.objects.get(action="episode.assign").actor == admin

    page = as_admin.get(response["Location"]).content.decode()
    assert "Assigned Erin Vogel to Nadia Berger." in page


def test_assigning_over_capacity_needs_a_reason(
    as_admin: HttpClient, practice: Practice, waiting: Client, nadia: User
) -> None:
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=nadia)
    events = AuditEvent.objects.count()

    response = as_admin.post(assign_url(waiting), {"clinician": nadia.pk})

    assert response.status_code == 400
    assert (
        "Nadia Berger already has 1 of 1 places taken. Give a reason to assign over capacity."
        in response.content.decode()
    )
    waiting.refresh_from_db()
    assert waiting.status == Client.Status.WAITLIST
    assert not Episode.objects.filter(client=waiting).exists()
    assert AuditEvent.objects.count() == events


def test_a_blank_reason_is_no_reason(
    as_admin: HttpClient, practice: Practice, waiting: Client, nadia: User
) -> None:
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=nadia)
    response = as_admin.post(
        assign_url(waiting), {"clinician": nadia.pk, "over_capacity_reason": "   "}
    )
    assert response.status_code == 400
    assert not Episode.objects.filter(client=waiting).exists()


def test_assigning_over_capacity_with_a_reason_keeps_and_audits_it(
    as_admin: HttpClient, practice: Practice, waiting: Client, nadia: User
) -> None:
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=nadia)
    response = as_admin.post(
        assign_url(waiting),
        {"clinician": nadia.pk, "over_capacity_reason": "Only German-speaking clinician."},
    )
    assert response.status_code == 302
    episode = Episode.objects.get(client=waiting)
    assert episode.over_capacity_reason == "Only German-speaking clinician."
    assert AuditEvent.objects.about(episode).filter(action="episode.assign_over_capacity").exists()
    assert not AuditEvent.objects.filter(action="episode.assign").exists()


def test_a_reason_given_with_room_to_spare_is_not_kept(
    as_admin: HttpClient, waiting: Client, nadia: User
) -> None:
    as_admin.post(
        assign_url(waiting), {"clinician": nadia.pk, "over_capacity_reason": "Just in case"}
    )
    assert Episode.objects.get(client=waiting).over_capacity_reason == ""


def test_capacity_comes_from_the_practice_default_without_a_clinicians_own(
    practice: Practice, admin: User, waiting: Client, clinician: User
) -> None:
    practice.default_caseload_capacity = 1
    practice.save()
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=clinician)
    with pytest.raises(ValidationError) as refused:
        caseload.client_assign(client=waiting, clinician=clinician, actor=admin)
    assert "over_capacity_reason" in refused.value.message_dict


def test_a_client_is_assigned_once(
    admin: User, waiting: Client, nadia: User, clinician: User
) -> None:
    caseload.client_assign(client=waiting, clinician=clinician, actor=admin)
    stale = Client.objects.get(pk=waiting.pk)
    stale.status = Client.Status.WAITLIST  # a second admin's page, loaded before the first
    with pytest.raises(ValidationError, match="no longer on the waitlist"):
        caseload.client_assign(client=stale, clinician=nadia, actor=admin)
    assert Episode.objects.filter(client=waiting).count() == 1


def test_only_a_clinician_of_this_practice_can_be_chosen(
    as_admin: HttpClient, waiting: Client, outsider: User, practice: Practice
) -> None:
    supervisor_only = staff(practice, "supervisor", mfa=False)
    cases = {
        outsider.pk: "Choose a clinician of this practice from the list.",
        supervisor_only.pk: "Choose a clinician of this practice from the list.",
        "abc": "Choose a clinician of this practice from the list.",
        "": "Choose a clinician.",
    }
    for chosen, message in cases.items():
        response = as_admin.post(assign_url(waiting), {"clinician": chosen})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not Episode.objects.filter(client=waiting).exists()


def test_assigning_is_a_post(as_admin: HttpClient, waiting: Client) -> None:
    assert as_admin.get(assign_url(waiting)).status_code == 405


def test_a_client_who_is_not_waiting_has_no_matching_page(
    as_admin: HttpClient, client_record: Client
) -> None:
    response = as_admin.get(reverse("waitlist_client", args=[client_record.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("client_detail", args=[client_record.pk])


def test_non_admins_and_outsiders_get_404(
    as_clinician: HttpClient,
    as_supervisor: HttpClient,
    as_client: HttpClient,
    as_outsider: HttpClient,
    waiting: Client,
    nadia: User,
) -> None:
    for http in (as_clinician, as_supervisor, as_client, as_outsider):
        assert http.get(reverse("waitlist_client", args=[waiting.pk])).status_code == 404
        assert http.post(assign_url(waiting), {"clinician": nadia.pk}).status_code == 404
    for http in (as_clinician, as_supervisor, as_client):
        assert http.get(reverse("waitlist")).status_code == 404
    assert not Episode.objects.filter(client=waiting).exists()


def test_set_capacity_helper_counts_for_matching(
    practice: Practice, waiting: Client, nadia: User
) -> None:
    set_capacity(nadia, 3)
    (suggestion,) = caseload.suggestions_for(waiting)
    assert suggestion.clinician.capacity == 3
    assert suggestion.reasons[0] == "Speaks German"
