"""The workload sweep (one row per clinician, week and condition) and booking-time warnings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from practice.models import Client, ClinicianProfile, Practice, User
from scheduling.models import Status, WorkloadAlert
from scheduling.workload import workload_sweep, workload_warnings
from tests.factories import ClientFactory, book, staff

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
Kind = WorkloadAlert.Kind
# Monday 2 March 2026, 08:00 in Berlin. The week under test is this one.
NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
WEEK = date(2026, 3, 2)


@pytest.fixture(autouse=True)
def _monday_morning() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def at(day: int, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    """A time in March 2026 (2 = Monday ... 8 = Sunday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=zone)


def alerts(clinician: User) -> dict[tuple[date, str], WorkloadAlert]:
    return {(a.week_start, a.kind): a for a in WorkloadAlert.objects.for_clinician(clinician)}


def open_kinds(clinician: User, week: date = WEEK) -> dict[str, tuple[Decimal, Decimal]]:
    return {
        a.kind: (a.measured, a.limit)
        for a in WorkloadAlert.objects.open().for_clinician(clinician).filter(week_start=week)
    }


def set_policy(practice: Practice, **fields: object) -> None:
    for name, value in fields.items():
        setattr(practice, name, value)
    practice.save()


# --- The six conditions ------------------------------------------------------------------


def test_booked_hours_over_the_weekly_cap_open_an_alert(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, weekly_hours_cap=3)
    for day in (2, 3, 4):
        book(clinician, client_record, at(day, 10), minutes=60)
    book(clinician, client_record, at(5, 10), minutes=30)
    assert workload_sweep(now=NOW) == (1, 0)
    assert open_kinds(clinician) == {Kind.WEEKLY_HOURS: (Decimal("3.50"), Decimal("3.00"))}


def test_hours_exactly_at_the_weekly_cap_are_no_alert(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, weekly_hours_cap=3)
    for day in (2, 3, 4):
        book(clinician, client_record, at(day, 10), minutes=60)
    assert workload_sweep(now=NOW) == (0, 0)
    assert not WorkloadAlert.objects.exists()


def test_more_sessions_than_the_daily_cap_open_an_alert(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=2)
    for hour in (10, 11, 12):
        book(clinician, client_record, at(3, hour))
    book(clinician, client_record, at(4, 10))
    workload_sweep(now=NOW)
    assert open_kinds(clinician) == {Kind.DAILY_SESSIONS: (Decimal(3), Decimal(2))}


