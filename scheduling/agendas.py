"""Clinicians are reminded too: a daily agenda, and a heads-up the evening before a session
on a rest day, a non-working day or outside working hours.

Each email is one ClinicianNotice row, unique per (clinician, kind, day). Sweeps insert the
rows that fell due (ON CONFLICT DO NOTHING) and return the unsent ones; a worker claims a row
with a conditional UPDATE of ``sent_at`` before it sends, gives the claim back if sending
fails, and records ``delivered_at`` once the email left, so a retried task sends again and a
duplicated task does not. A claim left without delivery for 5 minutes (the worker was
killed mid-send) is handed out again by the next sweep.

Email is not a secure channel: these messages carry times, client initials and the kind of
session only. No names, no video links, nothing clinical.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from practice.models import ClinicianProfile
from scheduling import claims
from scheduling.models import Appointment, ClinicianNotice, Status

NoticeKind = ClinicianNotice.Kind
# The heads-up goes out in the evening before the unusual day, from this local time on.
HEADS_UP_FROM = time(18, 0)


@dataclass(frozen=True)
class AgendaLine:
    appointment: Appointment
    note: str


# --- Reading helpers ---------------------------------------------------------------------


def _active_profiles() -> list[ClinicianProfile]:
    """Profiles of clinicians whose membership and login are both active."""
    return list(
        ClinicianProfile.objects.filter(
            membership__is_active=True,
            membership__is_clinician=True,
            membership__user__is_active=True,
        ).select_related("membership__practice", "membership__user")
    )


def _profile_of(clinician_id: int) -> ClinicianProfile | None:
    return (
        ClinicianProfile.objects.filter(
            membership__user_id=clinician_id,
            membership__is_active=True,
            membership__is_clinician=True,
            membership__user__is_active=True,
        )
        .select_related("membership__practice", "membership__user")
        .first()
    )


def _zone(profile: ClinicianProfile) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(profile.effective_timezone)


def _day_window(day: date, zone: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, which is not always 24 hours apart."""
    return (
        datetime.combine(day, time.min, tzinfo=zone),
        datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone),
    )


def _sessions_on(days: dict[int, tuple[date, zoneinfo.ZoneInfo]]) -> list[Appointment]:
    """Active sessions starting on each clinician's own local day, in one query."""
    if not days:
        return []
    windows = [
        Q(clinician_id=clinician_id, starts_at__gte=start, starts_at__lt=end)
        for clinician_id, (day, zone) in days.items()
        for start, end in [_day_window(day, zone)]
    ]
    return list(
        Appointment.objects.active()
        .filter(reduce(or_, windows))
        .select_related("client")
        .order_by("clinician_id", "starts_at", "pk")
    )


def unusual_because(appointment: Appointment, profile: ClinicianProfile) -> str | None:
    """Why a session falls outside the clinician's pattern, or None if it does not."""
    zone = _zone(profile)
    start, end = appointment.starts_at.astimezone(zone), appointment.ends_at.astimezone(zone)
    if start.isoweekday() in profile.membership.practice.rest_days:
        return f"{start:%A} is a rest day"
    if start.isoweekday() not in profile.working_days:
        return f"{start:%A} is not one of your working days"
    if (
        start.time() < profile.work_starts
        or end.time() > profile.work_ends
        or end.date() != start.date()
    ):
        return f"outside your working hours {profile.work_starts:%H:%M}–{profile.work_ends:%H:%M}"
    return None


# A claim this old without a delivery belongs to a worker that died mid-send.
CLAIM_TIMEOUT = claims.CLAIM_TIMEOUT


def _unsent(now: datetime) -> Q:
    return Q(sent_at__isnull=True) | Q(delivered_at__isnull=True, sent_at__lt=now - CLAIM_TIMEOUT)


