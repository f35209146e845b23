"""Appointments and series, availability, client links and calendar feeds."""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from dateutil import rrule
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models import Func, Q
from django.db.models.functions import Cast
from django.utils import timezone

from practice.models import Client, Episode, Practice, User


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class Kind(models.TextChoices):
    INTAKE = "intake", "Intake"
    SESSION = "session", "Session"
    TERMINATION = "termination", "Termination session"


class Location(models.TextChoices):
    IN_PERSON = "in_person", "In person"
    VIDEO = "video", "Video"


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CONFIRMED = "confirmed", "Confirmed"
    ATTENDED = "attended", "Attended"
    NO_SHOW = "no_show", "No-show"
    CANCELLED_BY_CLIENT = "cancelled_client", "Cancelled by the client"
    CANCELLED_BY_CLINICIAN = "cancelled_clinician", "Cancelled by the clinician"
    LATE_CANCELLED = "late_cancelled", "Late-cancelled"


# Statuses that hold the slot. Every kind of cancellation frees it.
ACTIVE_STATUSES = [Status.SCHEDULED, Status.CONFIRMED, Status.ATTENDED, Status.NO_SHOW]
CANCELLED_STATUSES = [
    Status.CANCELLED_BY_CLIENT,
    Status.CANCELLED_BY_CLINICIAN,
    Status.LATE_CANCELLED,
]
OPEN_STATUSES = [Status.SCHEDULED, Status.CONFIRMED]


class TimeOff(models.Model):
    """A clinician's leave. Booking into it warns but is allowed."""

    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_off"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="time_off_ends_after_start",
                violation_error_message="Time off must end after it starts.",
            )
        ]

    def __str__(self) -> str:
        return f"Time off {self.starts_at:%Y-%m-%d} – {self.ends_at:%Y-%m-%d}"


