"""Booking workflows. Views, forms and tasks call these; PostgreSQL enforces no overlap."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.utils import timezone

from practice.models import Client, ClinicianProfile, Episode, Membership, Practice, User
from practice.queueing import enqueue_on_commit
from practice.services import audit_record
from scheduling.links import ClientLink, client_link_urls
from scheduling.models import (
    CANCELLED_STATUSES,
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    CalendarFeed,
    Kind,
    Location,
    RescheduleRequest,
    Status,
    TimeOff,
    UsedClientLink,
)

Via = AppointmentStatusChange.Via
OVERLAP_CONSTRAINTS = {"appointment_no_clinician_overlap", "appointment_no_client_overlap"}


class SlotTaken(ValidationError):
    """The database refused an overlapping booking; the message names the conflicting slot."""


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    kind: str = Kind.SESSION
    location: str = Location.IN_PERSON
    video_url: str = ""
    fee_waived: bool = False


@dataclass
class SeriesResult:
    series: AppointmentSeries
    booked: list[Appointment] = field(default_factory=list)
    conflicts: list[tuple[datetime, str]] = field(default_factory=list)


# --- Reading helpers ---------------------------------------------------------------------


def clinician_timezone(clinician: User) -> str:
    profile = (
        ClinicianProfile.objects.select_related("membership__practice")
        .filter(membership__user=clinician)
        .first()
    )
    if profile is not None:
        return profile.effective_timezone
    membership = Membership.objects.select_related("practice").filter(user=clinician).first()
    return membership.practice.timezone if membership else "UTC"


def describe_slot(appointment: Appointment, tz: str) -> str:
    start = appointment.starts_at.astimezone(zoneinfo.ZoneInfo(tz))
    end = appointment.ends_at.astimezone(zoneinfo.ZoneInfo(tz))
    return f"{start:%a %d %b %Y, %H:%M}–{end:%H:%M}"


def conflict_message(
    *, clinician: User, client: Client, starts_at: datetime, ends_at: datetime
) -> str:
    """Name what a refused booking collides with, in the clinician's local time."""
    tz = clinician_timezone(clinician)
    overlapping = Appointment.objects.overlapping(starts_at, ends_at).select_related("client")
    mine = overlapping.filter(clinician=clinician).first()
    if mine is not None:
        return (
            f"{clinician.get_full_name() or clinician.email} already has a session "
            f"{describe_slot(mine, tz)} (client {mine.client.initials})."
        )
    theirs = overlapping.filter(client=client).first()
    if theirs is not None:
        # Another clinician's session: say when, not with whom.
        return f"{client.full_name} already has a session {describe_slot(theirs, tz)}."
    return "That time was just taken by another booking. Choose another time."


def _overlap_error(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) in OVERLAP_CONSTRAINTS


def availability_warnings(*, clinician: User, starts_at: datetime, ends_at: datetime) -> list[str]:
    """Booking outside working hours or into time off is allowed, but said out loud."""
    warnings: list[str] = []
    profile = ClinicianProfile.objects.filter(membership__user=clinician).first()
    tz = zoneinfo.ZoneInfo(clinician_timezone(clinician))
    local_start, local_end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    if profile is not None:
        if local_start.isoweekday() not in profile.working_days:
            warnings.append(f"{local_start:%A} is not one of this clinician's working days.")
        elif (
            local_start.time() < profile.work_starts
            or local_end.time() > profile.work_ends
            or local_end.date() != local_start.date()
        ):
            warnings.append(
                f"This is outside working hours ({profile.work_starts:%H:%M}–"
                f"{profile.work_ends:%H:%M})."
            )
    off = TimeOff.objects.filter(clinician=clinician, starts_at__lt=ends_at, ends_at__gt=starts_at)
    for leave in off:
        warnings.append(
            f"The clinician is on time off then{f' ({leave.reason})' if leave.reason else ''}."
        )
    return warnings


def open_episode_for(*, client: Client, clinician: User) -> Episode:
    episode = Episode.objects.active().filter(client=client, clinician=clinician).first()
    if episode is None:
        raise ValidationError(
            {"client": "This client has no open episode with this clinician. Open one first."}
        )
    return episode


