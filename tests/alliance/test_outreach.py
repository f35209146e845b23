"""Outreach after a client leaves: bounded, spaced, and ending in a fee-waived last session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alliance.models import AlliancePolicy, EpisodeEnding, FlagEvent, OutreachAttempt, RuptureFlag
from alliance.services import (
    episode_close_with_review,
    outreach_allowance,
    outreach_log,
    termination_session_offer,
)
from alliance.sweeps import rupture_sweep
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, Kind, Status
from tests.alliance.helpers import NOW
from tests.factories import book

pytestmark = pytest.mark.django_db

Channel = OutreachAttempt.Channel
Outcome = OutreachAttempt.Outcome
WEEK = timedelta(days=7)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def episode(client_record: Client, clinician: User) -> Episode:
    """A client who stormed out four weeks ago and has not been back."""
    book(
        clinician,
        client_record,
        NOW - timedelta(days=28),
        status=Status.ATTENDED,
        status_changed_at=NOW - timedelta(days=28),
    )
    return client_record.episodes.get()


def reach_out(
    episode: Episode,
    actor: User,
    at: datetime,
    outcome: str = Outcome.VOICEMAIL,
    now: datetime | None = None,
) -> OutreachAttempt:
    return outreach_log(
        episode=episode,
        actor=actor,
        channel=Channel.PHONE,
        outcome=outcome,
        note="Left a short, warm message.",
        attempted_at=at,
        now=now or at,
    )


def offer_termination(episode: Episode, actor: User, starts_at: datetime) -> EpisodeEnding:
    return termination_session_offer(
        episode=episode,
        actor=actor,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=50),
        location="in_person",
        video_url="",
        note="Offered one last session, free of charge, to end well.",
        now=NOW,
    )


# The limit


def test_three_spaced_attempts_are_logged(episode: Episode, clinician: User) -> None:
    for week in range(3):
        attempt = reach_out(episode, clinician, NOW + week * WEEK)
        assert (attempt.episode, attempt.by) == (episode, clinician)
    assert list(
        OutreachAttempt.objects.for_episode(episode).values_list("attempted_at", flat=True)
    ) == [
        NOW,
        NOW + WEEK,
        NOW + 2 * WEEK,
    ]
    assert AuditEvent.objects.filter(action="outreach.log").count() == 3


def test_it_refuses_a_fourth_attempt_and_explains_the_limit(
    episode: Episode, clinician: User
) -> None:
    for week in range(3):
        reach_out(episode, clinician, NOW + week * WEEK)
    with pytest.raises(ValidationError) as refused:
        reach_out(episode, clinician, NOW + 6 * WEEK)
    [message] = refused.value.message_dict["__all__"]
    assert "allows 3 outreach attempts per episode" in message
    assert "3 have been made" in message
    assert "termination session" in message
    assert OutreachAttempt.objects.count() == 3


def test_the_limit_is_the_practices(episode: Episode, clinician: User, practice: Practice) -> None:
    Practice.objects.filter(pk=practice.pk).update(outreach_limit=1)
    reach_out(episode, clinician, NOW)
    with pytest.raises(
        ValidationError, match="allows 1 outreach attempt per episode, and 1 has been made"
    ):
        reach_out(episode, clinician, NOW + 3 * WEEK)
    assert OutreachAttempt.objects.count() == 1


# The spacing


def test_it_refuses_an_attempt_within_a_week_and_names_the_next_allowed_date(
    episode: Episode, clinician: User
) -> None:
    reach_out(episode, clinician, NOW)
    with pytest.raises(ValidationError) as refused:
        reach_out(episode, clinician, NOW + timedelta(days=6, hours=23))
    [message] = refused.value.message_dict["attempted_at"]
    assert "at least 7 days apart" in message
    # In the practice's time: NOW is 12:00 in Berlin.
    assert "23 Nov 2026 12:00" in message
    assert OutreachAttempt.objects.count() == 1
    # Exactly a week later is allowed.
    reach_out(episode, clinician, NOW + WEEK)
    assert OutreachAttempt.objects.count() == 2


def test_the_spacing_is_the_practices(
    episode: Episode, clinician: User, practice: Practice
) -> None:
    AlliancePolicy.objects.create(practice=practice, outreach_spacing_days=14)
    reach_out(episode, clinician, NOW)
    with pytest.raises(ValidationError, match="at least 14 days apart"):
        reach_out(episode, clinician, NOW + 13 * timedelta(days=1))
    reach_out(episode, clinician, NOW + 14 * timedelta(days=1))
    assert OutreachAttempt.objects.count() == 2


def test_the_allowance_says_what_was_made_and_when_the_next_may_be(
    episode: Episode, clinician: User
) -> None:
    assert outreach_allowance(episode, now=NOW) == {
        "made": 0,
        "limit": 3,
        "spacing_days": 7,
        "remaining": 3,
        "next_at": None,
        "may_try_now": True,
        "exhausted": False,
    }
    reach_out(episode, clinician, NOW)
    allowance = outreach_allowance(episode, now=NOW + timedelta(days=1))
    assert (allowance["made"], allowance["remaining"]) == (1, 2)
    assert allowance["next_at"] == NOW + WEEK
    assert allowance["may_try_now"] is False
    assert outreach_allowance(episode, now=NOW + WEEK)["may_try_now"] is True
    for week in (1, 2):
        reach_out(episode, clinician, NOW + week * WEEK)
    allowance = outreach_allowance(episode, now=NOW + 10 * WEEK)
    assert (allowance["remaining"], allowance["exhausted"], allowance["may_try_now"]) == (
        0,
        True,
        False,
    )


# Other refusals


def test_an_attempt_needs_a_known_channel_and_outcome_and_a_time_not_ahead(
    episode: Episode, clinician: User
) -> None:
    with pytest.raises(ValidationError) as refused:
        outreach_log(
            episode=episode,
            actor=clinician,
            channel="carrier_pigeon",
            outcome="unclear",
            note="",
            attempted_at=NOW + timedelta(hours=1),
            now=NOW,
        )
    assert set(refused.value.message_dict) == {"channel", "outcome", "attempted_at"}
    assert not OutreachAttempt.objects.exists()


def test_no_outreach_on_a_closed_episode(episode: Episode, clinician: User) -> None:
    episode.close(reason=Episode.CloseReason.COMPLETED, on=NOW.date())
    with pytest.raises(ValidationError, match="closed; outreach is over"):
        reach_out(episode, clinician, NOW)
    assert not OutreachAttempt.objects.exists()


def test_an_attempt_is_noted_on_the_open_dropout_flag(episode: Episode, clinician: User) -> None:
    [flag_id] = rupture_sweep(now=NOW)
    flag = RuptureFlag.objects.get(pk=flag_id)
    assert flag.rule == RuptureFlag.Rule.DROPOUT
    attempt = reach_out(episode, clinician, NOW, outcome=Outcome.NO_ANSWER)
    assert attempt.flag == flag
    note = flag.events.get(action=FlagEvent.Action.NOTE)
    assert (note.by, note.note) == (clinician, "Outreach by phone call: no answer.")


# Termination session


def test_a_termination_session_is_offered_only_after_outreach(
    episode: Episode, clinician: User
) -> None:
    with pytest.raises(ValidationError, match="after outreach"):
        offer_termination(episode, clinician, NOW + WEEK)
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.MIDDLE
    assert not Appointment.objects.filter(kind=Kind.TERMINATION).exists()
    assert not EpisodeEnding.objects.exists()


def test_after_outreach_it_books_a_fee_waived_termination_session_and_begins_the_ending(
    episode: Episode, clinician: User, client_record: Client
) -> None:
    reach_out(episode, clinician, NOW - timedelta(days=2), outcome=Outcome.SPOKE, now=NOW)
    starts_at = NOW + WEEK
    ending = offer_termination(episode, clinician, starts_at)
    session = Appointment.objects.get(kind=Kind.TERMINATION)
    assert (session.fee_waived, session.status, session.starts_at) == (
        True,
        Status.SCHEDULED,
        starts_at,
    )
    assert (session.episode, session.client, session.clinician) == (
        episode,
        client_record,
        clinician,
    )
    assert ending.kind == EpisodeEnding.Kind.TERMINATION_SESSION
    assert (ending.last_session, ending.planned_by) == (session, clinician)
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.ENDING
    assert episode.is_open


def test_a_termination_session_in_the_past_is_refused(episode: Episode, clinician: User) -> None:
    reach_out(episode, clinician, NOW - timedelta(days=2), now=NOW)
    with pytest.raises(ValidationError) as refused:
        offer_termination(episode, clinician, NOW - timedelta(hours=1))
    assert list(refused.value.message_dict) == ["starts_at"]
    assert not Appointment.objects.filter(kind=Kind.TERMINATION).exists()


def test_a_termination_session_that_clashes_changes_nothing(
    episode: Episode, clinician: User, client_record: Client
) -> None:
    reach_out(episode, clinician, NOW - timedelta(days=2), now=NOW)
    booked = book(clinician, client_record, NOW + WEEK, status=Status.SCHEDULED)
    with pytest.raises(ValidationError):
        offer_termination(episode, clinician, NOW + WEEK + timedelta(minutes=10))
    assert list(Appointment.objects.filter(starts_at__gt=NOW)) == [booked]
    episode.refresh_from_db()
    assert episode.stage == Episode.Stage.MIDDLE
    assert not EpisodeEnding.objects.exists()


# Closing after outreach


def test_closing_as_dropped_out_needs_a_note(episode: Episode, clinician: User) -> None:
    for week in range(3):
        reach_out(episode, clinician, NOW - (3 - week) * WEEK, now=NOW)
    close = {
        "episode": episode,
        "actor": clinician,
        "kind": EpisodeEnding.Kind.DROPPED_OUT,
        "goals_and_progress": "",
        "what_helps_on_return": "",
        "closed_on": NOW.date(),
        "now": NOW,
    }
    with pytest.raises(ValidationError) as refused:
        episode_close_with_review(note="  ", **close)  # type: ignore[arg-type]
    assert refused.value.message_dict == {"note": ["Closing as dropped out needs a note."]}
    episode.refresh_from_db()
    assert episode.is_open

    ending = episode_close_with_review(
        note="Three calls, no reply; letter sent with the door left open.",
        **close,  # type: ignore[arg-type]
    )
    episode.refresh_from_db()
    assert (episode.close_reason, episode.closed_on) == (
        Episode.CloseReason.DROPPED_OUT,
        NOW.date(),
    )
    assert ending.kind == EpisodeEnding.Kind.DROPPED_OUT
    assert ending.note.startswith("Three calls")