class AppointmentSeries(models.Model):
    """A recurring booking. Occurrences keep their wall-clock time in ``timezone``."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Every N weeks"
        MONTHLY_WEEKDAY = "monthly_weekday", "Monthly, same weekday (e.g. 2nd Tuesday)"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="series")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="series")
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    interval = models.PositiveSmallIntegerField(default=1)
    first_start = models.DateTimeField()
    duration = models.DurationField()
    timezone = models.CharField(max_length=64)
    until = models.DateField(null=True, blank=True)
    count = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    MAX_OCCURRENCES: ClassVar[int] = 104

    class Meta:
        verbose_name_plural = "appointment series"
        constraints = [
            models.CheckConstraint(
                condition=Q(until__isnull=True, count__isnull=False)
                | Q(until__isnull=False, count__isnull=True),
                name="series_ends_by_date_or_count",
            ),
            models.CheckConstraint(
                condition=Q(interval__gte=1) & Q(interval__lte=12), name="series_interval_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_frequency_display()} from {self.first_start:%Y-%m-%d}"

    def occurrences(self) -> list[datetime]:
        """Start times of every occurrence, aware, at the same local wall-clock time."""
        return series_occurrences(
            first_start=self.first_start,
            tz=self.timezone,
            frequency=self.frequency,
            interval=self.interval,
            until=self.until,
            count=self.count,
        )


def series_occurrences(
    *,
    first_start: datetime,
    tz: str,
    frequency: str,
    interval: int,
    until: date | None,
    count: int | None,
) -> list[datetime]:
    """Expand a recurrence with dateutil's rrule in *local* time, then attach the zone.

    Expanding naive local times keeps 10:00 at 10:00 across DST changes; expanding aware
    UTC times would drift by an hour twice a year.
    """
    zone = zoneinfo.ZoneInfo(tz)
    local_start = first_start.astimezone(zone).replace(tzinfo=None)
    options: dict[str, object] = {"dtstart": local_start, "interval": interval}
    if frequency == AppointmentSeries.Frequency.WEEKLY:
        freq = rrule.WEEKLY
    else:
        freq = rrule.MONTHLY
        nth = (local_start.day - 1) // 7 + 1
        # The 5th weekday of a month does not always exist: use "the last" instead.
        options["byweekday"] = rrule.weekday(local_start.weekday(), -1 if nth == 5 else nth)
    if count is not None:
        options["count"] = min(count, AppointmentSeries.MAX_OCCURRENCES)
    if until is not None:
        options["until"] = datetime.combine(until, local_start.time())
    starts = list(rrule.rrule(freq, **options))[: AppointmentSeries.MAX_OCCURRENCES]  # type: ignore[arg-type]
    return [moment.replace(tzinfo=zone) for moment in starts]


class AppointmentQuerySet(models.QuerySet["Appointment"]):
    def active(self) -> AppointmentQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def open(self) -> AppointmentQuerySet:
        """Scheduled or confirmed: nothing has happened yet."""
        return self.filter(status__in=OPEN_STATUSES)

    def cancelled(self) -> AppointmentQuerySet:
        return self.filter(status__in=CANCELLED_STATUSES)

    def upcoming(self, now: datetime | None = None) -> AppointmentQuerySet:
        return self.filter(starts_at__gte=now or timezone.now())

    def past(self, now: datetime | None = None) -> AppointmentQuerySet:
        return self.filter(starts_at__lt=now or timezone.now())

    def between(self, start: datetime, end: datetime) -> AppointmentQuerySet:
        return self.filter(starts_at__lt=end, ends_at__gt=start)

    def for_clinician(self, clinician: User) -> AppointmentQuerySet:
        return self.filter(clinician=clinician)

    def for_client(self, client: Client) -> AppointmentQuerySet:
        return self.filter(client=client)

    def in_practice(self, practice: Practice) -> AppointmentQuerySet:
        return self.filter(practice=practice)

    def overlapping(self, start: datetime, end: datetime) -> AppointmentQuerySet:
        return self.active().between(start, end)

    def awaiting_review(self) -> AppointmentQuerySet:
        """Automatic no-shows the clinician has not confirmed or corrected yet."""
        return self.filter(status=Status.NO_SHOW, auto_no_show=True, needs_review=True)

    def no_show_rates(self, by: str, *, now: datetime, days: int = 90) -> models.QuerySet[Any]:
        """Rows of ``{by, sessions, no_shows, no_show_rate}`` over the last ``days``, where
        ``by`` is "client" or "clinician". Sessions are those that fell due (attended or
        no-show); late cancellations count as neither. One grouped query."""
        if by not in ("client", "clinician"):
            raise ValueError("no_show_rates groups by 'client' or 'clinician'")
        rows: models.QuerySet[Any] = (
            self.filter(
                starts_at__gte=now - timedelta(days=days),
                starts_at__lt=now,
                status__in=[Status.ATTENDED, Status.NO_SHOW],
            )
            .values(by)
            .annotate(
                sessions=models.Count("pk"),
                no_shows=models.Count("pk", filter=Q(status=Status.NO_SHOW)),
            )
            .annotate(
                no_show_rate=Cast("no_shows", models.FloatField())
                / Cast("sessions", models.FloatField())
            )
            .order_by(by)
        )
        return rows

    def booked_hours_by_clinician(self, start: datetime, end: datetime) -> dict[int, float]:
        """Hours of sessions that hold the slot (booked, attended or no-show), per clinician,
        for sessions starting in [start, end). One grouped query."""
        rows = (
            self.filter(starts_at__gte=start, starts_at__lt=end, status__in=ACTIVE_STATUSES)
            .values("clinician")
            .annotate(booked=models.Sum(models.F("ends_at") - models.F("starts_at")))
            .order_by()
        )
        return {row["clinician"]: row["booked"].total_seconds() / 3600 for row in rows}


class Appointment(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="appointments")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments"
    )
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="appointments")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="appointments")
    series = models.ForeignKey(
        AppointmentSeries,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SESSION)
    fee_waived = models.BooleanField(
        default=False, help_text="Only for a termination session: the free ending session."
    )
    location = models.CharField(max_length=10, choices=Location.choices, default=Location.IN_PERSON)
    video_url = models.URLField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Bumped on every reschedule, so links sent for the old time stop working.
    link_version = models.PositiveIntegerField(default=1)
    # Set by the no-show sweep; the clinician confirms or corrects it.
    auto_no_show = models.BooleanField(default=False)
    needs_review = models.BooleanField(default=False)
    override_reason = models.TextField(
        blank=True, help_text="Why the booking went past a workload limit, when the practice asks."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The session's id in a system imported from."
    )

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["clinician", "starts_at"]),
            models.Index(fields=["client", "starts_at"]),
            models.Index(fields=["practice", "starts_at"]),
        ]
        constraints = [
            # Import is idempotent by external id: one session per id per practice.
            models.UniqueConstraint(
                fields=["practice", "external_id"],
                condition=~Q(external_id=""),
                name="appointment_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="appointment_ends_after_start",
                violation_error_message="A session must end after it starts.",
            ),
            models.CheckConstraint(
                condition=Q(fee_waived=False) | Q(kind="termination"),
                name="appointment_only_termination_fee_waived",
                violation_error_message="Only a termination session can be fee-waived.",
            ),
            models.CheckConstraint(
                condition=~Q(location="video") | ~Q(video_url=""),
                name="appointment_video_has_link",
                violation_error_message="A video session needs its link.",
            ),
            # The calendar's central promise: nobody is double-booked. Cancelled rows keep
            # their times for the record but no longer hold the slot.
            ExclusionConstraint(
                name="appointment_no_clinician_overlap",
                expressions=[
                    (
                        TsTzRange("starts_at", "ends_at", models.Value("[)")),
                        RangeOperators.OVERLAPS,
                    ),
                    ("clinician", RangeOperators.EQUAL),
                ],
                condition=Q(status__in=ACTIVE_STATUSES),
            ),
            ExclusionConstraint(
                name="appointment_no_client_overlap",
                expressions=[
                    (
                        TsTzRange("starts_at", "ends_at", models.Value("[)")),
                        RangeOperators.OVERLAPS,
                    ),
                    ("client", RangeOperators.EQUAL),
                ],
                condition=Q(status__in=ACTIVE_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at

    def local_start(self, tz: str) -> datetime:
        return self.starts_at.astimezone(zoneinfo.ZoneInfo(tz))

    def set_status(
        self,
        status: str,
        *,
        by: User | None,
        via: str,
        reason: str = "",
        at: datetime | None = None,
    ) -> AppointmentStatusChange:
        """Change the status and keep who changed it, when, how and why."""
        change = AppointmentStatusChange.objects.create(
            appointment=self,
            from_status=self.status,
            to_status=status,
            changed_by=by if by is not None and by.is_authenticated else None,
            via=via,
            reason=reason,
            at=at or timezone.now(),
        )
        self.status = status
        self.status_changed_at = change.at
        self.save(update_fields=["status", "status_changed_at"])
        return change


class AppointmentStatusChange(models.Model):
    class Via(models.TextChoices):
        STAFF = "staff", "Staff"
        CLIENT_LINK = "client_link", "Client link"
        PORTAL = "portal", "Client portal"
        SYSTEM = "system", "System"

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    via = models.CharField(max_length=12, choices=Via.choices)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or 'new'} → {self.to_status}"


class RescheduleRequest(models.Model):
    """A client asked for another time. The clinician sees it and answers by rescheduling."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="reschedule_requests"
    )
    message = models.TextField(max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Reschedule request for {self.appointment}"


class UsedClientLink(models.Model):
    """One row per client link that was used: a unique digest makes each link single-use."""

    digest = models.CharField(max_length=64, unique=True)
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=12)
    used_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} link used {self.used_at:%Y-%m-%d %H:%M}"


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeed(models.Model):
    """A clinician's secret iCal subscription URL. Regenerating revokes the old one."""

    clinician = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Calendar feed of {self.clinician}"


