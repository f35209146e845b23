"""Endings: a planned last session, and a closing review that records how it really ended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alliance.models import EpisodeEnding, FlagEvent, RuptureFlag
from alliance.services import (
    episode_close_with_review,
    episode_ending_plan,
    flag_transition,
    rupture_log,
)
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, Status
from tests.alliance.helpers import NOW, feedback_answers, phq9_answers
from tests.alliance.test_rules import respond
from tests.factories import ClientFactory, EpisodeFactory, book

pytestmark = pytest.mark.django_db

Kind = EpisodeEnding.Kind
LAST = NOW + timedelta(days=7)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


@pytest.fixture
def last_session(clinician: User, client_record: Client) -> Appointment:
    return book(clinician, client_record, LAST, status=Status.SCHEDULED, status_changed_at=NOW)


def plan_ending(episode: Episode, actor: User, last_session: Appointment) -> EpisodeEnding:
    return episode_ending_plan(
        episode=episode,
        actor=actor,
        last_session=last_session,
        note="Agreed together to end after the spring break.",
    )


def close(
    episode: Episode,
    actor: User,
    kind: str,
    note: str = "",
    goals: str = "Fewer panic attacks; back at work three days a week.",
    closed_on: date | None = None,
) -> EpisodeEnding:
    return episode_close_with_review(
        episode=episode,
        actor=actor,
        kind=kind,
        goals_and_progress=goals,
        what_helps_on_return="Start with the breathing plan; early morning sessions.",
        note=note,
        closed_on=closed_on or LAST.date(),
        now=LAST + timedelta(hours=2),
    )


def attend(session: Appointment, actor: User) -> None:
    session.set_status(Status.ATTENDED, by=actor, via="staff", at=session.starts_at)


# Planning the ending


def test_planning_the_ending_moves_the_episode_into_its_ending_stage(
    episode: Episode, clinician: User, last_session: Appointment
) -> None:
    ending = plan_ending(episode, clinician, last_session)
    assert (ending.kind, ending.last_session, ending.planned_by) == (
        Kind.PLANNED,
        last_session,
        clinician,
    )
    assert ending.note == "Agreed together to end after the spring break."
    assert ending.closed_at is None
    episode.refresh_from_db()
    assert (episode.stage, episode.is_open) == (Episode.Stage.ENDING, True)
    assert AuditEvent.objects.filter(action="episode.ending_planned").count() == 1


def test_planning_again_moves_the_last_session(
    episode: Episode, clinician: User, client_record: Client, last_session: Appointment
) -> None:
    plan_ending(episode, clinician, last_session)
    later = book(clinician, client_record, LAST + timedelta(days=7), status=Status.SCHEDULED)
    plan_ending(episode, clinician, later)
    assert EpisodeEnding.objects.get().last_session == later


def test_the_last_session_must_be_an_open_session_of_this_episode(
    episode: Episode, clinician: User, practice: Practice, client_record: Client
) -> None:
    other = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=other, clinician=clinician)
    elsewhere = book(clinician, other, LAST, status=Status.SCHEDULED)
    cancelled = book(
        clinician, client_record, LAST + timedelta(days=1), status=Status.CANCELLED_BY_CLIENT
    )
    for session in (elsewhere, cancelled):
        with pytest.raises(ValidationError) as refused:
            plan_ending(episode, clinician, session)
        assert list(refused.value.message_dict) == ["last_session"]
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.MIDDLE
    assert not EpisodeEnding.objects.exists()


def test_a_closed_episode_cannot_plan_an_ending(
    episode: Episode, clinician: User, last_session: Appointment
) -> None:
    episode.close(reason=Episode.CloseReason.COMPLETED, on=NOW.date())
    with pytest.raises(ValidationError, match="already closed"):
        plan_ending(episode, clinician, last_session)


# The closing review


def test_a_planned_ending_closes_with_the_review_and_the_first_and_last_scores(
    episode: Episode, clinician: User, last_session: Appointment
) -> None:
    first_phq9 = respond(episode, "phq-9", phq9_answers(18), NOW - timedelta(days=25))
    respond(episode, "phq-9", phq9_answers(12), NOW - timedelta(days=10))
    respond(episode, "session-feedback", feedback_answers(30), NOW - timedelta(days=25))
    respond(episode, "session-feedback", feedback_answers(38), NOW - timedelta(days=1))
    plan_ending(episode, clinician, last_session)
    attend(last_session, clinician)
    last_phq9 = respond(episode, "phq-9", phq9_answers(6), LAST - timedelta(hours=1))

    ending = close(episode, clinician, Kind.PLANNED)

    ending.refresh_from_db()
    assert (ending.kind, ending.last_session) == (Kind.PLANNED, last_session)
    assert ending.goals_and_progress == "Fewer panic attacks; back at work three days a week."
    assert ending.what_helps_on_return.startswith("Start with the breathing plan")
    assert ending.note == "Agreed together to end after the spring break."
    assert ending.closed_at == LAST + timedelta(hours=2)
    assert ending.first_scores == {
        "phq-9": {
            "name": "PHQ-9",
            "total": 18,
            "band": "moderately severe",
            "completed_at": first_phq9.completed_at.isoformat(),
        },
        "session-feedback": {
            "name": "Session feedback",
            "total": 30,
            "band": "",
            "completed_at": (NOW - timedelta(days=25)).isoformat(),
        },
    }
    assert ending.last_scores["phq-9"] == {
        "name": "PHQ-9",
        "total": 6,
        "band": "mild",
        "completed_at": last_phq9.completed_at.isoformat(),
    }
    assert ending.last_scores["session-feedback"]["total"] == 38
    episode.refresh_from_db()
    assert (episode.stage, episode.close_reason, episode.closed_on) == (
        Episode.Stage.CLOSED,
        Episode.CloseReason.COMPLETED,
        LAST.date(),
    )
    assert AuditEvent.objects.filter(action="episode.close_review").count() == 1


@pytest.mark.parametrize("status", [Status.SCHEDULED, Status.NO_SHOW, Status.CANCELLED_BY_CLIENT])
def test_a_planned_close_is_refused_when_the_last_session_was_not_attended(
    episode: Episode, clinician: User, last_session: Appointment, status: str
) -> None:
    plan_ending(episode, clinician, last_session)
    if status != Status.SCHEDULED:
        last_session.set_status(status, by=clinician, via="staff", at=LAST)
    with pytest.raises(ValidationError) as refused:
        close(episode, clinician, Kind.PLANNED)
    [message] = refused.value.message_dict["kind"]
    assert message.startswith("No last session was attended.")
    assert "voicemail only" in message
    episode.refresh_from_db()
    assert (episode.is_open, episode.stage) == (True, Episode.Stage.ENDING)
    ending = EpisodeEnding.objects.get()
    assert (ending.closed_at, ending.goals_and_progress, ending.first_scores) == (None, "", {})


def test_a_planned_close_without_any_planned_session_is_refused(
    episode: Episode, clinician: User
) -> None:
    with pytest.raises(ValidationError, match="No last session was attended"):
        close(episode, clinician, Kind.PLANNED)
    assert not EpisodeEnding.objects.exists()
    episode.refresh_from_db()
    assert episode.is_open


@pytest.mark.parametrize("kind", [Kind.NO_LAST_SESSION, Kind.VOICEMAIL_ONLY])
def test_an_ending_without_a_last_session_is_recorded_as_it_was(
    episode: Episode, clinician: User, last_session: Appointment, kind: str
) -> None:
    plan_ending(episode, clinician, last_session)
    # The client left a message instead of coming.
    ending = close(episode, clinician, kind, note="Voicemail on Sunday: 'I'm done, thanks.'")
    ending.refresh_from_db()
    assert (ending.kind, ending.last_session) == (kind, None)
    assert ending.note == "Voicemail on Sunday: 'I'm done, thanks.'"
    assert ending.planned_by == clinician
    episode.refresh_from_db()
    assert episode.close_reason == Episode.CloseReason.COMPLETED


def test_a_dropout_closes_as_dropped_out_without_a_progress_summary(
    episode: Episode, clinician: User
) -> None:
    ending = close(episode, clinician, Kind.DROPPED_OUT, note="No reply to three calls.", goals="")
    assert ending.kind == Kind.DROPPED_OUT
    episode.refresh_from_db()
    assert episode.close_reason == Episode.CloseReason.DROPPED_OUT


def test_a_dropout_needs_a_note(episode: Episode, clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        close(episode, clinician, Kind.DROPPED_OUT, goals="")
    assert list(refused.value.message_dict) == ["note"]
    episode.refresh_from_db()
    assert episode.is_open


def test_other_endings_need_the_goals_and_progress(episode: Episode, clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        close(episode, clinician, Kind.NO_LAST_SESSION, goals="  ")
    assert list(refused.value.message_dict) == ["goals_and_progress"]
    assert not EpisodeEnding.objects.exists()


def test_an_unknown_ending_or_a_close_before_the_opening_is_refused(
    episode: Episode, clinician: User
) -> None:
    with pytest.raises(ValidationError) as refused:
        close(episode, clinician, "vanished", closed_on=episode.opened_on - timedelta(days=1))
    assert set(refused.value.message_dict) == {"kind", "closed_on"}
    episode.refresh_from_db()
    assert episode.is_open


def test_a_closed_episode_cannot_be_closed_again(episode: Episode, clinician: User) -> None:
    close(episode, clinician, Kind.NO_LAST_SESSION)
    with pytest.raises(ValidationError, match="already closed"):
        close(episode, clinician, Kind.VOICEMAIL_ONLY)
    assert EpisodeEnding.objects.get().kind == Kind.NO_LAST_SESSION


def test_closing_closes_the_episodes_open_flags_with_a_history_note(
    episode: Episode, clinician: User
) -> None:
    def logged(marker: str) -> RuptureFlag:
        return rupture_log(
            episode=episode,
            clinician=clinician,
            kind=RuptureFlag.Kind.WITHDRAWAL,
            marker=marker,
            appointment=None,
            note="",
            now=NOW - timedelta(days=3),
        )

    still_open = logged(RuptureFlag.Marker.MINIMAL_RESPONSE)
    in_repair = flag_transition(
        flag=logged(RuptureFlag.Marker.DENIAL),
        to_status=RuptureFlag.Status.IN_REPAIR,
        note="Working on it.",
        actor=clinician,
        now=NOW - timedelta(days=2),
    )
    repaired = flag_transition(
        flag=logged(RuptureFlag.Marker.STORYTELLING),
        to_status=RuptureFlag.Status.REPAIRED,
        note="Talked it through.",
        actor=clinician,
        now=NOW - timedelta(days=2),
    )

    close(episode, clinician, Kind.VOICEMAIL_ONLY)

    closed_at = LAST + timedelta(hours=2)
    for flag in (still_open, in_repair):
        flag.refresh_from_db()
        assert (flag.status, flag.resolved_at) == (RuptureFlag.Status.CLOSED, closed_at)
        event = flag.events.order_by("pk").last()
        assert event is not None
        assert (event.action, event.to_status, event.by) == (
            FlagEvent.Action.STATUS,
            RuptureFlag.Status.CLOSED,
            clinician,
        )
        assert event.note == "Episode closed (ended by voicemail only)."
    repaired.refresh_from_db()
    assert (repaired.status, repaired.resolved_at) == (
        RuptureFlag.Status.REPAIRED,
        NOW - timedelta(days=2),
    )
    assert not RuptureFlag.objects.open().exists()


def test_a_termination_session_ending_closes_once_that_session_was_attended(
    episode: Episode, clinician: User, client_record: Client
) -> None:
    termination = book(
        clinician, client_record, LAST, status=Status.SCHEDULED, kind="termination", fee_waived=True
    )
    EpisodeEnding.objects.create(
        episode=episode,
        kind=Kind.TERMINATION_SESSION,
        last_session=termination,
        planned_by=clinician,
    )
    with pytest.raises(ValidationError, match="No last session was attended"):
        close(episode, clinician, Kind.TERMINATION_SESSION)
    attend(termination, clinician)
    ending = close(episode, clinician, Kind.TERMINATION_SESSION)
    assert (ending.kind, ending.last_session) == (Kind.TERMINATION_SESSION, termination)
    episode.refresh_from_db()
    assert episode.close_reason == Episode.CloseReason.COMPLETED
