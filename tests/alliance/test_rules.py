from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alliance import rules
from alliance.models import AlliancePolicy, Instrument, Response, RuptureFlag
from alliance.scoring import score
from practice.models import Client, Episode, User
from scheduling.models import Appointment, Status
from tests.factories import book

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
Rule = RuptureFlag.Rule


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def episode(client_record: Client) -> Episode:
    # NOW is fixed; the factory opens the episode relative to the real date.
    client_record.episodes.update(opened_on=days_ago(90).date())
    return client_record.episodes.get()


def instrument(code: str) -> Instrument:
    return Instrument.objects.with_scoring_rules().shipped().get(code=code)


def respond(
    episode: Episode,
    code: str,
    answers: dict[str, object],
    at: datetime,
    appointment: Appointment | None = None,
) -> Response:
    measure = instrument(code)
    result = score(measure, answers)
    return Response.objects.create(
        instrument=measure,
        instrument_version=measure.version,
        client=episode.client,
        episode=episode,
        appointment=appointment,
        answers=result.answers,
        total=result.total,
        subscales=result.subscales,
        band=result.band,
        safety_triggered=result.safety_triggered,
        completed_at=at,
        collected_via=Response.Via.LINK,
    )


def feedback(episode: Episode, total: int, at: datetime, **follow_up: object) -> Response:
    """Session feedback adding up to `total` of 40."""
    parts = [min(10, max(0, total - 10 * n)) for n in range(4)]
    keys = ["relationship", "goals_topics", "approach", "overall"]
    return respond(
        episode, "session-feedback", {**dict(zip(keys, parts, strict=True)), **follow_up}, at
    )


def phq9(episode: Episode, total: int, at: datetime, item9: int = 0) -> Response:
    """A PHQ-9 adding up to `total`, with item 9 (the safety item) as given."""
    rest = total - item9
    parts = [min(3, max(0, rest - 3 * n)) for n in range(8)]
    answers: dict[str, object] = {f"phq9_{n}": v for n, v in enumerate([*parts, item9], start=1)}
    return respond(episode, "phq-9", answers, at)


def session(
    clinician: User,
    episode: Episode,
    at: datetime,
    status: str = Status.ATTENDED,
    status_changed_at: datetime | None = None,
) -> Appointment:
    return book(
        clinician, episode.client, at, status=status, status_changed_at=status_changed_at or at
    )


def run(rule: rules.RuleFunction, episode: Episode) -> list[rules.Finding]:
    return rule(Episode.objects.get(pk=episode.pk), now=NOW)


# Low alliance


def test_low_alliance_fires_below_36_with_the_score(episode: Episode) -> None:
    response = feedback(episode, 35, days_ago(1))
    [finding] = run(rules.rule_low_alliance, episode)
    assert finding.rule == Rule.LOW_ALLIANCE
    assert finding.trigger_key == f"response:{response.pk}"
    assert finding.evidence["total"] == 35
    assert finding.evidence["threshold"] == 36
    assert finding.evidence["response_id"] == response.pk
    assert finding.evidence["summary"]


def test_low_alliance_is_quiet_at_36(episode: Episode) -> None:
    feedback(episode, 36, days_ago(1))
    assert run(rules.rule_low_alliance, episode) == []


def test_rules_ignore_responses_after_now(episode: Episode) -> None:
    feedback(episode, 20, NOW + timedelta(hours=1))
    assert run(rules.rule_low_alliance, episode) == []


# Alliance drop


def test_alliance_drop_fires_5_below_the_running_mean(episode: Episode) -> None:
    first = feedback(episode, 40, days_ago(14))
    feedback(episode, 38, days_ago(7))
    response = feedback(episode, 34, days_ago(1))
    [finding] = run(rules.rule_alliance_drop, episode)
    assert finding.trigger_key == f"response:{response.pk}"
    assert finding.evidence["running_mean"] == 39
    assert finding.evidence["drop"] == 5
    assert finding.evidence["previous"][0]["response_id"] == first.pk
    assert len(finding.evidence["previous"]) == 2


def test_alliance_drop_is_quiet_4_below_the_running_mean(episode: Episode) -> None:
    feedback(episode, 40, days_ago(14))
    feedback(episode, 38, days_ago(7))
    feedback(episode, 35, days_ago(1))
    assert run(rules.rule_alliance_drop, episode) == []


def test_alliance_drop_needs_an_earlier_session(episode: Episode) -> None:
    feedback(episode, 10, days_ago(1))
    assert run(rules.rule_alliance_drop, episode) == []


# Felt off


def test_felt_off_fires_when_the_client_said_yes(episode: Episode) -> None:
    response = feedback(episode, 39, days_ago(1), felt_off="yes", felt_off_text="Rushed.")
    [finding] = run(rules.rule_felt_off, episode)
    assert finding.trigger_key == f"response:{response.pk}"
    assert finding.evidence["comment_given"] is True
    # The client's words stay in the response.
    assert "Rushed" not in str(finding.evidence)


