"""The demo's measures and ruptures that `seed_demo` adds through alliance.demo.seed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from alliance.demo import DROPOUT_EMAIL, WITHDRAWAL_EMAIL
from alliance.models import (
    EpisodeEnding,
    FlagEvent,
    OutreachAttempt,
    RepairAction,
    Response,
    RuptureFlag,
    SafetyAlert,
)
from practice.models import Episode

Rule = RuptureFlag.Rule
Flag = RuptureFlag.Status

# A Wednesday afternoon in Berlin, and a Sunday night, when the only session in the next day
# is the overbooked clinician's one Sunday session.
WEDNESDAY = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
SUNDAY_NIGHT = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)


@pytest.fixture(params=[WEDNESDAY, SUNDAY_NIGHT], ids=["wednesday", "sunday-night"])
def now(request: pytest.FixtureRequest, db: None) -> Iterator[datetime]:
    """The demo seeded and swept once at this moment, as `make run` does."""
    moment: datetime = request.param
    with time_machine.travel(moment, tick=False):
        call_command("seed_demo", stdout=StringIO())
        call_command("sweep", stdout=StringIO())
        yield moment


def flags() -> set[tuple[str, str]]:
    return set(RuptureFlag.objects.values_list("rule", "trigger_key"))


def test_the_demo_trips_every_rupture_rule_and_a_second_sweep_adds_nothing(
    now: datetime,
) -> None:
    assert set(RuptureFlag.objects.values_list("rule", flat=True)) == set(Rule.values)
    safety = RuptureFlag.objects.safety().get()
    alerted = SafetyAlert.objects.filter(flag=safety)
    assert set(alerted.values_list("role", flat=True)) == {"clinician", "supervisor"}
    assert set(alerted.values_list("state", flat=True)) == {SafetyAlert.State.SENT}
    assert any("Safety flag" in message.subject for message in mail.outbox)

    before = (flags(), SafetyAlert.objects.count(), FlagEvent.objects.count())
    call_command("sweep", at=(now + timedelta(minutes=1)).isoformat(), stdout=StringIO())
    assert (flags(), SafetyAlert.objects.count(), FlagEvent.objects.count()) == before


@pytest.mark.parametrize("now", [pytest.param(WEDNESDAY, id="wednesday")], indirect=True)
def test_the_demo_cases_are_on_the_demo_clinicians_caseload(now: datetime) -> None:
    withdrawal = RuptureFlag.objects.filter(client__email=WITHDRAWAL_EMAIL)
    assert {
        Rule.LOW_ALLIANCE,
        Rule.ALLIANCE_DROP,
        Rule.FELT_OFF,
        Rule.LOGGED,
        Rule.MISSED_AFTER_STRAIN,
        Rule.TWO_MISSED,
    } <= set(withdrawal.values_list("rule", flat=True))
    dropout = RuptureFlag.objects.filter(client__email=DROPOUT_EMAIL)
    assert set(dropout.values_list("rule", flat=True)) == {Rule.CLINICIAN_CAUSED, Rule.DROPOUT}
    cases = RuptureFlag.objects.filter(client__email__in=[WITHDRAWAL_EMAIL, DROPOUT_EMAIL])
    assert set(cases.values_list("clinician__email", flat=True)) == {"clinician@demo.practice"}


@pytest.mark.parametrize("now", [pytest.param(WEDNESDAY, id="wednesday")], indirect=True)
def test_the_demo_shows_repairs_outreach_and_a_closing_review(now: datetime) -> None:
    repairs = RepairAction.objects.select_related("flag")
    assert {(r.flag.rule, r.flag.status) for r in repairs} == {
        (Rule.ALLIANCE_DROP, Flag.REPAIRED),
        (Rule.FELT_OFF, Flag.IN_REPAIR),
    }
    assert all(r.appointment is not None and r.performed_at >= r.flag.raised_at for r in repairs)
    assert RuptureFlag.objects.filter(rule=Rule.LOW_ALLIANCE, status=Flag.CLOSED).exists()

    [outreach] = OutreachAttempt.objects.select_related("flag")
    assert outreach.flag is not None and outreach.flag.rule == Rule.DROPOUT
    assert outreach.attempted_at >= outreach.flag.raised_at

    [ending] = EpisodeEnding.objects.select_related("episode__client")
    assert ending.episode.client.email == WITHDRAWAL_EMAIL
    assert ending.episode.stage == Episode.Stage.CLOSED and ending.closed_at is not None
    assert ending.what_helps_on_return


@pytest.mark.parametrize("now", [pytest.param(WEDNESDAY, id="wednesday")], indirect=True)
def test_the_demo_histories_look_like_practice(now: datetime) -> None:
    responses = Response.objects.select_related("appointment", "instrument")
    assert responses.count() > 200
    assert all(r.completed_at <= now for r in responses)
    feedback = [r.total for r in responses if r.instrument.code == "session-feedback"]
    assert sum(36 <= total <= 40 for total in feedback) > 0.9 * len(feedback)
    via = [r.collected_via for r in responses]
    assert via.count(Response.Via.LINK) > len(via) / 2
    assert Response.Via.IN_SESSION in via
    assert {"phq-9", "gad-7", "session-feedback"} == {r.instrument.code for r in responses}
    # Feedback comes after the session it rates; an outcome measure before it, or at its start.
    for response in responses:
        session = response.appointment
        assert session is not None
        if response.instrument.code == "session-feedback":
            assert response.completed_at >= session.ends_at - timedelta(minutes=5)
        else:
            assert response.completed_at <= session.starts_at + timedelta(minutes=5)

    counts = (Response.objects.count(), RuptureFlag.objects.count(), Episode.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert (Response.objects.count(), RuptureFlag.objects.count(), Episode.objects.count()) == (
        counts
    )
