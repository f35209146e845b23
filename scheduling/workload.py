"""Overbooking and burnout alerts: a set-based weekly sweep, and warnings at booking time.

The seed article's burnt-out therapist did not book one impossible week; the weeks crept up.
So each clinician's ISO weeks (Monday to Sunday in *their* zone, which decides what "Sunday"
and "after hours" mean) are measured against the practice's policy, and each breached
condition is one ``WorkloadAlert`` row per (clinician, week, kind) that the sweep keeps
current: opened, updated, resolved when the condition clears, and reopened if it returns.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Q

from practice.access import membership_of
from practice.models import (
    ClinicianProfile,
    Membership,
    SupervisionPairing,
    User,
    default_working_days,
)
from scheduling.models import ACTIVE_STATUSES, Appointment, WorkloadAlert, WorkloadAlertQuerySet

# A clinician without a profile works the profile's defaults: Monday to Friday, 09:00-17:00.
DEFAULT_WORK_STARTS = time(9, 0)
DEFAULT_WORK_ENDS = time(17, 0)
# The swept weeks, counted from the Monday of the clinician's current week.
WEEKS_BACK = 4
WEEKS_AHEAD = 8
# Two sweeps at once (a slow beat tick and an operator's `manage.py sweep`) would interleave
# their upserts and resolutions; one transaction-scoped lock makes the second wait its turn.
SWEEP_LOCK_NAME = "scheduling.workload_sweep"

# One statement: measure every clinician's swept weeks, upsert the breached conditions and
# resolve the open alerts that no longer hold. The two writes touch disjoint rows (a key is
# either among the conditions or not), so they can share one snapshot.
SWEEP_SQL = """
WITH clinicians AS (
    SELECT
        m.user_id AS clinician_id,
        m.practice_id,
        COALESCE(NULLIF(cp.timezone, ''), p.timezone) AS tz,
        COALESCE(cp.working_days, %(working_days)s::smallint[]) AS working_days,
        COALESCE(cp.work_starts, %(work_starts)s::time) AS work_starts,
        COALESCE(cp.work_ends, %(work_ends)s::time) AS work_ends,
        p.rest_days,
        p.weekly_hours_cap,
        p.daily_session_cap,
        p.minimum_break
    FROM practice_membership AS m
    JOIN practice_practice AS p ON p.id = m.practice_id
    JOIN practice_user AS u ON u.id = m.user_id
    LEFT JOIN practice_clinicianprofile AS cp ON cp.membership_id = m.id
    WHERE m.is_clinician AND m.is_active AND u.is_active
),
windows AS (
    SELECT
        c.*,
        this.monday - %(days_back)s AS first_week,
        this.monday + %(days_ahead)s AS last_week,
        (this.monday - %(days_back)s)::timestamp AT TIME ZONE c.tz AS window_starts,
        (this.monday + %(days_ahead)s + 7)::timestamp AT TIME ZONE c.tz AS window_ends
    FROM clinicians AS c
    CROSS JOIN LATERAL (
        SELECT date_trunc('week', %(now)s::timestamptz AT TIME ZONE c.tz)::date AS monday
    ) AS this
),
sessions AS (
    SELECT
        a.clinician_id,
        w.practice_id,
        w.weekly_hours_cap,
        w.daily_session_cap,
        w.rest_days,
        w.working_days,
        w.work_starts,
        w.work_ends,
        w.minimum_break,
        a.starts_at AT TIME ZONE w.tz AS local_start,
        a.ends_at AT TIME ZONE w.tz AS local_end,
        -- Elapsed time, not the local clock's: a session over a DST change lasts what it lasts.
        extract(epoch FROM a.ends_at - a.starts_at) / 3600 AS hours,
        -- The gap since the clinician's previous session, across days and weeks.
        a.starts_at - lag(a.ends_at) OVER (
            PARTITION BY a.clinician_id ORDER BY a.starts_at
        ) AS gap
    FROM scheduling_appointment AS a
    JOIN windows AS w ON w.clinician_id = a.clinician_id
    WHERE a.status = ANY(%(statuses)s::text[])
      AND a.starts_at >= w.window_starts
      AND a.starts_at < w.window_ends
),
flagged AS (
    SELECT
        s.*,
        date_trunc('week', s.local_start)::date AS week_start,
        s.local_start::date AS day,
        count(*) OVER (PARTITION BY s.clinician_id, s.local_start::date) AS sessions_that_day,
        (
            extract(isodow FROM s.local_start)::smallint = ANY(s.rest_days)
            OR NOT extract(isodow FROM s.local_start)::smallint = ANY(s.working_days)
        ) AS on_rest_day,
        (
            s.local_start::time < s.work_starts
            OR s.local_end > s.local_start::date + s.work_ends
        ) AS outside_hours,
        (s.gap >= interval '0' AND s.gap < s.minimum_break) AS short_break
    FROM sessions AS s
),
weeks AS (
    SELECT
        clinician_id,
        practice_id,
        week_start,
        weekly_hours_cap,
        daily_session_cap,
        sum(hours) AS hours,
        max(sessions_that_day) AS busiest_day,
        count(DISTINCT day) AS days_worked,
        count(*) FILTER (WHERE on_rest_day) AS rest_day_sessions,
        count(*) FILTER (WHERE short_break) AS short_breaks,
        count(*) FILTER (WHERE outside_hours) AS outside_hours
    FROM flagged
    GROUP BY clinician_id, practice_id, week_start, weekly_hours_cap, daily_session_cap
),
conditions AS (
    SELECT wk.clinician_id, wk.practice_id, wk.week_start, v.kind, v.measured, v."limit"
    FROM weeks AS wk
    CROSS JOIN LATERAL (
        VALUES
            ('weekly_hours', round(wk.hours, 2), wk.weekly_hours_cap,
                wk.hours > wk.weekly_hours_cap),
            ('daily_sessions', wk.busiest_day, wk.daily_session_cap,
                wk.busiest_day > wk.daily_session_cap),
            ('no_rest_day', wk.days_worked, 6, wk.days_worked = 7),
            ('rest_day_sessions', wk.rest_day_sessions, 0, wk.rest_day_sessions > 0),
            ('short_breaks', wk.short_breaks, 0, wk.short_breaks > 0),
            ('outside_hours', wk.outside_hours, 0, wk.outside_hours > 0)
    ) AS v (kind, measured, "limit", breached)
    WHERE v.breached
),
upserted AS (
    INSERT INTO scheduling_workloadalert AS alert (
        practice_id, clinician_id, week_start, kind, measured, "limit",
        opened_at, updated_at, resolved_at
    )
    SELECT practice_id, clinician_id, week_start, kind, measured, "limit",
        %(now)s, %(now)s, NULL
    FROM conditions
    ON CONFLICT (clinician_id, week_start, kind) DO UPDATE SET
        measured = EXCLUDED.measured,
        "limit" = EXCLUDED."limit",
        -- A reopened alert dates from its return; an open one keeps its first opening.
        opened_at = CASE
            WHEN alert.resolved_at IS NULL THEN alert.opened_at ELSE EXCLUDED.opened_at
        END,
        updated_at = EXCLUDED.updated_at,
        resolved_at = NULL
    -- An unchanged open alert is left alone: a repeated sweep writes and counts nothing.
    WHERE alert.resolved_at IS NOT NULL
       OR alert.measured <> EXCLUDED.measured
       OR alert."limit" <> EXCLUDED."limit"
    RETURNING alert.id
),
resolved AS (
    UPDATE scheduling_workloadalert AS alert
    SET resolved_at = %(now)s
    FROM windows AS w
    WHERE alert.resolved_at IS NULL
      AND alert.clinician_id = w.clinician_id
      AND alert.week_start BETWEEN w.first_week AND w.last_week
      AND NOT EXISTS (
          SELECT 1
          FROM conditions AS c
          WHERE c.clinician_id = alert.clinician_id
            AND c.week_start = alert.week_start
            AND c.kind = alert.kind
      )
    RETURNING alert.id
)
SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM resolved)
"""


def workload_sweep(*, now: datetime) -> tuple[int, int]:
    """Measure every active clinician's weeks, from 4 before ``now`` to 8 after, in their own
    zone, and bring the alerts in line. Returns (opened or changed, resolved).

    Idempotent and self-healing: it compares the appointments as they are with the alerts as
    they are, so a second run at the same moment changes nothing, and a missed run is made up
    by the next one. Weeks outside the window are left as the last sweep that saw them left
    them.
    """
    params: dict[str, datetime | int | str | list[int] | list[str]] = {
        "now": now,
        "statuses": [status.value for status in ACTIVE_STATUSES],
        "working_days": default_working_days(),
        "work_starts": DEFAULT_WORK_STARTS.isoformat(),
        "work_ends": DEFAULT_WORK_ENDS.isoformat(),
        "days_back": 7 * WEEKS_BACK,
        "days_ahead": 7 * WEEKS_AHEAD,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [SWEEP_LOCK_NAME])
        cursor.execute(SWEEP_SQL, params)
        opened, resolved = cursor.fetchone()
    return int(opened), int(resolved)


# --- At booking time ---------------------------------------------------------------------


def _number(value: float) -> str:
    """34, 30.5, 30.83: no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def workload_warnings(
    *, clinician: User, starts_at: datetime, ends_at: datetime, exclude_pk: int | None = None
) -> list[str]:
    """What booking this session would breach, in the clinician's week and zone.

    The same conditions as the sweep, for one prospective session: the aggregates (hours,
    sessions that day, days worked) include it, the per-session checks look at it alone.
    ``exclude_pk`` leaves out the session being moved, when rescheduling.
    """
    membership = (
        Membership.objects.select_related("practice", "clinician_profile")
        .filter(user=clinician)
        .first()
    )
    if membership is None:
        return []
    practice = membership.practice
    profile: ClinicianProfile | None = getattr(membership, "clinician_profile", None)
    zone = zoneinfo.ZoneInfo((profile.timezone if profile else "") or practice.timezone)
    working_days = profile.working_days if profile else default_working_days()
    work_starts = profile.work_starts if profile else DEFAULT_WORK_STARTS
    work_ends = profile.work_ends if profile else DEFAULT_WORK_ENDS

    local_start = starts_at.astimezone(zone)
    monday = local_start.date() - timedelta(days=local_start.weekday())
    week_starts = datetime.combine(monday, time.min, tzinfo=zone)
    week_ends = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone)
    # A day either side as well: the neighbouring sessions may sit across the week's edge.
    booked = (
        Appointment.objects.active()
        .for_clinician(clinician)
        .filter(
            starts_at__gte=week_starts - timedelta(days=1),
            starts_at__lt=week_ends + timedelta(days=1),
        )
    )
    if exclude_pk is not None:
        booked = booked.exclude(pk=exclude_pk)
    others = list(booked.values_list("starts_at", "ends_at"))
    week = [(s, e) for s, e in others if week_starts <= s < week_ends] + [(starts_at, ends_at)]

    warnings: list[str] = []
    hours = sum(((e - s) for s, e in week), timedelta()).total_seconds() / 3600
    if hours > practice.weekly_hours_cap:
        warnings.append(
            f"This makes {_number(hours)} of {practice.weekly_hours_cap} hours this week."
        )
    that_day = [s for s, _ in week if s.astimezone(zone).date() == local_start.date()]
    if len(that_day) > practice.daily_session_cap:
        warnings.append(
            f"This makes {len(that_day)} sessions on {local_start:%A}; "
            f"the daily cap is {practice.daily_session_cap}."
        )
    if len({s.astimezone(zone).date() for s, _ in week}) == 7:
        warnings.append("This leaves no rest day this week.")
    weekday = local_start.isoweekday()
    if weekday in practice.rest_days:
        warnings.append(f"{local_start:%A} is a rest day.")
    elif weekday not in working_days:
        # The same words as the availability warning, so the booking page shows them once.
        warnings.append(f"{local_start:%A} is not one of this clinician's working days.")
    local_end = ends_at.astimezone(zone).replace(tzinfo=None)
    if local_start.time() < work_starts or local_end > datetime.combine(
        local_start.date(), work_ends
    ):
        warnings.append(f"This is outside working hours ({work_starts:%H:%M}–{work_ends:%H:%M}).")
    warnings += _break_warnings(others, starts_at, ends_at, practice.minimum_break)
    return warnings