def _notices_to_send(kind: str, due: dict[int, date], now: datetime) -> list[int]:
    """Insert the due notices unless they exist, then return every one not sent yet.

    ON CONFLICT DO NOTHING makes concurrent sweeps safe; selecting by ``sent_at IS NULL``
    (rather than "rows this sweep inserted") hands out again a notice whose task was lost,
    and the claim in the sender stops a second send.
    """
    if not due:
        return []
    ClinicianNotice.objects.bulk_create(
        [
            ClinicianNotice(clinician_id=clinician_id, kind=kind, for_date=day)
            for clinician_id, day in due.items()
        ],
        ignore_conflicts=True,
    )
    pairs = [Q(clinician_id=clinician_id, for_date=day) for clinician_id, day in due.items()]
    return list(
        ClinicianNotice.objects.filter(_unsent(now), kind=kind)
        .filter(reduce(or_, pairs))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# --- Sweeps ------------------------------------------------------------------------------


def agenda_sweep(*, now: datetime) -> list[int]:
    """The agenda notices to send now: one per clinician whose local agenda time has
    passed today and who has sessions today. Returns the ids of unsent notices.

    Only the clinician's local *today* counts: a sweep that was down all day sends today's
    agenda late, never yesterday's. A free day gets no email: on a rest day, a message
    saying there is nothing to do is itself an intrusion.
    """
    days: dict[int, tuple[date, zoneinfo.ZoneInfo]] = {}
    for profile in _active_profiles():
        local = now.astimezone(_zone(profile))
        if local.time() >= profile.agenda_time:
            days[profile.membership.user_id] = (local.date(), _zone(profile))
    busy = {appointment.clinician_id for appointment in _sessions_on(days)}
    due = {clinician_id: days[clinician_id][0] for clinician_id in busy}
    return _notices_to_send(NoticeKind.AGENDA, due, now)


def heads_up_sweep(*, now: datetime) -> list[int]:
    """The heads-up notices to send now: one per clinician who, at or after 18:00 local
    time, has a session tomorrow on a rest day, a non-working day or outside working hours.
    Returns the ids of unsent notices."""
    profiles = {profile.membership.user_id: profile for profile in _active_profiles()}
    days: dict[int, tuple[date, zoneinfo.ZoneInfo]] = {}
    for clinician_id, profile in profiles.items():
        local = now.astimezone(_zone(profile))
        if local.time() >= HEADS_UP_FROM:
            days[clinician_id] = (local.date() + timedelta(days=1), _zone(profile))
    due = {
        appointment.clinician_id: days[appointment.clinician_id][0]
        for appointment in _sessions_on(days)
        if unusual_because(appointment, profiles[appointment.clinician_id]) is not None
    }
    return _notices_to_send(NoticeKind.HEADS_UP, due, now)


# --- Sending -----------------------------------------------------------------------------


Compose = Callable[[ClinicianNotice, ClinicianProfile], EmailMultiAlternatives | None]


def _claim_and_send(*, notice_id: int, kind: str, compose: Compose) -> bool:
    """Claim the notice, compose and send its email; give the claim back if that fails."""
    claimed_at = timezone.now()
    claimed = ClinicianNotice.objects.filter(_unsent(claimed_at), pk=notice_id, kind=kind).update(
        sent_at=claimed_at
    )
    if not claimed:
        return False  # sent already, or another worker is sending it right now
    try:
        notice = ClinicianNotice.objects.get(pk=notice_id)
        profile = _profile_of(notice.clinician_id)
        # A clinician who left, or a day whose sessions were all cancelled since the sweep:
        # nothing to say. The claim stays, so the day counts as handled.
        message = compose(notice, profile) if profile is not None else None
        if message is None:
            _delivered(notice_id, claimed_at)
            return False
        message.send()
        _delivered(notice_id, claimed_at)
    except BaseException:
        # Give the claim back so the task's retry (or the next sweep) sends it. Matching on
        # our own timestamp never releases a claim that is not ours.
        ClinicianNotice.objects.filter(pk=notice_id, sent_at=claimed_at).update(sent_at=None)
        raise
    return True


def _delivered(notice_id: int, claimed_at: datetime) -> None:
    ClinicianNotice.objects.filter(pk=notice_id, sent_at=claimed_at).update(
        delivered_at=timezone.now()
    )


def _email(
    *, profile: ClinicianProfile, subject: str, template: str, context: dict[str, Any]
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        to=[profile.membership.user.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    return message


def _context(
    notice: ClinicianNotice, profile: ClinicianProfile, lines: Iterable[AgendaLine]
) -> dict[str, Any]:
    query = f"?date={notice.for_date.isoformat()}"
    return {
        "clinician": profile.membership.user,
        "practice": profile.membership.practice,
        "day": notice.for_date,
        "tz": profile.effective_timezone,
        "lines": list(lines),
        "calendar_url": f"{settings.SITE_URL}{reverse('calendar_day')}{query}",
    }


def _day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def _day_sessions(notice: ClinicianNotice, profile: ClinicianProfile) -> list[Appointment]:
    return _sessions_on({notice.clinician_id: (notice.for_date, _zone(profile))})


def _compose_agenda(
    notice: ClinicianNotice, profile: ClinicianProfile
) -> EmailMultiAlternatives | None:
    sessions = _day_sessions(notice, profile)
    if not sessions:
        return None
    lines = [
        AgendaLine(a, "not confirmed yet" if a.status == Status.SCHEDULED else "") for a in sessions
    ]
    context = _context(notice, profile, lines)
    context["unconfirmed"] = sum(1 for line in lines if line.note)
    count, day = len(sessions), _day_label(notice.for_date)
    return _email(
        profile=profile,
        subject=f"Your agenda for {day}: {count} session{pluralize(count)}",
        template="agenda",
        context=context,
    )


def _compose_heads_up(
    notice: ClinicianNotice, profile: ClinicianProfile
) -> EmailMultiAlternatives | None:
    lines = [
        AgendaLine(a, why)
        for a in _day_sessions(notice, profile)
        if (why := unusual_because(a, profile)) is not None
    ]
    if not lines:
        return None
    return _email(
        profile=profile,
        subject=(
            f"Tomorrow, {_day_label(notice.for_date)}: "
            f"{len(lines)} session{pluralize(len(lines))} outside your usual pattern"
        ),
        template="heads_up",
        context=_context(notice, profile, lines),
    )


def agenda_send(*, notice_id: int) -> bool:
    """Email the clinician the day's sessions, unconfirmed ones flagged. Sends at most once
    per notice; returns False if it was sent already or there is nothing left to list.
    Raises what the email backend raised, after giving the claim back."""
    return _claim_and_send(notice_id=notice_id, kind=NoticeKind.AGENDA, compose=_compose_agenda)


def heads_up_send(*, notice_id: int) -> bool:
    """Email the clinician, the evening before, which of tomorrow's sessions fall outside
    their pattern and why. Same claim and return value as ``agenda_send``."""
    return _claim_and_send(notice_id=notice_id, kind=NoticeKind.HEADS_UP, compose=_compose_heads_up)