def _check_slot(slot: Slot) -> None:
    errors: dict[str, str] = {}
    if slot.ends_at <= slot.starts_at:
        errors["ends_at"] = "A session must end after it starts."
    elif slot.ends_at - slot.starts_at > timedelta(hours=8):
        errors["ends_at"] = "A session cannot last more than 8 hours."
    if slot.fee_waived and slot.kind != Kind.TERMINATION:
        errors["fee_waived"] = "Only a termination session can be fee-waived."
    if slot.location == Location.VIDEO and not slot.video_url:
        errors["video_url"] = "A video session needs its link."
    if errors:
        raise ValidationError(errors)


# --- Booking -----------------------------------------------------------------------------


CLINICIAN_LOCK, CLIENT_LOCK = 1, 2


def _lock_calendars(clinician_id: int, client_id: int) -> None:
    """Serialise writes to one clinician's and one client's calendar until commit.

    Concurrent inserts that collide on an exclusion constraint can deadlock each other in
    PostgreSQL. Taking transaction-scoped advisory locks first, always clinician then client,
    turns the race into a queue: the loser waits, then sees the winner's row and gets a
    clear SlotTaken instead of a deadlock error.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s), pg_advisory_xact_lock(%s, %s)",
            [CLINICIAN_LOCK, clinician_id, CLIENT_LOCK, client_id],
        )


def _insert(
    *,
    practice: Practice,
    clinician: User,
    client: Client,
    episode: Episode,
    slot: Slot,
    actor: User | None,
    series: AppointmentSeries | None = None,
    override_reason: str = "",
) -> Appointment:
    """Insert one appointment in a savepoint, turning an overlap into SlotTaken."""
    _lock_calendars(clinician.pk, client.pk)
    try:
        with transaction.atomic():
            appointment = Appointment.objects.create(
                practice=practice,
                clinician=clinician,
                client=client,
                episode=episode,
                series=series,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                kind=slot.kind,
                location=slot.location,
                video_url=slot.video_url if slot.location == Location.VIDEO else "",
                fee_waived=slot.fee_waived,
                override_reason=override_reason,
                created_by=actor,
            )
    except IntegrityError as exc:
        if _overlap_error(exc):
            raise SlotTaken(
                conflict_message(
                    clinician=clinician,
                    client=client,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                )
            ) from exc
        raise
    AppointmentStatusChange.objects.create(
        appointment=appointment,
        to_status=Status.SCHEDULED,
        changed_by=actor,
        via=Via.STAFF,
        reason="booked",
    )
    return appointment


def _check_parties(*, clinician: User, client: Client) -> Practice:
    practice = client.practice
    if (
        not Membership.objects.active()
        .in_practice(practice)
        .clinicians()
        .filter(user=clinician)
        .exists()
    ):
        raise ValidationError({"clinician": "Choose an active clinician of this practice."})
    return practice


@transaction.atomic
def appointment_book(
    *,
    clinician: User,
    client: Client,
    slot: Slot,
    actor: User,
    notify: bool = True,
    override_reason: str = "",
) -> Appointment:
    """Book one session. Raises SlotTaken (a ValidationError) when the slot is taken."""
    _check_slot(slot)
    practice = _check_parties(clinician=clinician, client=client)
    episode = open_episode_for(client=client, clinician=clinician)
    appointment = _insert(
        practice=practice,
        clinician=clinician,
        client=client,
        episode=episode,
        slot=slot,
        actor=actor,
        override_reason=override_reason,
    )
    audit_record(actor=actor, action="appointment.book", obj=appointment)
    if notify:
        _notify_booked([appointment])
    return appointment


@transaction.atomic
def series_create(
    *,
    clinician: User,
    client: Client,
    first: Slot,
    frequency: str,
    interval: int,
    until: date | None,
    count: int | None,
    actor: User,
    override_reason: str = "",
) -> SeriesResult:
    """Book every free occurrence of a series and report each one that conflicts."""
    _check_slot(first)
    if (until is None) == (count is None):
        raise ValidationError("End the series on a date or after a number of sessions.")
    practice = _check_parties(clinician=clinician, client=client)
    episode = open_episode_for(client=client, clinician=clinician)
    tz = clinician_timezone(clinician)
    if until is not None and until < first.starts_at.astimezone(zoneinfo.ZoneInfo(tz)).date():
        raise ValidationError({"until": "The series must end after its first session."})
    series = AppointmentSeries.objects.create(
        practice=practice,
        clinician=clinician,
        client=client,
        episode=episode,
        frequency=frequency,
        interval=interval,
        first_start=first.starts_at,
        duration=first.ends_at - first.starts_at,
        timezone=tz,
        until=until,
        count=count,
        created_by=actor,
    )
    result = SeriesResult(series=series)
    for start in series.occurrences():
        slot = Slot(
            starts_at=start,
            ends_at=start + series.duration,
            kind=first.kind,
            location=first.location,
            video_url=first.video_url,
        )
        try:
            result.booked.append(
                _insert(
                    practice=practice,
                    clinician=clinician,
                    client=client,
                    episode=episode,
                    slot=slot,
                    actor=actor,
                    series=series,
                    override_reason=override_reason,
                )
            )
        except SlotTaken as exc:
            result.conflicts.append((start, exc.messages[0]))
    audit_record(actor=actor, action="series.create", obj=series, practice=practice)
    if result.booked:
        _notify_booked(result.booked)
    return result


def _following(appointment: Appointment, scope: str) -> list[Appointment]:
    """The appointment itself, or it and the series' later occurrences that are still open."""
    if scope == "following" and appointment.series_id is not None:
        return list(
            Appointment.objects.open()
            .filter(series_id=appointment.series_id, starts_at__gte=appointment.starts_at)
            .select_for_update()
            .select_related("clinician", "client", "practice")
            .order_by("starts_at")
        )
    return [_locked_open(appointment)]


