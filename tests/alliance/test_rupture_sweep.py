from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance.models import AlliancePolicy, RuptureFlag
from alliance.sweeps import rupture_sweep
from practice.models import Client, Episode, Practice, User
from scheduling.models import Status
from tests.alliance.test_rules import NOW, days_ago, feedback, phq9, session
from tests.factories import ClientFactory, EpisodeFactory

pytestmark = pytest.mark.django_db

Rule = RuptureFlag.Rule


@pytest.fixture
def episode(client_record: Client) -> Episode:
    client_record.episodes.update(opened_on=days_ago(90).date())
    return client_record.episodes.get()


def test_a_second_sweep_raises_nothing_new(clinician: User, episode: Episode) -> None:
    session(clinician, episode, days_ago(8))
    feedback(episode, 40, days_ago(8))
    feedback(episode, 30, days_ago(1), felt_off="yes")
    phq9(episode, 9, days_ago(1), item9=2)

    first = rupture_sweep(now=NOW)
    flags = set(RuptureFlag.objects.values_list("rule", "trigger_key"))
    assert set(RuptureFlag.objects.values_list("pk", flat=True)) == set(first)
    assert {rule for rule, _ in flags} == {
        Rule.LOW_ALLIANCE,
        Rule.ALLIANCE_DROP,
        Rule.FELT_OFF,
        Rule.SAFETY,
    }

    assert rupture_sweep(now=NOW) == []
    assert rupture_sweep(now=NOW + timedelta(hours=1)) == []
    assert set(RuptureFlag.objects.values_list("rule", "trigger_key")) == flags


def test_flags_carry_the_episode_client_clinician_and_practice(
    clinician: User, episode: Episode
) -> None:
    session(clinician, episode, NOW + timedelta(days=6), Status.SCHEDULED)
    feedback(episode, 20, days_ago(1))
    [flag_id] = rupture_sweep(now=NOW)
    flag = RuptureFlag.objects.get(pk=flag_id)
    assert (flag.episode, flag.client, flag.clinician) == (episode, episode.client, clinician)
    assert flag.practice == episode.client.practice
    assert flag.raised_at == NOW
    assert flag.evidence["total"] == 20
    assert list(RuptureFlag.objects.open().for_clinician(clinician).for_episode(episode)) == [flag]


def test_safety_sorts_first_by_severity(clinician: User, episode: Episode) -> None:
    session(
        clinician,
        episode,
        days_ago(2),
        Status.CANCELLED_BY_CLINICIAN,
        status_changed_at=days_ago(2) + timedelta(hours=1),
    )
    session(clinician, episode, NOW + timedelta(days=6), Status.SCHEDULED)
    feedback(episode, 20, days_ago(3))
    rupture_sweep(now=NOW)
    phq9(episode, 5, days_ago(1), item9=1)
    rupture_sweep(now=NOW + timedelta(hours=1))

    ordered = list(RuptureFlag.objects.by_severity().values_list("rule", flat=True))
    assert ordered[0] == Rule.SAFETY
    assert set(ordered) == {Rule.SAFETY, Rule.LOW_ALLIANCE, Rule.CLINICIAN_CAUSED}


def test_it_skips_episodes_closed_over_30_days_ago(clinician: User, practice) -> None:
    old = EpisodeFactory.create(
        client=ClientFactory.create(practice=practice),
        clinician=clinician,
        opened_on=days_ago(200).date(),
        stage=Episode.Stage.CLOSED,
        closed_on=days_ago(31).date(),
        close_reason=Episode.CloseReason.COMPLETED,
    )
    recent = EpisodeFactory.create(
        client=ClientFactory.create(practice=practice),
        clinician=clinician,
        opened_on=days_ago(200).date(),
        stage=Episode.Stage.CLOSED,
        closed_on=days_ago(29).date(),
        close_reason=Episode.CloseReason.COMPLETED,
    )
    feedback(old, 20, days_ago(1))
    late = feedback(recent, 20, days_ago(1))
    rupture_sweep(now=NOW)
    assert list(RuptureFlag.objects.values_list("trigger_key", flat=True)) == [
        f"response:{late.pk}"
    ]


def test_the_query_count_does_not_grow_with_episodes(clinician: User, practice) -> None:
    def add_episode(hour: int) -> None:
        episode = EpisodeFactory.create(
            client=ClientFactory.create(practice=practice), clinician=clinician
        )
        feedback(episode, 20, days_ago(2))
        phq9(episode, 9, days_ago(1), item9=1)
        session(clinician, episode, days_ago(3) + timedelta(hours=hour))

    add_episode(0)
    with CaptureQueriesContext(connection) as one:
        rupture_sweep(now=NOW)
    RuptureFlag.objects.all().delete()
    for hour in range(1, 5):
        add_episode(hour)
    with CaptureQueriesContext(connection) as five:
        rupture_sweep(now=NOW)
    assert len(five) == len(one)


def test_the_sweep_uses_each_practices_own_thresholds(
    clinician: User, episode: Episode, outsider: User
) -> None:
    AlliancePolicy.objects.create(practice=episode.client.practice, low_alliance_below=30)
    session(clinician, episode, NOW + timedelta(days=6), Status.SCHEDULED)
    feedback(episode, 33, days_ago(1))
    # A practice that never changed its policy keeps the default line of 36.
    elsewhere = EpisodeFactory.create(
        client=ClientFactory.create(practice=Practice.objects.get(slug="elsewhere")),
        clinician=outsider,
        opened_on=days_ago(90).date(),
    )
    session(outsider, elsewhere, NOW + timedelta(days=6), Status.SCHEDULED)
    theirs = feedback(elsewhere, 33, days_ago(1))

    raised = RuptureFlag.objects.filter(pk__in=rupture_sweep(now=NOW))
    assert list(raised.values_list("rule", "trigger_key")) == [
        (Rule.LOW_ALLIANCE, f"response:{theirs.pk}")
    ]
