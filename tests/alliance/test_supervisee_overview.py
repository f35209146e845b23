"""The supervisee overview: caseload against capacity, booked hours this week and next
against the cap, no-shows over 90 days, open flags by kind, and the alliance trend."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance.models import AlliancePolicy, Instrument, Response, RuptureFlag
from alliance.supervision import SuperviseeOverview, supervisee_overview
from practice.models import Client, ClinicianProfile, Practice, User
from scheduling.models import Status
from tests.alliance.supervision_helpers import make_alert, make_flag, supervisee_with_client
from tests.conftest import login
from tests.factories import ClientFactory, EpisodeFactory, book, staff

pytestmark = pytest.mark.django_db

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# Wednesday 18 November 2026, 12:00 in Berlin: the week runs from Monday 16 November.
NOW = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _feedback(client: Client, total: int, completed_at: datetime) -> Response:
    measure = Instrument.objects.shipped().get(code="session-feedback")
    episode = client.episodes.get()
    return Response.objects.create(
        instrument=measure,
        instrument_version=measure.version,
        client=client,
        episode=episode,
        total=total,
        completed_at=completed_at,
        collected_via=Response.Via.LINK,
    )


@pytest.fixture
def busy_week(practice: Practice, clinician: User, client_record: Client) -> None:
    """Bob: 4 active episodes against a capacity of 3, a full calendar, flags, feedback."""
    ClinicianProfile.objects.filter(membership__user=clinician).update(caseload_capacity=3)
    others = [ClientFactory.create(practice=practice) for _ in range(3)]
    for other in others:
        EpisodeFactory.create(client=other, clinician=clinician)
    episode = client_record.episodes.get()
    # This week: 50 + 60 minutes that hold the slot, and a cancellation that does not.
    book(clinician, client_record, at(16), 50, status=Status.ATTENDED)
    book(clinician, others[0], at(19), 60)
    book(clinician, others[1], at(20), 60, status=Status.CANCELLED_BY_CLIENT)
    # Next week: one hour.
    book(clinician, others[0], at(24), 60)
    # The last 90 days: with this week's Monday, 4 sessions fell due, 1 was missed.
    book(clinician, client_record, at(2, month=10), 50, status=Status.ATTENDED)
    book(clinician, client_record, at(9, month=10), 50, status=Status.NO_SHOW)
    book(clinician, client_record, at(16, month=10), 50, status=Status.ATTENDED)
    book(clinician, client_record, at(1, month=7), 50, status=Status.NO_SHOW)  # too long ago
    make_flag(episode, RuptureFlag.Rule.SAFETY)
    make_flag(episode, RuptureFlag.Rule.LOW_ALLIANCE)
    make_flag(episode, RuptureFlag.Rule.LOGGED)
    make_flag(episode, RuptureFlag.Rule.NOT_ON_TRACK)
    make_alert(clinician)
    # Session feedback in the last 8 weeks: 30, 38, 39; one older low score does not count.
    _feedback(client_record, 30, NOW - timedelta(weeks=1))
    _feedback(client_record, 38, NOW - timedelta(weeks=3))
    _feedback(client_record, 39, NOW - timedelta(weeks=7))
    _feedback(client_record, 12, NOW - timedelta(weeks=10))


def _row(supervisor: User, practice: Practice) -> SuperviseeOverview:
    [row] = supervisee_overview(supervisor=supervisor, practice=practice, now=NOW)
    return row


def test_caseload_against_capacity(supervisor: User, practice: Practice, busy_week: None) -> None:
    row = _row(supervisor, practice)
    assert (row.caseload, row.capacity, row.over_capacity) == (4, 3, True)


def test_booked_hours_this_week_and_next_against_the_cap(
    supervisor: User, practice: Practice, busy_week: None
) -> None:
    row = _row(supervisor, practice)
    assert (row.hours_this_week, row.hours_next_week, row.hours_cap) == (1.83, 1.0, 30)


def test_no_show_rate_over_90_days(supervisor: User, practice: Practice, busy_week: None) -> None:
    row = _row(supervisor, practice)
    assert (row.sessions_90_days, row.no_shows_90_days, row.no_show_rate) == (4, 1, 0.25)


def test_open_flags_by_kind(supervisor: User, practice: Practice, busy_week: None) -> None:
    row = _row(supervisor, practice)
    assert dict(row.flags_by_kind) == {
        "Safety": 1,
        "Ruptures": 2,
        "Not on track": 1,
        "Dropout": 0,
    }
    assert row.open_workload_alerts == 1


def test_the_alliance_trend_uses_the_practice_threshold(
    supervisor: User, practice: Practice, busy_week: None
) -> None:
    row = _row(supervisor, practice)
    assert (row.feedback_answered, row.feedback_low) == (3, 1)  # below the default 36
    AlliancePolicy.objects.create(practice=practice, low_alliance_below=39)
    row = _row(supervisor, practice)
    assert (row.feedback_answered, row.feedback_low) == (3, 2)


def test_a_supervisee_with_nothing_yet_shows_no_rates(
    supervisor: User, clinician: User, practice: Practice
) -> None:
    row = _row(supervisor, practice)
    assert row.supervisee == clinician
    assert (row.no_show_rate, row.low_alliance_share, row.caseload) == (None, None, 0)


def test_the_page_shows_each_supervisee(
    as_supervisor: HttpClient, clinician: User, busy_week: None
) -> None:
    page = as_supervisor.get(reverse("supervisee_overview"))
    assert page.status_code == 200
    html = page.content.decode()
    assert clinician.get_full_name() in html
    assert "4 / 3" in html
    assert "1.8 / 30" in html
    assert "25%" in html
    assert "33%" in html


@pytest.mark.parametrize("persona", ["as_admin", "as_clinician", "as_other_clinician", "as_client"])
def test_only_supervisors_open_the_overview(
    request: pytest.FixtureRequest, persona: str, supervisor: User
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("supervisee_overview")).status_code == 404


def test_an_ended_pairing_leaves_the_overview(
    supervisor: User, clinician: User, practice: Practice
) -> None:
    from tests.alliance.supervision_helpers import end_pairing

    end_pairing(supervisor, clinician)
    assert supervisee_overview(supervisor=supervisor, practice=practice, now=NOW) == []


def _fill(practice: Practice, supervisor: User, n: int) -> None:
    for i in range(n):
        clinician, client, episode = supervisee_with_client(practice, supervisor)
        book(clinician, client, at(17, 9 + i), 50, status=Status.ATTENDED)
        make_flag(episode, RuptureFlag.Rule.DROPOUT)
        make_alert(clinician)


def test_the_query_count_is_the_same_for_1_and_5_supervisees(practice: Practice) -> None:
    small, large = staff(practice, "supervisor"), staff(practice, "supervisor")
    _fill(practice, small, 1)
    _fill(practice, large, 5)
    counts = []
    for supervisor in (small, large):
        http = login(supervisor)
        with CaptureQueriesContext(connection) as queries:
            assert http.get(reverse("supervisee_overview")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    print(f"supervisee overview: {counts[1]} queries per page load")