def test_felt_off_is_quiet_when_the_client_said_no(episode: Episode) -> None:
    feedback(episode, 39, days_ago(1), felt_off="no")
    assert run(rules.rule_felt_off, episode) == []


# Safety


def test_safety_fires_on_phq9_item_9_above_zero(episode: Episode) -> None:
    response = phq9(episode, 8, days_ago(1), item9=1)
    [finding] = run(rules.rule_safety, episode)
    assert finding.trigger_key == f"response:{response.pk}"
    assert finding.severity == 100
    assert finding.evidence["safety_items"] == [
        {"item": "phq9_9", "position": 9, "answer": 1, "threshold": 1}
    ]


def test_safety_is_quiet_when_item_9_is_zero(episode: Episode) -> None:
    phq9(episode, 20, days_ago(1), item9=0)
    assert run(rules.rule_safety, episode) == []


# Two missed


def test_two_missed_fires_on_the_second_of_two_misses(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(21))
    first = session(clinician, episode, days_ago(14), Status.NO_SHOW)
    second = session(clinician, episode, days_ago(7), Status.LATE_CANCELLED)
    [finding] = run(rules.rule_two_missed, episode)
    assert finding.trigger_key == f"appointment:{second.pk}"
    assert [s["appointment_id"] for s in finding.evidence["sessions"]] == [first.pk, second.pk]


def test_two_missed_raises_one_flag_per_run_of_misses(clinician: User, episode: Episode) -> None:
    for days in (21, 14, 7):
        session(clinician, episode, days_ago(days), Status.NO_SHOW)
    assert len(run(rules.rule_two_missed, episode)) == 1


def test_two_missed_is_quiet_when_a_session_was_attended_between(
    clinician: User, episode: Episode
) -> None:
    session(clinician, episode, days_ago(21), Status.NO_SHOW)
    session(clinician, episode, days_ago(14))
    session(clinician, episode, days_ago(7), Status.NO_SHOW)
    # A timely client cancellation is not a session that fell due.
    session(clinician, episode, days_ago(3), Status.CANCELLED_BY_CLIENT)
    assert run(rules.rule_two_missed, episode) == []


# Missed after strain


def test_missed_after_strain_fires_within_two_sessions_of_a_low_score(
    clinician: User, episode: Episode
) -> None:
    session(clinician, episode, days_ago(21) - timedelta(hours=1))
    strain = feedback(episode, 30, days_ago(21))
    session(clinician, episode, days_ago(14))
    missed = session(clinician, episode, days_ago(7), Status.NO_SHOW)
    [finding] = run(rules.rule_missed_after_strain, episode)
    assert finding.trigger_key == f"appointment:{missed.pk}"
    assert finding.evidence["strain"]["response_id"] == strain.pk
    assert finding.evidence["strain"]["reason"] == "low"
    assert finding.evidence["missed"]["appointment_id"] == missed.pk


def test_missed_after_strain_is_quiet_on_the_third_session_after(
    clinician: User, episode: Episode
) -> None:
    feedback(episode, 30, days_ago(28))
    session(clinician, episode, days_ago(21))
    session(clinician, episode, days_ago(14))
    session(clinician, episode, days_ago(7), Status.NO_SHOW)
    assert run(rules.rule_missed_after_strain, episode) == []


def test_missed_after_strain_is_quiet_without_strain(clinician: User, episode: Episode) -> None:
    feedback(episode, 38, days_ago(21))
    session(clinician, episode, days_ago(14), Status.NO_SHOW)
    assert run(rules.rule_missed_after_strain, episode) == []


# Dropout


def test_dropout_fires_21_days_after_the_last_attended_session(
    clinician: User, episode: Episode
) -> None:
    last = session(clinician, episode, days_ago(21))
    session(clinician, episode, days_ago(14), Status.CANCELLED_BY_CLIENT)
    [finding] = run(rules.rule_dropout, episode)
    assert finding.trigger_key == f"episode:{episode.pk}:2026-02-09"
    assert finding.evidence["last_attended"]["appointment_id"] == last.pk
    assert finding.evidence["days_without_session"] == 21


def test_dropout_is_quiet_at_20_days(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(20))
    assert run(rules.rule_dropout, episode) == []


def test_dropout_counts_from_the_opening_when_nothing_was_attended(episode: Episode) -> None:
    [finding] = run(rules.rule_dropout, episode)
    assert finding.trigger_key == f"episode:{episode.pk}:{days_ago(90).date().isoformat()}"
    assert finding.evidence["last_attended"] is None


