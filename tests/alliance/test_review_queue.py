"""The supervisor's review queue: what it holds, its order, its filters, who may open it,
and that its query count does not grow with the number of supervisees and flags."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alliance.models import RuptureFlag
from alliance.supervision import QueueKind, review_queue
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import WorkloadAlert
from tests.alliance.supervision_helpers import (
    end_pairing,
    make_alert,
    make_flag,
    supervisee_with_client,
)
from tests.factories import ClientFactory, EpisodeFactory, PairingFactory

pytestmark = pytest.mark.django_db

Rule = RuptureFlag.Rule


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


def _queue(supervisor: User, practice: Practice, **filters: object) -> list[str]:
    entries = review_queue(
        supervisor=supervisor,
        practice=practice,
        now=timezone.now(),
        **filters,  # type: ignore[arg-type]
    )
    return [
        f"flag:{e.flag.rule}" if e.flag else f"alert:{e.alert.kind}"  # type: ignore[union-attr]
        for e in entries
    ]


# --- Order -------------------------------------------------------------------------------


def test_safety_comes_first_then_severity_then_the_oldest(
    supervisor: User, clinician: User, practice: Practice, episode: Episode
) -> None:
    now = timezone.now()
    make_flag(episode, Rule.LOW_ALLIANCE, raised_at=now - timedelta(days=1), summary="newer low")
    make_flag(episode, Rule.LOW_ALLIANCE, raised_at=now - timedelta(days=9), summary="older low")
    make_flag(episode, Rule.DROPOUT, raised_at=now - timedelta(days=2))
    make_flag(episode, Rule.NOT_ON_TRACK, raised_at=now - timedelta(days=30))
    make_flag(episode, Rule.SAFETY, raised_at=now)
    make_alert(clinician, WorkloadAlert.Kind.WEEKLY_HOURS, opened_at=now - timedelta(days=3))

    entries = review_queue(supervisor=supervisor, practice=practice, now=now)

    assert [(e.kind, e.severity) for e in entries] == [
        (QueueKind.SAFETY, 100),
        (QueueKind.DROPOUT, 60),
        (QueueKind.WORKLOAD, 50),
        (QueueKind.RUPTURE, 35),
        (QueueKind.RUPTURE, 35),
        (QueueKind.NOT_ON_TRACK, 25),
    ]
    # Equal severity: the one that has waited longest first.
    assert [e.flag.summary for e in entries[3:5]] == ["older low", "newer low"]  # type: ignore[union-attr]


def test_the_page_lists_rows_in_queue_order(
    as_supervisor: HttpClient, clinician: User, episode: Episode
) -> None:
    now = timezone.now()
    low = make_flag(episode, Rule.LOW_ALLIANCE, raised_at=now - timedelta(days=20))
    safety = make_flag(episode, Rule.SAFETY, raised_at=now)
    alert = make_alert(clinician, opened_at=now - timedelta(days=1))

    html = as_supervisor.get(reverse("review_queue")).content.decode()

    positions = [html.index(f'id="flag-{safety.pk}"'), html.index(f'id="workload-{alert.pk}"')]
    positions.append(html.index(f'id="flag-{low.pk}"'))
    assert positions == sorted(positions)


def test_each_row_shows_the_evidence_and_links_to_the_timeline_and_the_flag(
    as_supervisor: HttpClient, client_record: Client, episode: Episode
) -> None:
    flag = make_flag(episode, Rule.FELT_OFF, summary="The client said something felt off.")

    html = as_supervisor.get(reverse("review_queue")).content.decode()

    assert "The client said something felt off." in html
    assert "Total" in html  # the evidence behind the summary
    assert reverse("client_timeline", args=[client_record.pk]) in html
    assert reverse("flag_detail", args=[flag.pk]) in html
    assert AuditEvent.objects.filter(action="review_queue.view").count() == 1


def test_the_timeline_it_links_to_is_read_only_for_the_supervisor(
    as_supervisor: HttpClient, client_record: Client, episode: Episode
) -> None:
    make_flag(episode, Rule.LOW_ALLIANCE)
    page = as_supervisor.get(reverse("client_timeline", args=[client_record.pk]))
    assert page.status_code == 200
    assert "Log a rupture" not in page.content.decode()


def test_finished_flags_and_cleared_alerts_are_not_in_the_queue(
    supervisor: User, clinician: User, practice: Practice, episode: Episode
) -> None:
    make_flag(
        episode,
        Rule.LOW_ALLIANCE,
        status=RuptureFlag.Status.REPAIRED,
        resolved_at=timezone.now(),
    )
    alert = make_alert(clinician)
    alert.resolved_at = timezone.now()
    alert.save()
    assert _queue(supervisor, practice) == []


# --- Filters -----------------------------------------------------------------------------


@pytest.fixture
def two_supervisees(
    supervisor: User, clinician: User, practice: Practice, episode: Episode
) -> tuple[User, User]:
    other, _, other_episode = supervisee_with_client(practice, supervisor)
    make_flag(episode, Rule.LOW_ALLIANCE)
    make_flag(episode, Rule.RELIABLE_DETERIORATION)
    make_alert(clinician)
    make_flag(other_episode, Rule.SAFETY)
    make_flag(other_episode, Rule.DROPOUT)
    make_flag(other_episode, Rule.NOT_ON_TRACK)
    make_alert(other, WorkloadAlert.Kind.NO_REST_DAY)
    return clinician, other


def test_it_filters_by_supervisee(
    supervisor: User, practice: Practice, two_supervisees: tuple[User, User]
) -> None:
    clinician, other = two_supervisees
    assert _queue(supervisor, practice, supervisee=clinician) == [
        "flag:reliable_deterioration",
        "alert:weekly_hours",
        "flag:low_alliance",
    ]
    assert _queue(supervisor, practice, supervisee=other) == [
        "flag:safety",
        "flag:dropout",
        "alert:no_rest_day",
        "flag:not_on_track",
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("safety", ["flag:safety"]),
        ("rupture", ["flag:low_alliance"]),
        ("not_on_track", ["flag:reliable_deterioration", "flag:not_on_track"]),
        ("dropout", ["flag:dropout"]),
        ("workload", ["alert:weekly_hours", "alert:no_rest_day"]),
    ],
)
def test_it_filters_by_kind(
    supervisor: User,
    practice: Practice,
    two_supervisees: tuple[User, User],
    kind: str,
    expected: list[str],
) -> None:
    assert sorted(_queue(supervisor, practice, kind=kind)) == sorted(expected)


def test_the_page_filters_by_supervisee_and_kind_together(
    as_supervisor: HttpClient, two_supervisees: tuple[User, User]
) -> None:
    _, other = two_supervisees
    page = as_supervisor.get(
        reverse("review_queue"), {"supervisee": str(other.pk), "kind": "safety"}
    )
    assert page.status_code == 200
    assert [e.kind for e in page.context["entries"]] == ["safety"]
    assert page.context["entries"][0].supervisee == other


@pytest.mark.parametrize(
    "query", [{"kind": "gossip"}, {"supervisee": "999999"}, {"supervisee": "x"}]
)
def test_a_bad_filter_is_a_clear_400_not_a_500(
    as_supervisor: HttpClient, two_supervisees: tuple[User, User], query: dict[str, str]
) -> None:
    page = as_supervisor.get(reverse("review_queue"), query)
    assert page.status_code == 400
    assert "Select a valid choice" in page.content.decode()


def test_another_supervisors_supervisee_cannot_be_chosen(
    as_supervisor: HttpClient, practice: Practice, other_clinician: User, supervisor: User
) -> None:
    from tests.factories import staff

    someone = staff(practice, "supervisor")
    PairingFactory.create(practice=practice, supervisor=someone, supervisee=other_clinician)
    page = as_supervisor.get(reverse("review_queue"), {"supervisee": other_clinician.pk})
    assert page.status_code == 400


# --- Only current supervisees ------------------------------------------------------------


def test_an_ended_pairing_shows_nothing(
    supervisor: User, clinician: User, practice: Practice, episode: Episode
) -> None:
    make_flag(episode, Rule.SAFETY)
    make_alert(clinician)
    assert len(_queue(supervisor, practice)) == 2

    end_pairing(supervisor, clinician)

    assert _queue(supervisor, practice) == []


def test_flags_of_clinicians_one_does_not_supervise_stay_out(
    supervisor: User, practice: Practice, other_clinician: User
) -> None:
    stranger_client = ClientFactory.create(practice=practice)
    stranger_episode = EpisodeFactory.create(client=stranger_client, clinician=other_clinician)
    make_flag(stranger_episode, Rule.SAFETY)
    make_alert(other_clinician)
    assert _queue(supervisor, practice) == []


# --- Who may open it ---------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["as_admin", "as_clinician", "as_other_clinician", "as_client"])
def test_only_supervisors_open_the_queue(
    request: pytest.FixtureRequest, persona: str, supervisor: User
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("review_queue")).status_code == 404


def test_an_outsider_supervisor_sees_their_own_empty_queue_not_ours(
    as_outsider: HttpClient, supervisor: User, episode: Episode
) -> None:
    flag = make_flag(episode, Rule.SAFETY)
    page = as_outsider.get(reverse("review_queue"))
    assert page.status_code == 200
    assert page.context["entries"] == []
    assert reverse("flag_detail", args=[flag.pk]) not in page.content.decode()


# --- A constant number of queries --------------------------------------------------------


def _fill(practice: Practice, supervisor: User, supervisees: int, flags_each: int) -> None:
    for n in range(supervisees):
        clinician, _, episode = supervisee_with_client(practice, supervisor)
        for m in range(flags_each):
            make_flag(episode, [Rule.SAFETY, Rule.LOW_ALLIANCE, Rule.DROPOUT][m % 3])
        make_alert(clinician, opened_at=timezone.now() - timedelta(days=n))
        if n % 2:
            make_flag(episode, Rule.LOGGED)


def _count_queries(http: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert http.get(url).status_code == 200
    return len(queries)


def test_the_query_count_is_the_same_for_2_and_10_supervisees(
    practice: Practice, other_practice: Practice
) -> None:
    from tests.conftest import login
    from tests.factories import staff

    small = staff(practice, "supervisor")
    large = staff(practice, "supervisor")
    _fill(practice, small, supervisees=2, flags_each=1)
    _fill(practice, large, supervisees=10, flags_each=4)
    url = reverse("review_queue")

    small_count = _count_queries(login(small), url)
    large_count = _count_queries(login(large), url)

    assert len(review_queue(supervisor=large, practice=practice, now=timezone.now())) == 55
    assert small_count == large_count
    print(f"review queue: {large_count} queries per page load")
