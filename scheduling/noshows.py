"""No-shows: marked by a set-based sweep, then confirmed or corrected by the clinician.

The sweep never decides for the clinician: it marks a session whose end plus the
practice's grace period has passed with no attendance recorded as an *automatic* no-show
(``auto_no_show``) awaiting review (``needs_review``). The clinician confirms it or corrects
it to attended; both answers stay in the status history next to the sweep's own entry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict, cast

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, FloatField, Q, QuerySet, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django_stubs_ext import WithAnnotations

from practice.models import AuditEvent, Client, Practice, User
from practice.services import audit_record
from scheduling.models import (
    Appointment,
    AppointmentQuerySet,
    AppointmentStatusChange,
    Status,
)

Via = AppointmentStatusChange.Via
RATE_WINDOW = timedelta(days=90)
# Sessions that were due: the client either came or did not. Cancellations, late ones
# included, are not no-shows and do not count as due sessions either.
DUE_STATUSES = [Status.ATTENDED, Status.NO_SHOW]


class NoShowRate(TypedDict):
    """What the rate querysets annotate on each client or clinician."""

    sessions: int
    no_shows: int
    no_show_rate: float


def describe_grace(grace: timedelta) -> str:
    """15 minutes, 1 hour, 1 hour 30 minutes."""
    minutes = int(grace.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


@transaction.atomic
def noshow_sweep(*, now: datetime) -> list[int]:
    """Mark every open session whose end plus the practice's grace has passed as an
    automatic no-show awaiting the clinician's review. Returns the ids it marked.

    Set-based and idempotent: one locking SELECT finds all due sessions across practices,
    one UPDATE marks them, one INSERT records the history. A second run finds nothing; a
    sweep that missed ticks catches up, because it only compares with ``now``.
    """
    due = list(
        Appointment.objects.open()
        .alias(review_due_at=F("ends_at") + F("practice__no_show_grace"))
        .filter(review_due_at__lte=now)
        # skip_locked: a row a clinician is recording attendance for right now is theirs;
        # the next sweep looks at it again. of=self: never lock the practice row.
        .select_for_update(skip_locked=True, of=("self",))
        .values_list("pk", "status", "practice_id", "practice__no_show_grace")
    )
    if not due:
        return []
    ids = [pk for pk, _, _, _ in due]
    Appointment.objects.filter(pk__in=ids).update(
        status=Status.NO_SHOW,
        auto_no_show=True,
        needs_review=True,
        status_changed_at=now,
    )
    AppointmentStatusChange.objects.bulk_create(
        AppointmentStatusChange(
            appointment_id=pk,
            from_status=status,
            to_status=Status.NO_SHOW,
            changed_by=None,
            via=Via.SYSTEM,
            reason=(
                f"no attendance recorded by {describe_grace(grace)} after the end; "
                "please confirm or correct"
            ),
            at=now,
        )
        for pk, status, _, grace in due
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            practice_id=practice_id,
            actor=None,
            action="appointment.auto_no_show",
            object_type=Appointment._meta.label_lower,
            object_id=str(pk),
            at=now,
        )
        for pk, _, practice_id, _ in due
    )
    return ids


@transaction.atomic
def noshow_review(*, appointment: Appointment, actor: User, attended: bool) -> Appointment:
    """The clinician answers the sweep: confirm the no-show, or correct it to attended.

    Either answer is a row in the status history, so the sweep's guess and the
    clinician's correction both stay on the record.
    """
    # Lock the row: a double-clicked button or a second tab must not answer twice.
    locked = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("practice")
        .get(pk=appointment.pk)
    )
    if not (locked.status == Status.NO_SHOW and locked.auto_no_show and locked.needs_review):
        raise ValidationError("This session is not an automatic no-show awaiting review.")
    if attended:
        # ATTENDED holds the slot as NO_SHOW did, so no overlap constraint can fire here.
        locked.set_status(
            Status.ATTENDED, by=actor, via=Via.STAFF, reason="corrected: the client attended"
        )
    else:
        AppointmentStatusChange.objects.create(
            appointment=locked,
            from_status=Status.NO_SHOW,
            to_status=Status.NO_SHOW,
            changed_by=actor,
            via=Via.STAFF,
            reason="confirmed no-show",
        )
    # auto_no_show stays set: it records that the sweep marked the session, even when the
    # clinician corrected it. needs_review is the open question, and it is answered now.
    locked.needs_review = False
    locked.save(update_fields=["needs_review"])
    audit_record(
        actor=actor,
        action="appointment.no_show_corrected" if attended else "appointment.no_show_confirmed",
        obj=locked,
    )
    return locked


# --- Reads -------------------------------------------------------------------------------


def noshows_awaiting_review(clinician: User) -> AppointmentQuerySet:
    """The clinician's automatic no-shows they have not confirmed or corrected yet."""
    return (
        Appointment.objects.for_clinician(clinician)
        .filter(status=Status.NO_SHOW, auto_no_show=True, needs_review=True)
        .select_related("client")
        .order_by("starts_at", "pk")
    )


def _rate_counts(relation: str, *, now: datetime) -> tuple[Count, Count]:
    window = Q(
        **{
            f"{relation}__starts_at__gte": now - RATE_WINDOW,
            f"{relation}__starts_at__lt": now,
        }
    )
    sessions = Count(relation, filter=window & Q(**{f"{relation}__status__in": DUE_STATUSES}))
    no_shows = Count(relation, filter=window & Q(**{f"{relation}__status": Status.NO_SHOW}))
    return sessions, no_shows


def _rate() -> Coalesce:
    # NULLIF turns 0 sessions into NULL, so the division yields NULL instead of an error,
    # and COALESCE turns that into a rate of 0.
    return Coalesce(
        Cast("no_shows", FloatField()) / NullIf(Cast("sessions", FloatField()), Value(0.0)),
        Value(0.0),
        output_field=FloatField(),
    )


def no_show_rates_by_client(
    practice: Practice, *, now: datetime
) -> QuerySet[WithAnnotations[Client, NoShowRate]]:
    """The practice's clients, each annotated over the last 90 days with ``sessions``
    (attended plus no-show), ``no_shows`` and ``no_show_rate`` (0 without sessions).
    One query; late cancellations count as neither."""
    sessions, no_shows = _rate_counts("appointments", now=now)
    rates = (
        Client.objects.in_practice(practice)
        .annotate(sessions=sessions, no_shows=no_shows)
        .annotate(no_show_rate=_rate())
    )
    # django-stubs cannot relate a custom QuerySet subclass to its annotated form.
    return cast("QuerySet[WithAnnotations[Client, NoShowRate]]", rates)


def no_show_rates_by_clinician(
    practice: Practice, *, now: datetime
) -> QuerySet[WithAnnotations[User, NoShowRate]]:
    """The practice's clinicians (current and former), annotated like
    ``no_show_rates_by_client``. One query."""
    sessions, no_shows = _rate_counts("appointments", now=now)
    return (
        User.objects.filter(membership__practice=practice, membership__is_clinician=True)
        .annotate(sessions=sessions, no_shows=no_shows)
        .annotate(no_show_rate=_rate())
    )