def test_dropout_is_quiet_when_a_session_is_booked(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(30))
    session(clinician, episode, NOW + timedelta(days=2), Status.SCHEDULED)
    assert run(rules.rule_dropout, episode) == []


def test_dropout_is_quiet_for_a_closed_episode(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(30))
    Episode.objects.filter(pk=episode.pk).update(
        stage=Episode.Stage.CLOSED,
        closed_on=days_ago(2).date(),
        close_reason=Episode.CloseReason.COMPLETED,
    )
    assert run(rules.rule_dropout, episode) == []


# Reliable deterioration


def test_reliable_deterioration_fires_6_up_on_the_phq9(episode: Episode) -> None:
    baseline = phq9(episode, 5, days_ago(30))
    phq9(episode, 7, days_ago(20))
    worse = phq9(episode, 11, days_ago(10))
    phq9(episode, 12, days_ago(1))  # still deteriorated: the same event
    [finding] = run(rules.rule_reliable_deterioration, episode)
    assert finding.trigger_key == f"response:{worse.pk}"
    assert finding.evidence["baseline"]["response_id"] == baseline.pk
    assert finding.evidence["rise"] == 6
    assert finding.evidence["reliable_change"] == 6


def test_reliable_deterioration_is_quiet_5_up(episode: Episode) -> None:
    phq9(episode, 5, days_ago(30))
    phq9(episode, 10, days_ago(1))
    assert run(rules.rule_reliable_deterioration, episode) == []


# Not on track


def test_not_on_track_fires_after_8_sessions_still_in_the_clinical_range(
    clinician: User, episode: Episode
) -> None:
    for week in range(8):
        session(clinician, episode, days_ago(60 - 7 * week))
    baseline = phq9(episode, 15, days_ago(61))
    latest = phq9(episode, 10, days_ago(1))
    [finding] = run(rules.rule_not_on_track, episode)
    assert finding.trigger_key == f"episode:{episode.pk}:phq-9:baseline:{baseline.pk}"
    assert finding.evidence["response_id"] == latest.pk
    assert finding.evidence["baseline"]["response_id"] == baseline.pk
    assert finding.evidence["improvement"] == 5
    assert finding.evidence["sessions_attended"] == 8
    assert finding.evidence["clinical_cutoff"] == 10


def test_not_on_track_raises_one_flag_however_many_stuck_scores_follow(
    clinician: User, episode: Episode
) -> None:
    for week in range(10):
        session(clinician, episode, days_ago(70 - 7 * week))
    phq9(episode, 15, days_ago(71))
    phq9(episode, 14, days_ago(3))
    [first] = run(rules.rule_not_on_track, episode)
    phq9(episode, 14, days_ago(2))
    phq9(episode, 15, days_ago(1))
    assert [f.trigger_key for f in run(rules.rule_not_on_track, episode)] == [first.trigger_key]


def test_not_on_track_is_quiet_after_7_sessions(clinician: User, episode: Episode) -> None:
    for week in range(7):
        session(clinician, episode, days_ago(60 - 7 * week))
    phq9(episode, 15, days_ago(61))
    phq9(episode, 10, days_ago(1))
    assert run(rules.rule_not_on_track, episode) == []


def test_not_on_track_is_quiet_below_the_cutoff(clinician: User, episode: Episode) -> None:
    for week in range(8):
        session(clinician, episode, days_ago(60 - 7 * week))
    phq9(episode, 14, days_ago(61))
    phq9(episode, 9, days_ago(1))
    assert run(rules.rule_not_on_track, episode) == []


def test_not_on_track_is_quiet_after_reliable_improvement(
    clinician: User, episode: Episode
) -> None:
    for week in range(8):
        session(clinician, episode, days_ago(60 - 7 * week))
    phq9(episode, 18, days_ago(61))
    phq9(episode, 12, days_ago(1))
    assert run(rules.rule_not_on_track, episode) == []


# Clinician-caused


def test_clinician_caused_fires_on_a_cancel_under_24_hours_before(
    clinician: User, episode: Episode
) -> None:
    start = days_ago(3)
    appointment = session(
        clinician,
        episode,
        start,
        Status.CANCELLED_BY_CLINICIAN,
        status_changed_at=start - timedelta(hours=23),
    )
    [finding] = run(rules.rule_clinician_caused, episode)
    assert finding.trigger_key == f"appointment:{appointment.pk}"
    assert finding.evidence["notice_hours"] == 23
    assert finding.evidence["appointment_id"] == appointment.pk


def test_clinician_caused_fires_when_the_clinician_missed_the_session(
    clinician: User, episode: Episode
) -> None:
    start = days_ago(3)
    session(
        clinician,
        episode,
        start,
        Status.CANCELLED_BY_CLINICIAN,
        status_changed_at=start + timedelta(minutes=20),
    )
    [finding] = run(rules.rule_clinician_caused, episode)
    assert finding.evidence["notice_hours"] < 0
    assert "missed" in finding.evidence["summary"]