def _break_warnings(
    others: list[tuple[datetime, datetime]],
    starts_at: datetime,
    ends_at: datetime,
    minimum: timedelta,
) -> list[str]:
    warnings: list[str] = []
    least = _minutes(minimum)
    before = [starts_at - e for _, e in others if e <= starts_at]
    if before and min(before) < minimum:
        gap = _minutes(min(before))
        warnings.append(
            f"Only {gap} minutes after the previous session; the minimum break is {least}."
            if gap
            else f"No break after the previous session; the minimum break is {least}."
        )
    after = [s - ends_at for s, _ in others if s >= ends_at]
    if after and min(after) < minimum:
        gap = _minutes(min(after))
        warnings.append(
            f"Only {gap} minutes before the next session; the minimum break is {least}."
            if gap
            else f"No break before the next session; the minimum break is {least}."
        )
    return warnings


# --- Who sees alerts ---------------------------------------------------------------------


def alerts_visible_to(user: User) -> WorkloadAlertQuerySet:
    """A clinician sees their own alerts, a supervisor their current supervisees', an admin
    the practice's. Anyone else, and anyone from another practice, sees none of them."""
    membership = membership_of(user)
    if membership is None:
        return WorkloadAlert.objects.none()
    scope = WorkloadAlert.objects.in_practice(membership.practice)
    if membership.is_admin:
        return scope
    reach = Q(pk__in=[])
    if membership.is_clinician:
        reach |= Q(clinician=user)
    if membership.is_supervisor:
        supervisees = (
            SupervisionPairing.objects.current()
            .in_practice(membership.practice)
            .filter(supervisor=user)
        )
        reach |= Q(clinician__in=supervisees.values("supervisee"))
    return scope.filter(reach)
