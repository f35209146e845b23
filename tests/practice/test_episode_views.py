from __future__ import annotations

from datetime import timedelta

from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from practice.models import AuditEvent, Client, Episode, Practice, User
from tests.factories import ClientFactory


def test_an_admin_opens_an_episode_and_the_client_becomes_active(
    as_admin: HttpClient, practice: Practice, clinician: User
) -> None:
    waiting = ClientFactory.create(practice=practice, status=Client.Status.WAITLIST)
    response = as_admin.post(
        reverse("episode_open", args=[waiting.pk]),
        {
            "clinician": clinician.pk,
            "opened_on": timezone.localdate().isoformat(),
            "stage": "intake",
        },
    )
    assert response.status_code == 302
    episode = Episode.objects.get(client=waiting)
    assert episode.clinician == clinician
    waiting.refresh_from_db()
    assert waiting.status == Client.Status.ACTIVE


def test_a_second_open_episode_is_refused_clearly(
    as_admin: HttpClient, client_record: Client, other_clinician: User
) -> None:
    response = as_admin.post(
        reverse("episode_open", args=[client_record.pk]),
        {
            "clinician": other_clinician.pk,
            "opened_on": timezone.localdate().isoformat(),
            "stage": "intake",
        },
    )
    assert response.status_code == 400
    assert b"already has an open episode" in response.content
    assert client_record.episodes.count() == 1


def test_only_clinicians_of_this_practice_can_be_chosen(
    as_admin: HttpClient, practice: Practice, outsider: User, admin: User
) -> None:
    waiting = ClientFactory.create(practice=practice, status=Client.Status.WAITLIST)
    for someone in (outsider, admin):
        response = as_admin.post(
            reverse("episode_open", args=[waiting.pk]),
            {
                "clinician": someone.pk,
                "opened_on": timezone.localdate().isoformat(),
                "stage": "intake",
            },
        )
        assert response.status_code == 400
        assert b"Select a valid choice" in response.content
    assert not Episode.objects.exists()


def test_the_clinician_moves_the_stage_of_their_episode(
    as_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    response = as_clinician.post(reverse("episode_stage", args=[episode.pk]), {"stage": "ending"})
    assert response.status_code == 302
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.ENDING
    assert AuditEvent.objects.filter(action="episode.stage").exists()


def test_a_stage_outside_the_list_is_refused(
    as_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    for bogus in ("closed", "nonsense"):
        as_clinician.post(reverse("episode_stage", args=[episode.pk]), {"stage": bogus})
        episode.refresh_from_db()
        assert episode.stage == Episode.Stage.MIDDLE


def test_a_supervisor_reads_but_cannot_move_the_stage(
    as_supervisor: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    response = as_supervisor.post(reverse("episode_stage", args=[episode.pk]), {"stage": "ending"})
    assert response.status_code == 403
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.MIDDLE


def test_another_clinician_gets_404_on_the_episode(
    as_other_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    assert as_other_clinician.get(reverse("episode_close", args=[episode.pk])).status_code == 404


def test_closing_an_episode_needs_a_reason_and_discharges_the_client(
    as_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    url = reverse("episode_close", args=[episode.pk])
    response = as_clinician.post(url, {"closed_on": timezone.localdate().isoformat()})
    assert response.status_code == 400
    assert b"This field is required" in response.content

    response = as_clinician.post(
        url, {"reason": "completed", "closed_on": timezone.localdate().isoformat()}
    )
    assert response.status_code == 302
    episode.refresh_from_db()
    client_record.refresh_from_db()
    assert episode.stage == Episode.Stage.CLOSED
    assert client_record.status == Client.Status.DISCHARGED


def test_an_episode_cannot_close_before_it_opened_or_in_the_future(
    as_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    url = reverse("episode_close", args=[episode.pk])
    for day in (episode.opened_on - timedelta(days=1), timezone.localdate() + timedelta(days=1)):
        response = as_clinician.post(url, {"reason": "completed", "closed_on": day.isoformat()})
        assert response.status_code == 400
    episode.refresh_from_db()
    assert episode.is_open


def test_a_transfer_keeps_the_client_active(as_admin: HttpClient, client_record: Client) -> None:
    episode = client_record.episodes.get()
    as_admin.post(
        reverse("episode_close", args=[episode.pk]),
        {"reason": "transferred", "closed_on": timezone.localdate().isoformat()},
    )
    client_record.refresh_from_db()
    assert client_record.status == Client.Status.ACTIVE