@transaction.atomic
def appointment_reschedule(
    *, appointment: Appointment, starts_at: datetime, ends_at: datetime, actor: User | None
) -> Appointment:
    """Move one session. The old client links stop working; a fresh notice goes out."""
    appointment = _locked_open(appointment)
    _check_slot(
        Slot(
            starts_at=starts_at,
            ends_at=ends_at,
            kind=appointment.kind,
            location=appointment.location,
            video_url=appointment.video_url,
            fee_waived=appointment.fee_waived,
        )
    )
    _move(appointment, starts_at, ends_at, actor)
    audit_record(actor=actor, action="appointment.reschedule", obj=appointment)
    _notify_booked([appointment])
    return appointment


def _locked_open(appointment: Appointment) -> Appointment:
    """Re-read the row under a lock: a stale copy must not revive a cancelled session."""
    locked = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("clinician", "client", "practice", "series")
        .get(pk=appointment.pk)
    )
    if not locked.is_open:
        raise ValidationError("Only a scheduled or confirmed session can be moved.")
    return locked


def _move(
    appointment: Appointment, starts_at: datetime, ends_at: datetime, actor: User | None
) -> None:
    previous_status = appointment.status
    _lock_calendars(appointment.clinician_id, appointment.client_id)
    try:
        with transaction.atomic():
            Appointment.objects.filter(pk=appointment.pk).update(
                starts_at=starts_at,
                ends_at=ends_at,
                status=Status.SCHEDULED,
                status_changed_at=timezone.now(),
                link_version=F("link_version") + 1,
            )
    except IntegrityError as exc:
        if _overlap_error(exc):
            raise SlotTaken(
                conflict_message(
                    clinician=appointment.clinician,
                    client=appointment.client,
                    starts_at=starts_at,
                    ends_at=ends_at,
                )
            ) from exc
        raise
    appointment.refresh_from_db()
    AppointmentStatusChange.objects.create(
        appointment=appointment,
        from_status=previous_status,
        to_status=Status.SCHEDULED,
        changed_by=actor,
        via=Via.STAFF,
        reason="rescheduled",
    )
    RescheduleRequest.objects.filter(appointment=appointment, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )


@transaction.atomic
def series_reschedule(
    *, appointment: Appointment, scope: str, new_time: time, duration: timedelta, actor: User
) -> SeriesResult:
    """Move this occurrence, or this and the following ones, to a new local time of day.

    Each occurrence keeps its date and takes the new wall-clock time in the series' zone;
    occurrences that would collide stay where they were and are reported.
    """
    if appointment.series is None:
        raise ValidationError("This session is not part of a series.")
    zone = zoneinfo.ZoneInfo(appointment.series.timezone)
    result = SeriesResult(series=appointment.series)
    for occurrence in _following(appointment, scope):
        local_day = occurrence.starts_at.astimezone(zone).date()
        starts_at = datetime.combine(local_day, new_time, tzinfo=zone)
        try:
            with transaction.atomic():
                _move(occurrence, starts_at, starts_at + duration, actor)
            result.booked.append(occurrence)
        except SlotTaken as exc:
            result.conflicts.append((starts_at, exc.messages[0]))
    audit_record(
        actor=actor,
        action="series.reschedule",
        obj=appointment.series,
        practice=appointment.practice,
    )
    if result.booked:
        _notify_booked(result.booked)
    return result