class ReminderDelivery(models.Model):
    """One reminder: unique per (appointment, offset, channel, the start it was planned for).

    The row is the claim: a worker moves it from pending to sending with a conditional
    UPDATE before it sends, so a retried or duplicated task never sends twice. A move of the
    session gives new rows for the new start; the old ones are skipped with a reason.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    offset = models.DurationField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    session_start = models.DateTimeField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True, help_text="The error, or why it was skipped.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "offset", "channel", "session_start"],
                name="reminder_once_per_offset_channel_start",
            )
        ]
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return f"{self.channel} reminder {self.offset} before {self.session_start:%Y-%m-%d %H:%M}"


class ClinicianNotice(models.Model):
    """Agendas and evening-before heads-ups for clinicians, at most one per kind and day."""

    class Kind(models.TextChoices):
        AGENDA = "agenda", "Daily agenda"
        HEADS_UP = "heads_up", "Evening-before reminder"

    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    for_date = models.DateField()
    # Claimed (the send began) and delivered (the email left). A claim that never got its
    # delivery is a worker that died mid-send; after a timeout the sweep hands it out again.
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinician", "kind", "for_date"], name="notice_once_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.for_date}"


class WorkloadAlertQuerySet(models.QuerySet["WorkloadAlert"]):
    def open(self) -> WorkloadAlertQuerySet:
        return self.filter(resolved_at__isnull=True)

    def for_clinician(self, clinician: User) -> WorkloadAlertQuerySet:
        return self.filter(clinician=clinician)

    def in_practice(self, practice: Practice) -> WorkloadAlertQuerySet:
        return self.filter(practice=practice)


class WorkloadAlert(models.Model):
    """One row per (clinician, ISO week, condition): burnout signals, measured against policy.

    Sweeps upsert the measured value, and resolve the row (with a timestamp) when the
    condition clears; they never duplicate it.
    """

    class Kind(models.TextChoices):
        WEEKLY_HOURS = "weekly_hours", "Booked hours over the weekly cap"
        DAILY_SESSIONS = "daily_sessions", "Sessions over the daily cap"
        NO_REST_DAY = "no_rest_day", "No rest day in the week"
        REST_DAY_SESSIONS = "rest_day_sessions", "Sessions on rest days"
        SHORT_BREAKS = "short_breaks", "Breaks shorter than the minimum"
        OUTSIDE_HOURS = "outside_hours", "Sessions outside working hours"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workload_alerts"
    )
    week_start = models.DateField(help_text="Monday of the ISO week, in the clinician's zone.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    measured = models.DecimalField(max_digits=8, decimal_places=2)
    limit = models.DecimalField(max_digits=8, decimal_places=2)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = WorkloadAlertQuerySet.as_manager()

    class Meta:
        ordering = ["-week_start", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinician", "week_start", "kind"], name="workload_alert_once_per_week"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()}: {self.measured} of {self.limit} (week {self.week_start})"
        )


class ShortLink(models.Model):
    """A short code for links in SMS, which must fit in 160 characters."""

    code = models.CharField(max_length=12, unique=True)
    target = models.CharField(max_length=2000)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.code
