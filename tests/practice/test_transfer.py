"""Transfers: an open episode moves to another clinician with a handoff note, in one
transaction; the old one closes as transferred and its future sessions are cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from alliance.models import CountertransferenceNote, RuptureFlag
from practice import caseload
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, AppointmentStatusChange, Status
from tests.conftest import login
from tests.factories import ClientFactory, EpisodeFactory, book, staff
from tests.practice.caseload_helpers import NOW, at, flag, set_capacity


@pytest.fixture(autouse=True)
def _wednesday_noon() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def carol(practice: Practice) -> User:
    return staff(practice, "clinician", first_name="Carol", last_name="Meyer")


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return Episode.objects.get(client=client_record)


@pytest.fixture
def sessions(clinician: User, client_record: Client) -> dict[str, Appointment]:
    return {
        "past": book(clinician, client_record, at(5, 27, 10), status=Status.ATTENDED),
        "next": book(clinician, client_record, at(6, 4, 10), status=Status.CONFIRMED),
        "later": book(clinician, client_record, at(6, 11, 10)),
        "cancelled": book(
            clinician, client_record, at(6, 18, 10), status=Status.CANCELLED_BY_CLIENT
        ),
    }


def transfer_url(episode: Episode) -> str:
    return reverse("episode_transfer", args=[episode.pk])


def test_a_transfer_closes_the_old_episode_and_opens_a_new_one(
    admin: User, clinician: User, carol: User, client_record: Client, episode: Episode
) -> None:
    result = caseload.episode_transfer(
        episode=episode, to_clinician=carol, actor=admin, handoff_note="Works best mornings."
    )
    episode.refresh_from_db()
    assert episode.closed_on == NOW.date()
    assert episode.close_reason == Episode.CloseReason.TRANSFERRED
    assert episode.stage == Episode.Stage.CLOSED

    new = result.episode
    assert new.clinician == carol and new.is_open
    assert new.transferred_from == episode
    assert new.handoff_note == "Works best mornings."
    assert new.stage == Episode.Stage.MIDDLE  # the stage the client had reached
    assert new.opened_on == NOW.date()
    client_record.refresh_from_db()
    assert client_record.status == Client.Status.ACTIVE
    assert list(client_record.episodes.order_by("pk")) == [episode, new]  # history kept
    assert set(AuditEvent.objects.filter(actor=admin).values_list("action", flat=True)) == {
        "episode.close",
        "episode.open",
        "episode.transfer",
    }


def test_open_flags_move_to_the_new_clinician_and_finished_ones_stay(
    admin: User, clinician: User, carol: User, episode: Episode
) -> None:
    open_flag = flag(episode)
    finished = flag(episode, rule=RuptureFlag.Rule.FELT_OFF, resolved=True)
    new = caseload.episode_transfer(
        episode=episode, to_clinician=carol, actor=admin, handoff_note="Repair in progress."
    ).episode
    open_flag.refresh_from_db()
    finished.refresh_from_db()
    assert (open_flag.episode, open_flag.clinician) == (new, carol)
    assert (finished.episode, finished.clinician) == (episode, clinician)
    assert open_flag.events.filter(note__startswith="Moved with the transferred episode").exists()
    # The new clinician can now repair it; the board counts it with her.
    assert RuptureFlag.objects.open().counts_by_clinician() == {carol.pk: {"low_alliance": 1}}
    page = login(carol).get(reverse("flag_detail", args=[open_flag.pk]))
    assert "Log a repair action" in page.content.decode()


def test_future_sessions_are_cancelled_by_the_clinician_for_rebooking(
    admin: User, carol: User, episode: Episode, sessions: dict[str, Appointment]
) -> None:
    result = caseload.episode_transfer(
        episode=episode, to_clinician=carol, actor=admin, handoff_note="Handoff."
    )
    assert {a.pk for a in result.cancelled} == {sessions["next"].pk, sessions["later"].pk}
    for name in ("next", "later"):
        appointment = Appointment.objects.get(pk=sessions[name].pk)
        assert appointment.status == Status.CANCELLED_BY_CLINICIAN
        assert appointment.episode == episode  # the record stays where it happened
        change = AppointmentStatusChange.objects.filter(appointment=appointment).last()
        assert change is not None
        assert change.reason == "transferred to Carol Meyer"
        assert change.changed_by == admin
    assert Appointment.objects.get(pk=sessions["past"].pk).status == Status.ATTENDED
    assert Appointment.objects.get(pk=sessions["cancelled"].pk).status == Status.CANCELLED_BY_CLIENT
    rebook = list(caseload.sessions_to_rebook(result.episode))
    assert rebook == [sessions["next"], sessions["later"]]


def test_the_admin_transfers_from_the_page_and_sees_what_to_rebook(
    as_admin: HttpClient,
    carol: User,
    client_record: Client,
    episode: Episode,
    sessions: dict[str, Appointment],
) -> None:
    page = as_admin.get(transfer_url(episode))
    assert page.status_code == 200
    assert "Thu 4 Jun 2026, 10:00" in page.content.decode()  # Berlin time, to be cancelled

    response = as_admin.post(
        transfer_url(episode), {"clinician": carol.pk, "handoff_note": "Prefers video."}
    )
    new = Episode.objects.get(client=client_record, closed_on__isnull=True)
    assert response.status_code == 302
    assert response["Location"] == reverse("episode_transferred", args=[new.pk])
    summary = as_admin.get(response["Location"]).content.decode()
    assert f"Transferred {client_record.full_name} to Carol Meyer." in summary
    assert "Thu 4 Jun 2026, 10:00" in summary and "Thu 11 Jun 2026, 10:00" in summary
    assert f"?clinician={carol.pk}&amp;date=2026-06-04&amp;time=10:00" in summary
    assert "Thu 18 Jun" not in summary  # the client cancelled that one themselves


def test_the_client_page_offers_the_transfer_to_admins(
    as_admin: HttpClient, as_clinician: HttpClient, client_record: Client, episode: Episode
) -> None:
    detail = reverse("client_detail", args=[client_record.pk])
    assert transfer_url(episode) in as_admin.get(detail).content.decode()
    assert transfer_url(episode) not in as_clinician.get(detail).content.decode()


def test_the_new_clinician_sees_the_whole_timeline(
    admin: User, clinician: User, carol: User, client_record: Client, episode: Episode
) -> None:
    flag(episode, summary="Feedback fell from 36 to 19 after the holiday.")
    as_carol = login(carol)
    assert as_carol.get(reverse("client_timeline", args=[client_record.pk])).status_code == 404

    caseload.episode_transfer(
        episode=episode, to_clinician=carol, actor=admin, handoff_note="See the March rupture."
    )

    response = as_carol.get(reverse("client_timeline", args=[client_record.pk]))
    assert response.status_code == 200
    assert "Feedback fell from 36 to 19 after the holiday." in response.content.decode()
    # The previous clinician keeps read access to the history they were part of.
    as_bob = login(clinician)
    assert as_bob.get(reverse("client_timeline", args=[client_record.pk])).status_code == 200


def test_the_new_clinician_does_not_read_the_previous_clinicians_private_notes(
    admin: User, clinician: User, carol: User, client_record: Client, episode: Episode
) -> None:
    note = CountertransferenceNote.objects.create(
        author=clinician, client=client_record, episode=episode, text="I felt protective."
    )
    caseload.episode_transfer(
        episode=episode, to_clinician=carol, actor=admin, handoff_note="Handoff."
    )
    assert note not in CountertransferenceNote.objects.readable_by(carol)
    assert note in CountertransferenceNote.objects.readable_by(clinician)


def test_a_transfer_needs_a_handoff_note(
    as_admin: HttpClient, carol: User, episode: Episode, sessions: dict[str, Appointment]
) -> None:
    events = AuditEvent.objects.count()
    response = as_admin.post(transfer_url(episode), {"clinician": carol.pk, "handoff_note": "  "})
    assert response.status_code == 400
    assert "Write a handoff note for the new clinician." in response.content.decode()
    episode.refresh_from_db()
    assert episode.is_open
    assert Appointment.objects.get(pk=sessions["next"].pk).status == Status.CONFIRMED
    assert AuditEvent.objects.count() == events


def test_the_current_clinician_is_not_a_choice(
    as_admin: HttpClient, admin: User, clinician: User, episode: Episode
) -> None:
    response = as_admin.post(
        transfer_url(episode), {"clinician": clinician.pk, "handoff_note": "x"}
    )
    assert response.status_code == 400
    assert "Choose a clinician of this practice from the list." in response.content.decode()
    with pytest.raises(ValidationError, match="other than the current one"):
        caseload.episode_transfer(
            episode=episode, to_clinician=clinician, actor=admin, handoff_note="x"
        )


def test_a_closed_episode_is_not_transferred(
    as_admin: HttpClient, admin: User, carol: User, practice: Practice
) -> None:
    closed = EpisodeFactory.create(
        client=ClientFactory.create(practice=practice, status=Client.Status.DISCHARGED),
        clinician=carol,
        stage=Episode.Stage.CLOSED,
        closed_on=NOW.date() - timedelta(days=3),
        close_reason=Episode.CloseReason.COMPLETED,
    )
    response = as_admin.get(transfer_url(closed))
    assert response.status_code == 302
    other = staff(practice, "clinician", mfa=False)
    with pytest.raises(ValidationError, match="already closed"):
        caseload.episode_transfer(episode=closed, to_clinician=other, actor=admin, handoff_note="x")


def test_transferring_to_a_full_caseload_needs_a_reason(
    as_admin: HttpClient, practice: Practice, carol: User, episode: Episode
) -> None:
    set_capacity(carol, 1)
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=carol)
    response = as_admin.post(transfer_url(episode), {"clinician": carol.pk, "handoff_note": "x"})
    assert response.status_code == 400
    assert "Carol Meyer already has 1 of 1 places taken" in response.content.decode()
    episode.refresh_from_db()
    assert episode.is_open

    response = as_admin.post(
        transfer_url(episode),
        {"clinician": carol.pk, "handoff_note": "x", "over_capacity_reason": "Continuity."},
    )
    assert response.status_code == 302
    new = Episode.objects.get(transferred_from=episode)
    assert new.over_capacity_reason == "Continuity."
    assert AuditEvent.objects.about(new).filter(action="episode.assign_over_capacity").exists()


def test_it_is_all_or_nothing(
    monkeypatch: pytest.MonkeyPatch,
    admin: User,
    carol: User,
    client_record: Client,
    episode: Episode,
    sessions: dict[str, Appointment],
) -> None:
    def refuse(**kwargs: object) -> Episode:
        raise ValidationError("The new episode could not open.")

    monkeypatch.setattr(caseload, "episode_open", refuse)
    with pytest.raises(ValidationError):
        caseload.episode_transfer(
            episode=episode, to_clinician=carol, actor=admin, handoff_note="Handoff."
        )
    episode.refresh_from_db()
    assert episode.is_open and episode.close_reason == ""
    assert Appointment.objects.get(pk=sessions["next"].pk).status == Status.CONFIRMED
    assert Appointment.objects.get(pk=sessions["later"].pk).status == Status.SCHEDULED
    assert not AuditEvent.objects.filter(
        action__in=["episode.close", "appointment.cancel"]
    ).exists()


def test_non_admins_and_outsiders_get_404(
    as_clinician: HttpClient,
    as_supervisor: HttpClient,
    as_client: HttpClient,
    as_outsider: HttpClient,
    carol: User,
    episode: Episode,
) -> None:
    for http in (as_clinician, as_supervisor, as_client, as_outsider):
        assert http.get(transfer_url(episode)).status_code == 404
        response = http.post(transfer_url(episode), {"clinician": carol.pk, "handoff_note": "x"})
        assert response.status_code == 404
        assert http.get(reverse("episode_transferred", args=[episode.pk])).status_code == 404
    episode.refresh_from_db()
    assert episode.is_open