def test_clinician_caused_is_quiet_with_24_hours_notice(clinician: User, episode: Episode) -> None:
    start = days_ago(3)
    session(
        clinician,
        episode,
        start,
        Status.CANCELLED_BY_CLINICIAN,
        status_changed_at=start - timedelta(hours=24),
    )
    # A late cancel by the client is the client's, not the clinician's.
    session(clinician, episode, days_ago(10), Status.LATE_CANCELLED, status_changed_at=days_ago(10))
    assert run(rules.rule_clinician_caused, episode) == []


# The practice's policy sets the thresholds


def run_with(rule: rules.RuleFunction, episode: Episode, **thresholds: int) -> list[rules.Finding]:
    policy = AlliancePolicy(practice=episode.client.practice, **thresholds)
    return rule(Episode.objects.get(pk=episode.pk), now=NOW, policy=policy)


def test_the_low_alliance_threshold_is_the_practices(episode: Episode) -> None:
    feedback(episode, 33, days_ago(2))
    assert len(run(rules.rule_low_alliance, episode)) == 1
    assert run_with(rules.rule_low_alliance, episode, low_alliance_below=30) == []
    low = feedback(episode, 29, days_ago(1))
    [finding] = run_with(rules.rule_low_alliance, episode, low_alliance_below=30)
    assert finding.trigger_key == f"response:{low.pk}"
    assert finding.evidence["threshold"] == 30
    assert "threshold of 30" in finding.evidence["summary"]


def test_the_alliance_drop_is_the_practices(episode: Episode) -> None:
    feedback(episode, 40, days_ago(14))
    feedback(episode, 38, days_ago(7))
    feedback(episode, 35, days_ago(1))  # 4 below the mean of 39
    assert run(rules.rule_alliance_drop, episode) == []
    [finding] = run_with(rules.rule_alliance_drop, episode, alliance_drop_points=4)
    assert finding.evidence["drop_threshold"] == 4
    assert run_with(rules.rule_alliance_drop, episode, alliance_drop_points=6) == []


def test_the_strain_window_is_the_practices(clinician: User, episode: Episode) -> None:
    feedback(episode, 30, days_ago(28))
    session(clinician, episode, days_ago(21))
    session(clinician, episode, days_ago(14))
    missed = session(clinician, episode, days_ago(7), Status.NO_SHOW)
    assert run(rules.rule_missed_after_strain, episode) == []
    [finding] = run_with(rules.rule_missed_after_strain, episode, strain_window_sessions=3)
    assert finding.trigger_key == f"appointment:{missed.pk}"
    # A practice that sets a stricter low-alliance line sees no strain at 30.
    assert (
        run_with(
            rules.rule_missed_after_strain,
            episode,
            strain_window_sessions=3,
            low_alliance_below=30,
        )
        == []
    )


def test_the_dropout_wait_is_the_practices(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(25))
    assert len(run(rules.rule_dropout, episode)) == 1
    assert run_with(rules.rule_dropout, episode, dropout_after_days=30) == []
    [finding] = run_with(rules.rule_dropout, episode, dropout_after_days=25)
    assert finding.evidence["threshold_days"] == 25


def test_the_sessions_before_judging_not_on_track_are_the_practices(
    clinician: User, episode: Episode
) -> None:
    for week in range(6):
        session(clinician, episode, days_ago(45 - 7 * week))
    phq9(episode, 15, days_ago(46))
    latest = phq9(episode, 12, days_ago(1))
    assert run(rules.rule_not_on_track, episode) == []
    [finding] = run_with(rules.rule_not_on_track, episode, not_on_track_after_sessions=6)
    assert finding.evidence["response_id"] == latest.pk


def test_the_clinicians_short_notice_is_the_practices(clinician: User, episode: Episode) -> None:
    start = days_ago(3)
    session(
        clinician,
        episode,
        start,
        Status.CANCELLED_BY_CLINICIAN,
        status_changed_at=start - timedelta(hours=30),
    )
    assert run(rules.rule_clinician_caused, episode) == []
    [finding] = run_with(rules.rule_clinician_caused, episode, clinician_short_notice_hours=48)
    assert finding.evidence["threshold_hours"] == 48


def test_findings_for_hands_the_policy_to_every_rule(episode: Episode) -> None:
    feedback(episode, 33, days_ago(1))
    episode_now = Episode.objects.get(pk=episode.pk)
    assert {f.rule for f in rules.findings_for(episode_now, now=NOW)} >= {Rule.LOW_ALLIANCE}
    policy = AlliancePolicy(low_alliance_below=30, dropout_after_days=120)
    assert rules.findings_for(Episode.objects.get(pk=episode.pk), now=NOW, policy=policy) == []