def _cancel_status(appointment: Appointment, by_client: bool, now: datetime) -> str:
    if not by_client:
        return Status.CANCELLED_BY_CLINICIAN
    window = appointment.practice.cancellation_window
    return (
        Status.LATE_CANCELLED
        if appointment.starts_at - now < window
        else Status.CANCELLED_BY_CLIENT
    )


@transaction.atomic
def appointment_cancel(
    *,
    appointment: Appointment,
    by_client: bool,
    actor: User | None,
    via: str,
    reason: str = "",
    scope: str = "this",
) -> list[Appointment]:
    """Cancel a session (or it and the series' following ones). Inside the practice's
    cancellation window a client's cancellation is recorded as late."""
    locked = (
        Appointment.objects.select_for_update().select_related("practice").get(pk=appointment.pk)
    )
    if not locked.is_open:
        raise ValidationError("This session was already cancelled or has taken place.")
    now = timezone.now()
    cancelled = []
    for occurrence in _following(locked, scope):
        occurrence.set_status(
            _cancel_status(occurrence, by_client, now), by=actor, via=via, reason=reason, at=now
        )
        cancelled.append(occurrence)
    audit_record(actor=actor, action="appointment.cancel", obj=locked)
    return cancelled


@transaction.atomic
def appointment_record_attendance(
    *, appointment: Appointment, status: str, actor: User
) -> Appointment:
    """Attended, no-show or late cancel, recorded by staff once the session has begun."""
    if status not in (Status.ATTENDED, Status.NO_SHOW, Status.LATE_CANCELLED):
        raise ValidationError("Choose attended, no-show or late cancel.")
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if status in (Status.ATTENDED, Status.NO_SHOW) and locked.starts_at > timezone.now():
        raise ValidationError("Attendance can be recorded once the session has begun.")
    if locked.status == status:
        return locked
    if locked.status in CANCELLED_STATUSES:
        # Its slot is free and may be booked again; reviving it would double-book.
        raise ValidationError("This session was cancelled; book a new one instead.")
    try:
        with transaction.atomic():
            locked.set_status(status, by=actor, via=Via.STAFF, reason="attendance recorded")
            if locked.needs_review:
                # Recording attendance answers the no-show sweep's question too.
                locked.needs_review = False
                locked.save(update_fields=["needs_review"])
    except IntegrityError as exc:
        if _overlap_error(exc):
            raise ValidationError("That time is now taken by another session.") from exc
        raise
    audit_record(actor=actor, action="appointment.attendance", obj=locked)
    return locked


# --- Client actions (signed links and portal) --------------------------------------------


def _claim_link(link: ClientLink) -> None:
    """Record the link as used, in the caller's transaction: a replay hits the unique row."""
    try:
        with transaction.atomic():
            UsedClientLink.objects.create(
                digest=link.digest, appointment=link.appointment, action=link.action
            )
    except IntegrityError as exc:
        raise ValidationError("This link was already used. Each link works once.") from exc


@transaction.atomic
def appointment_confirm(
    *, appointment: Appointment, via: str, link: ClientLink | None = None, actor: User | None = None
) -> Appointment:
    if link is not None:
        _claim_link(link)
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not locked.is_open or locked.starts_at <= timezone.now():
        raise ValidationError("This session can no longer be confirmed.")
    if locked.status != Status.CONFIRMED:
        locked.set_status(Status.CONFIRMED, by=actor, via=via, reason="confirmed by the client")
        audit_record(actor=actor, action=f"appointment.confirm.{via}", obj=locked)
    return locked


@transaction.atomic
def appointment_client_cancel(
    *,
    appointment: Appointment,
    via: str,
    reason: str,
    link: ClientLink | None = None,
    actor: User | None = None,
) -> Appointment:
    if link is not None:
        _claim_link(link)
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if locked.starts_at <= timezone.now():
        raise ValidationError("This session has already begun.")
    return appointment_cancel(
        appointment=locked, by_client=True, actor=actor, via=via, reason=reason
    )[0]


