"""The demo calendar that `seed_demo` adds through scheduling.demo.seed."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Exists, OuterRef

from practice.demo import DEMO_SLUG, PORTAL_CLIENT_EMAIL
from practice.models import Practice
from scheduling.demo import OVERBOOKED_EMAIL
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    Status,
)
from tests.test_layers import modules as layer_modules

BERLIN = ZoneInfo("Europe/Berlin")
# Wednesday 21 October 2026: the eight weeks around it cross the end of summer time.
NOW = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def demo(db: None) -> Iterator[Practice]:
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=StringIO())
        yield Practice.objects.get(slug=DEMO_SLUG)


def counts() -> tuple[int, int, int]:
    return (
        Appointment.objects.count(),
        AppointmentSeries.objects.count(),
        AppointmentStatusChange.objects.count(),
    )


def test_seeding_twice_changes_nothing(demo: Practice) -> None:
    first = counts()
    assert min(first) > 0
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert counts() == first
    assert "scheduling" in out.getvalue()


def test_the_calendar_covers_four_weeks_back_and_four_ahead(demo: Practice) -> None:
    days = [a.starts_at.astimezone(BERLIN).date() for a in Appointment.objects.in_practice(demo)]
    today = date(2026, 10, 21)
    assert min(days) >= today - timedelta(weeks=4)
    assert max(days) < today + timedelta(weeks=4)
    assert min(days) < today - timedelta(weeks=3)
    assert max(days) > today + timedelta(weeks=3)
    assert Appointment.objects.past().exists()
    assert Appointment.objects.upcoming().exists()


def test_past_sessions_are_mostly_attended_with_some_no_shows_and_cancellations(
    demo: Practice,
) -> None:
    past = Appointment.objects.filter(ends_at__lte=NOW)
    by_status = {s: past.filter(status=s).count() for s in Status.values}
    total = past.count()
    assert total > 100
    assert by_status[Status.ATTENDED] > total * 0.6
    assert by_status[Status.NO_SHOW] > 0
    assert by_status[Status.LATE_CANCELLED] > 0
    assert by_status[Status.CANCELLED_BY_CLIENT] > 0
    assert by_status[Status.SCHEDULED] == by_status[Status.CONFIRMED] == 0
    # Late cancellations fall inside the practice's window; ordinary ones outside it.
    window = demo.cancellation_window
    for appointment in past.filter(status=Status.LATE_CANCELLED):
        assert appointment.starts_at - appointment.status_changed_at < window


def test_upcoming_sessions_are_scheduled_or_confirmed(demo: Practice) -> None:
    upcoming = Appointment.objects.filter(starts_at__gt=NOW)
    statuses = set(upcoming.values_list("status", flat=True))
    assert {Status.SCHEDULED, Status.CONFIRMED} <= statuses
    assert statuses <= {Status.SCHEDULED, Status.CONFIRMED, Status.CANCELLED_BY_CLIENT}
    portal_client = (
        Appointment.objects.upcoming(NOW).open().filter(client__email=PORTAL_CLIENT_EMAIL)
    )
    assert portal_client.exists()


def test_every_session_carries_its_status_history(demo: Practice) -> None:
    for appointment in Appointment.objects.prefetch_related("status_changes"):
        changes = list(appointment.status_changes.all())
        assert changes[0].from_status == "" and changes[0].to_status == Status.SCHEDULED
        assert changes[0].reason == "booked"
        assert changes[-1].to_status == appointment.status
        assert appointment.status_changed_at == changes[-1].at
        for before, after in itertools.pairwise(changes):
            assert after.from_status == before.to_status
            assert after.at > before.at
        assert all(change.at <= NOW for change in changes)
    # Attendance is staff's record; confirmations come from the clients' links.
    attendance = AppointmentStatusChange.objects.filter(to_status=Status.ATTENDED)
    assert set(attendance.values_list("via", flat=True)) == {AppointmentStatusChange.Via.STAFF}
    assert not attendance.filter(changed_by__isnull=True).exists()


def test_sessions_come_in_weekly_and_fortnightly_series_at_a_steady_local_time(
    demo: Practice,
) -> None:
    assert set(AppointmentSeries.objects.values_list("interval", flat=True)) == {1, 2}
    assert not Appointment.objects.filter(series__isnull=True).exists()
    for series in AppointmentSeries.objects.prefetch_related("appointments"):
        local = [a.starts_at.astimezone(BERLIN) for a in series.appointments.all()]
        assert len({(m.isoweekday(), m.time()) for m in local}) == 1
        gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(local)}
        assert gaps <= {7 * series.interval}
        episode = series.episode
        assert (episode.client_id, episode.clinician_id) == (series.client_id, series.clinician_id)
        assert episode.closed_on is None


def test_one_clinician_is_overbooked_with_weekend_sessions(demo: Practice) -> None:
    hours: dict[tuple[str, tuple[int, int]], float] = defaultdict(float)
    weekend: set[str] = set()
    for appointment in Appointment.objects.active().select_related("clinician"):
        local = appointment.starts_at.astimezone(BERLIN)
        week = local.isocalendar()[:2]
        email = appointment.clinician.email
        hours[email, (week[0], week[1])] += appointment.duration.total_seconds() / 3600
        if local.isoweekday() in (6, 7):
            weekend.add(email)

    busiest: dict[str, float] = defaultdict(float)
    for (email, _), booked in hours.items():
        busiest[email] = max(busiest[email], booked)
    assert busiest[OVERBOOKED_EMAIL] > 35
    assert OVERBOOKED_EMAIL in weekend
    # Only that one: everyone else stays well inside the practice's cap, and off weekends.
    assert all(b < demo.weekly_hours_cap for e, b in busiest.items() if e != OVERBOOKED_EMAIL)
    assert weekend == {OVERBOOKED_EMAIL}


def test_no_two_active_sessions_overlap(demo: Practice) -> None:
    active = Appointment.objects.filter(status__in=ACTIVE_STATUSES)
    for party in ("clinician", "client"):
        clash = active.filter(
            **{party: OuterRef(party)},
            starts_at__lt=OuterRef("ends_at"),
            ends_at__gt=OuterRef("starts_at"),
        ).exclude(pk=OuterRef("pk"))
        assert active.filter(Exists(clash)).count() == 0, party
    assert active.count() > 300


def test_the_core_app_does_not_import_scheduling_to_seed_it() -> None:
    # The core only: the top-layer page modules (home, caseload, import) may compose
    # scheduling, as tests/test_layers.py allows.
    for path in layer_modules("practice"):
        text = path.read_text()
        assert "from scheduling" not in text and "import scheduling" not in text, path