def test_sessions_up_to_the_daily_cap_are_no_alert(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=2)
    for day in (3, 4):
        for hour in (10, 11):
            book(clinician, client_record, at(day, hour))
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_sessions_on_all_seven_days_leave_no_rest_day(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    # Weekends are working days here, so only the missing rest day is flagged.
    set_policy(practice, rest_days=[])
    ClinicianProfile.objects.filter(membership__user=clinician).update(
        working_days=[1, 2, 3, 4, 5, 6, 7]
    )
    for day in range(2, 9):
        book(clinician, client_record, at(day, 10))
    workload_sweep(now=NOW)
    assert open_kinds(clinician) == {Kind.NO_REST_DAY: (Decimal(7), Decimal(6))}


def test_six_working_days_keep_one_rest_day(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, rest_days=[])
    ClinicianProfile.objects.filter(membership__user=clinician).update(
        working_days=[1, 2, 3, 4, 5, 6, 7]
    )
    for day in range(2, 8):
        book(clinician, client_record, at(day, 10))
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_sessions_on_rest_days_and_off_days_are_counted(
    clinician: User, client_record: Client
) -> None:
    # Wednesday is this clinician's day off; Sunday is the practice's rest day.
    ClinicianProfile.objects.filter(membership__user=clinician).update(working_days=[1, 2, 4, 5])
    book(clinician, client_record, at(4, 10))
    book(clinician, client_record, at(8, 10))
    book(clinician, client_record, at(5, 10))
    workload_sweep(now=NOW)
    assert open_kinds(clinician) == {Kind.REST_DAY_SESSIONS: (Decimal(2), Decimal(0))}


def test_sessions_on_working_days_only_are_no_alert(clinician: User, client_record: Client) -> None:
    for day in (2, 3, 4, 5, 6):
        book(clinician, client_record, at(day, 10))
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_breaks_shorter_than_the_minimum_are_counted(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(3, 10, 0))  # until 10:50
    book(clinician, client_record, at(3, 10, 55))  # 5 minutes' break, until 11:45
    book(clinician, client_record, at(3, 11, 45))  # no break at all
    workload_sweep(now=NOW)
    assert open_kinds(clinician) == {Kind.SHORT_BREAKS: (Decimal(2), Decimal(0))}


def test_a_break_of_exactly_the_minimum_is_no_alert(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(3, 10, 0))  # until 10:50
    book(clinician, client_record, at(3, 11, 0))  # 10 minutes, the practice's minimum
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_sessions_outside_working_hours_are_counted(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(3, 8, 59))  # starts before 09:00
    book(clinician, client_record, at(3, 16, 20))  # ends 17:10
    workload_sweep(now=NOW)
    assert open_kinds(clinician) == {Kind.OUTSIDE_HOURS: (Decimal(2), Decimal(0))}


def test_sessions_filling_the_working_day_exactly_are_no_alert(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(3, 9, 0))
    book(clinician, client_record, at(3, 16, 10))  # ends 17:00 sharp
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_a_clinician_without_a_profile_gets_the_defaults(practice: Practice) -> None:
    plain = staff(practice, "clinician", email="frank@lindenhof.example")
    ClinicianProfile.objects.filter(membership__user=plain).delete()
    book(
        plain, ClientFactory.create(practice=practice), at(7, 8, 0)
    )  # Saturday 08:00, Berlin by the practice
    workload_sweep(now=NOW)
    assert open_kinds(plain) == {
        Kind.REST_DAY_SESSIONS: (Decimal(1), Decimal(0)),
        Kind.OUTSIDE_HOURS: (Decimal(1), Decimal(0)),
    }


# --- The clinician's zone decides the week and the day ----------------------------------


def test_monday_just_after_midnight_in_berlin_is_monday_not_sunday_utc(
    clinician: User, client_record: Client
) -> None:
    # 00:30 Monday in Berlin is 23:30 Sunday in UTC: a working day, in the new week.
    book(clinician, client_record, at(2, 0, 30))
    workload_sweep(now=NOW)
    assert {(week, kind) for week, kind in alerts(clinician)} == {(WEEK, Kind.OUTSIDE_HOURS)}


def test_sunday_evening_in_new_york_is_sunday_of_the_previous_week(
    clinician: User, client_record: Client
) -> None:
    # 20:00 Sunday 1 March in New York is 01:00 Monday 2 March in UTC.
    ClinicianProfile.objects.filter(membership__user=clinician).update(timezone="America/New_York")
    book(clinician, client_record, datetime(2026, 3, 1, 20, 0, tzinfo=NEW_YORK))
    workload_sweep(now=NOW)
    previous_week = date(2026, 2, 23)
    assert {(week, kind) for week, kind in alerts(clinician)} == {
        (previous_week, Kind.REST_DAY_SESSIONS),
        (previous_week, Kind.OUTSIDE_HOURS),
    }


# --- One row per condition: idempotent, resolving, reopening ----------------------------


def test_a_second_sweep_changes_nothing(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(3, 10))
    book(clinician, client_record, at(3, 11))
    book(clinician, client_record, at(8, 10))
    assert workload_sweep(now=NOW) == (2, 0)
    before = list(WorkloadAlert.objects.values_list("pk", "kind", "measured", "updated_at"))
    assert workload_sweep(now=NOW + timedelta(minutes=5)) == (0, 0)
    after = list(WorkloadAlert.objects.values_list("pk", "kind", "measured", "updated_at"))
    assert after == before


def test_a_changed_measure_updates_the_same_row(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(3, 10))
    book(clinician, client_record, at(3, 11))
    workload_sweep(now=NOW)
    alert = WorkloadAlert.objects.get()
    book(clinician, client_record, at(3, 12))
    later = NOW + timedelta(hours=1)
    assert workload_sweep(now=later) == (1, 0)
    alert.refresh_from_db()
    assert (alert.measured, alert.opened_at, alert.updated_at) == (Decimal(3), NOW, later)
    assert WorkloadAlert.objects.count() == 1


def test_a_cleared_condition_resolves_with_a_timestamp_and_a_recurring_one_reopens(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(3, 10))
    second = book(clinician, client_record, at(3, 11))
    workload_sweep(now=NOW)
    alert = WorkloadAlert.objects.get()

    second.set_status(Status.CANCELLED_BY_CLIENT, by=None, via="staff")
    cleared = NOW + timedelta(hours=1)
    assert workload_sweep(now=cleared) == (0, 1)
    alert.refresh_from_db()
    assert alert.resolved_at == cleared
    assert not WorkloadAlert.objects.open().exists()
    assert workload_sweep(now=cleared + timedelta(minutes=1)) == (0, 0)

    book(clinician, client_record, at(3, 14))
    back = NOW + timedelta(hours=2)
    assert workload_sweep(now=back) == (1, 0)
    reopened = WorkloadAlert.objects.get()
    assert reopened.pk == alert.pk
    assert (reopened.resolved_at, reopened.opened_at) == (None, back)


def test_cancelled_sessions_do_not_count(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(3, 10))
    for status in (
        Status.CANCELLED_BY_CLIENT,
        Status.CANCELLED_BY_CLINICIAN,
        Status.LATE_CANCELLED,
    ):
        book(clinician, client_record, at(3, 11), status=status)
    book(clinician, client_record, at(8, 10), status=Status.CANCELLED_BY_CLINICIAN)
    workload_sweep(now=NOW)
    assert not WorkloadAlert.objects.exists()


def test_attended_and_no_show_sessions_count(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(2, 5), status=Status.ATTENDED)
    book(clinician, client_record, at(2, 6), status=Status.NO_SHOW)
    workload_sweep(now=NOW)
    assert open_kinds(clinician)[Kind.DAILY_SESSIONS] == (Decimal(2), Decimal(1))


def test_only_weeks_from_four_back_to_eight_ahead_are_swept(
    clinician: User, client_record: Client
) -> None:
    for weeks in (-5, -4, 8, 9):
        book(clinician, client_record, at(8, 10) + timedelta(weeks=weeks))
    # An open alert older than the window stays as the last sweep that saw it left it.
    stale = WorkloadAlert.objects.create(
        practice=client_record.practice,
        clinician=clinician,
        week_start=WEEK - timedelta(weeks=6),
        kind=Kind.SHORT_BREAKS,
        measured=1,
        limit=0,
    )
    workload_sweep(now=NOW)
    assert set(alerts(clinician)) == {
        (WEEK - timedelta(weeks=4), Kind.REST_DAY_SESSIONS),
        (WEEK + timedelta(weeks=8), Kind.REST_DAY_SESSIONS),
        (stale.week_start, Kind.SHORT_BREAKS),
    }
    stale.refresh_from_db()
    assert stale.resolved_at is None


def test_each_clinician_is_measured_on_their_own(
    practice: Practice, clinician: User, other_clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=1)
    book(clinician, client_record, at(3, 10))
    book(clinician, client_record, at(3, 11))
    theirs = ClientFactory.create(practice=practice)
    book(other_clinician, theirs, at(3, 14))
    book(other_clinician, theirs, at(4, 14))
    workload_sweep(now=NOW)
    assert set(open_kinds(clinician)) == {Kind.DAILY_SESSIONS}
    assert open_kinds(other_clinician) == {}
    assert WorkloadAlert.objects.get().practice == practice


# --- Warnings at booking time ------------------------------------------------------------


def test_the_warning_names_the_hours_this_booking_makes(
    clinician: User, client_record: Client
) -> None:
    for day in (2, 4, 5, 6):
        book(clinician, client_record, at(day, 9), minutes=8 * 60)
    book(clinician, client_record, at(3, 9), minutes=60)
    warnings = workload_warnings(
        clinician=clinician, starts_at=at(3, 10, 10), ends_at=at(3, 11, 10)
    )
    assert warnings == ["This makes 34 of 30 hours this week."]


def test_a_booking_within_every_limit_has_no_warning(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(3, 9))
    assert workload_warnings(clinician=clinician, starts_at=at(3, 10), ends_at=at(3, 10, 50)) == []


def test_the_warnings_name_the_daily_cap_the_rest_day_and_the_break(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, daily_session_cap=2)
    book(clinician, client_record, at(8, 10))  # Sunday
    book(clinician, client_record, at(8, 11, 0))
    warnings = workload_warnings(
        clinician=clinician, starts_at=at(8, 11, 55), ends_at=at(8, 12, 45)
    )
    assert warnings == [
        "This makes 3 sessions on Sunday; the daily cap is 2.",
        "Sunday is a rest day.",
        "Only 5 minutes after the previous session; the minimum break is 10.",
    ]


def test_the_warnings_name_a_missing_rest_day_and_hours_outside_the_day(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    set_policy(practice, rest_days=[])
    ClinicianProfile.objects.filter(membership__user=clinician).update(
        working_days=[1, 2, 3, 4, 5, 6, 7]
    )
    for day in range(2, 8):
        book(clinician, client_record, at(day, 10))
    warnings = workload_warnings(clinician=clinician, starts_at=at(8, 18), ends_at=at(8, 18, 50))
    assert warnings == [
        "This leaves no rest day this week.",
        "This is outside working hours (09:00–17:00).",
    ]


def test_the_session_being_moved_is_left_out(clinician: User, client_record: Client) -> None:
    moving = book(clinician, client_record, at(3, 10))
    warnings = workload_warnings(
        clinician=clinician, starts_at=at(3, 10, 55), ends_at=at(3, 11, 45), exclude_pk=moving.pk
    )
    assert warnings == []


def test_a_short_break_before_the_next_session_warns(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(3, 11))
    warnings = workload_warnings(clinician=clinician, starts_at=at(3, 10, 10), ends_at=at(3, 11))
    assert warnings == ["No break before the next session; the minimum break is 10."]