@transaction.atomic
def appointment_request_reschedule(
    *,
    appointment: Appointment,
    message: str,
    via: str,
    link: ClientLink | None = None,
    actor: User | None = None,
) -> RescheduleRequest:
    if link is not None:
        _claim_link(link)
    message = message.strip()
    if not message:
        raise ValidationError({"message": "Tell your clinician which times would suit you."})
    # Lock the row: a cancellation arriving at the same moment must not interleave.
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not appointment.is_open or appointment.starts_at <= timezone.now():
        raise ValidationError("This session can no longer be moved.")
    request = RescheduleRequest.objects.create(appointment=appointment, message=message[:1000])
    audit_record(actor=actor, action=f"appointment.reschedule_request.{via}", obj=appointment)
    AppointmentStatusChange.objects.create(
        appointment=appointment,
        from_status=appointment.status,
        to_status=appointment.status,
        changed_by=actor,
        via=via,
        reason="asked to reschedule",
    )
    return request


# --- Notices to clients ------------------------------------------------------------------


def _notify_booked(appointments: Iterable[Appointment]) -> None:
    from scheduling.tasks import send_booking_notice

    ids = [a.pk for a in appointments]
    if ids:
        enqueue_on_commit(send_booking_notice, ids)


def booking_notice_send(*, appointment_ids: list[int]) -> bool:
    """Email the client their booked sessions, with confirm, cancel and reschedule links for
    the first one. Carries no clinical content: dates, times, place and clinician's name."""
    appointments = list(
        Appointment.objects.open()
        .upcoming()
        .filter(pk__in=appointment_ids)
        .select_related("client", "clinician", "practice")
        .order_by("starts_at")
    )
    if not appointments or not appointments[0].client.email:
        return False
    first = appointments[0]
    tz = first.client.effective_timezone
    context: dict[str, Any] = {
        "client": first.client,
        "practice": first.practice,
        "clinician": first.clinician,
        "first": first,
        "sessions": [(a, a.starts_at.astimezone(zoneinfo.ZoneInfo(tz))) for a in appointments],
        "links": client_link_urls(first),
        "tz": tz,
    }
    message = EmailMultiAlternatives(
        subject=f"Your appointment{pluralize(len(appointments))} with {first.practice.name}",
        body=render_to_string("emails/booking_notice.txt", context),
        to=[first.client.email],
    )
    message.attach_alternative(render_to_string("emails/booking_notice.html", context), "text/html")
    message.send()
    return True


# --- Availability ------------------------------------------------------------------------


def time_off_add(
    *, clinician: User, starts_at: datetime, ends_at: datetime, reason: str, actor: User
) -> TimeOff:
    """Record leave. Sessions already booked in it stay; the booking form warns from now on."""
    if ends_at <= starts_at:
        raise ValidationError({"last_day": "Time off must end on or after its first day."})
    with transaction.atomic():
        leave = TimeOff.objects.create(
            clinician=clinician, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
        audit_record(
            actor=actor, action="time_off.add", obj=leave, practice=_practice_of(clinician)
        )
    return leave


def time_off_remove(*, leave: TimeOff, actor: User) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor, action="time_off.remove", obj=leave, practice=_practice_of(leave.clinician)
        )
        leave.delete()


# --- Calendar feeds ----------------------------------------------------------------------


def _practice_of(user: User) -> Practice | None:
    membership = Membership.objects.select_related("practice").filter(user=user).first()
    return membership.practice if membership else None


def calendar_feed_regenerate(*, clinician: User) -> CalendarFeed:
    """A new secret URL; the old one stops working at once."""
    with transaction.atomic():
        CalendarFeed.objects.filter(clinician=clinician).delete()
        feed = CalendarFeed.objects.create(clinician=clinician)
        audit_record(
            actor=clinician,
            action="calendar_feed.regenerate",
            obj=feed,
            practice=_practice_of(clinician),
        )
    return feed


def calendar_feed_revoke(*, clinician: User) -> None:
    with transaction.atomic():
        CalendarFeed.objects.filter(clinician=clinician).delete()
        audit_record(
            actor=clinician, action="calendar_feed.revoke", practice=_practice_of(clinician)
        )
