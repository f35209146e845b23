"""The core every other app builds on: practices, people, episodes of care, supervision, audit."""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateRangeField, RangeOperators
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Func, Q
from django.utils import timezone

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone, e.g. Europe/Berlin.")


def default_reminder_offsets() -> list[timedelta]:
    return [timedelta(hours=48), timedelta(hours=2)]


def default_rest_days() -> list[int]:
    # ISO weekdays: Saturday and Sunday.
    return [6, 7]


def default_reminder_channels() -> list[str]:
    return ["email", "sms"]


def default_working_days() -> list[int]:
    return [1, 2, 3, 4, 5]


class Weekday(models.IntegerChoices):
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in: staff (through a Membership) or a client (through Client.user)."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    if TYPE_CHECKING:
        membership: Membership
        client_record: Client

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class Practice(models.Model):
    """A group practice and the policies its scheduling and alliance sweeps read."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    reminder_offsets = ArrayField(
        models.DurationField(),
        default=default_reminder_offsets,
        help_text="How long before a session the client is reminded.",
    )
    reminder_channels = ArrayField(
        models.CharField(max_length=8, choices=[("email", "Email"), ("sms", "SMS")]),
        default=default_reminder_channels,
    )
    # No SMS in the client's night. Email may arrive any time: it does not wake anyone.
    sms_quiet_starts = models.TimeField(default=time(21, 0))
    sms_quiet_ends = models.TimeField(default=time(8, 0))
    cancellation_window = models.DurationField(default=timedelta(hours=24))
    weekly_hours_cap = models.PositiveSmallIntegerField(
        default=30, help_text="Booked clinical hours per clinician per week."
    )
    daily_session_cap = models.PositiveSmallIntegerField(default=8)
    minimum_break = models.DurationField(default=timedelta(minutes=10))
    rest_days = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices), default=default_rest_days
    )
    outreach_limit = models.PositiveSmallIntegerField(
        default=3, help_text="At most this many outreach attempts after a client leaves angry."
    )
    no_show_grace = models.DurationField(default=timedelta(minutes=15))
    default_caseload_capacity = models.PositiveSmallIntegerField(default=25)
    overbooking_needs_reason = models.BooleanField(
        default=False,
        help_text="Booking past a workload limit needs a written reason, which is kept.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_session_cap__gte=1) & Q(weekly_hours_cap__gte=1),
                name="practice_caps_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(is_active=True, user__is_active=True)

    def in_practice(self, practice: Practice) -> MembershipQuerySet:
        return self.filter(practice=practice)

    def clinicians(self) -> MembershipQuerySet:
        return self.filter(is_clinician=True)

    def supervisors(self) -> MembershipQuerySet:
        return self.filter(is_supervisor=True)


class Membership(models.Model):
    """One staff user in one practice, with one or more roles."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="memberships")
    is_admin = models.BooleanField("admin", default=False)
    is_clinician = models.BooleanField("clinician", default=False)
    is_supervisor = models.BooleanField("supervisor", default=False)
    is_active = models.BooleanField(default=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(is_admin=True) | Q(is_clinician=True) | Q(is_supervisor=True),
                name="membership_has_a_role",
                violation_error_message="A member needs at least one role.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({', '.join(self.role_names)})"

    @property
    def role_names(self) -> list[str]:
        flags = [("admin", self.is_admin), ("clinician", self.is_clinician)]
        flags.append(("supervisor", self.is_supervisor))
        return [name for name, held in flags if held]


class ClinicianProfile(models.Model):
    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, related_name="clinician_profile"
    )
    languages = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    specialties = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    # Matching: a client may ask for a clinician's gender, or for a shared cultural or faith
    # background. Clinicians fill these in themselves, or leave them blank.
    gender = models.CharField(max_length=30, blank=True)
    backgrounds = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Cultural or faith backgrounds the clinician shares with clients who ask.",
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The clinician's id in a system imported from."
    )
    caseload_capacity = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: the practice default."
    )
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text="Empty: the practice's.",
    )
    working_days = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices), default=default_working_days
    )
    work_starts = models.TimeField(default=time(9, 0))
    work_ends = models.TimeField(default=time(17, 0))
    agenda_time = models.TimeField(
        default=time(7, 0), help_text="When the daily agenda email arrives (local time)."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(work_ends__gt=models.F("work_starts")),
                name="clinician_work_hours_ordered",
                violation_error_message="Working hours must end after they start.",
            ),
        ]

    def __str__(self) -> str:
        return f"Clinician profile of {self.membership.user}"

    @property
    def effective_capacity(self) -> int:
        if self.caseload_capacity is not None:
            return self.caseload_capacity
        return self.membership.practice.default_caseload_capacity

    @property
    def effective_timezone(self) -> str:
        return self.timezone or self.membership.practice.timezone


class ClientQuerySet(models.QuerySet["Client"]):
    def in_practice(self, practice: Practice) -> ClientQuerySet:
        return self.filter(practice=practice)

    def in_caseload_of(self, clinician: User) -> ClientQuerySet:
        """Clients in any episode (active or past) with this clinician."""
        return self.filter(episodes__clinician=clinician).distinct()

    def supervised_by(self, supervisor: User, *, on: date | None = None) -> ClientQuerySet:
        """Clients in an active episode with one of the supervisor's current supervisees."""
        supervisees = SupervisionPairing.objects.current(on=on).filter(supervisor=supervisor)
        return self.filter(
            episodes__clinician__in=supervisees.values("supervisee"),
            episodes__closed_on__isnull=True,
        ).distinct()

    def waitlisted(self) -> ClientQuerySet:
        return self.filter(status=Client.Status.WAITLIST)

    def visible_to(self, user: User) -> ClientQuerySet:
        """Minimum necessary access: the clients this user may open at all.

        An admin sees the practice's clients (operational data only; the pages decide how
        much), a clinician their caseload, a supervisor their supervisees' open cases, and a
        client only themselves. Anyone from another practice sees nothing.
        """
        if not user.is_authenticated:
            return self.none()
        membership = Membership.objects.active().filter(user=user).first()
        if membership is None:
            return self.filter(user=user)
        if membership.is_admin:
            return self.filter(practice_id=membership.practice_id)
        return self.in_care_of(user, membership)

    def in_care_of(self, user: User, membership: Membership | None) -> ClientQuerySet:
        """The clients whose clinical record the user may read: a clinician's caseload and a
        supervisor's supervisees' open cases. Being an admin adds nothing here."""
        if membership is None:
            return self.none()
        reach = Q(pk__in=[])
        if membership.is_clinician:
            reach |= Q(pk__in=Client.objects.in_caseload_of(user).values("pk"))
        if membership.is_supervisor:
            reach |= Q(pk__in=Client.objects.supervised_by(user).values("pk"))
        return self.filter(reach, practice_id=membership.practice_id)


class Client(models.Model):
    class Status(models.TextChoices):
        WAITLIST = "waitlist", "Waitlist"
        ACTIVE = "active", "Active"
        DISCHARGED = "discharged", "Discharged"

    class TimeOfDay(models.TextChoices):
        MORNING = "morning", "Morning"
        AFTERNOON = "afternoon", "Afternoon"
        EVENING = "evening", "Evening"

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="clients")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    phone = models.CharField(
        max_length=32, blank=True, help_text="International format, e.g. +4930…"
    )
    preferred_language = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.WAITLIST)
    # Matching preferences. Background is optional and only ever given by the client.
    needs = ArrayField(models.CharField(max_length=60), default=list, blank=True)
    preferred_clinician_gender = models.CharField(max_length=30, blank=True)
    cultural_background = models.CharField(max_length=100, blank=True)
    faith_background = models.CharField(max_length=100, blank=True)
    preferred_times = ArrayField(
        models.CharField(max_length=10, choices=TimeOfDay.choices), default=list, blank=True
    )
    email_reminders = models.BooleanField(default=True, help_text="Off: the client opted out.")
    sms_reminders = models.BooleanField(default=True, help_text="Off: the client opted out.")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="client_record",
        help_text="The client's portal login, once they accepted an invitation.",
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The client's id in a system imported from."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClientQuerySet.as_manager()

    if TYPE_CHECKING:
        episodes: RelatedManager[Episode]

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        indexes = [models.Index(fields=["practice", "status"])]
        constraints = [
            # Import is idempotent by external id: one client per id per practice.
            models.UniqueConstraint(
                fields=["practice", "external_id"],
                condition=~Q(external_id=""),
                name="client_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def initials(self) -> str:
        return f"{self.first_name[:1]}{self.last_name[:1]}".upper()

    @property
    def effective_timezone(self) -> str:
        return self.timezone or self.practice.timezone


class EpisodeQuerySet(models.QuerySet["Episode"]):
    def active(self) -> EpisodeQuerySet:
        return self.filter(closed_on__isnull=True)

    def closed(self) -> EpisodeQuerySet:
        return self.filter(closed_on__isnull=False)

    def for_clinician(self, clinician: User) -> EpisodeQuerySet:
        return self.filter(clinician=clinician)

    def in_practice(self, practice: Practice) -> EpisodeQuerySet:
        return self.filter(client__practice=practice)


class Episode(models.Model):
    """An episode of care: one client with one clinician, from intake to ending."""

    class Stage(models.TextChoices):
        INTAKE = "intake", "Intake"
        BEGINNING = "beginning", "Beginning"
        MIDDLE = "middle", "Middle"
        ENDING = "ending", "Ending"
        CLOSED = "closed", "Closed"

    class CloseReason(models.TextChoices):
        COMPLETED = "completed", "Completed"
        DROPPED_OUT = "dropped_out", "Dropped out"
        TRANSFERRED = "transferred", "Transferred"
        REFERRED = "referred", "Referred"

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="episodes")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="episodes"
    )
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.INTAKE)
    opened_on = models.DateField(default=timezone.localdate)
    closed_on = models.DateField(null=True, blank=True)
    close_reason = models.CharField(max_length=12, choices=CloseReason.choices, blank=True)
    # A transfer closes one episode and opens this one with the new clinician.
    transferred_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="transferred_to"
    )
    handoff_note = models.TextField(blank=True)
    # Why an admin assigned past the clinician's capacity, when they did.
    over_capacity_reason = models.TextField(blank=True)

    objects = EpisodeQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_on", "-pk"]
        constraints = [
            # A closed episode has a date and a reason; an open one has neither.
            models.CheckConstraint(
                condition=(
                    Q(stage="closed", closed_on__isnull=False) & ~Q(close_reason="")
                    | ~Q(stage="closed") & Q(closed_on__isnull=True, close_reason="")
                ),
                name="episode_closed_consistently",
                violation_error_message="A closed episode needs a close date and a reason.",
            ),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(closed_on__gte=models.F("opened_on")),
                name="episode_closes_after_opening",
                violation_error_message="An episode cannot close before it opened.",
            ),
            # One open episode per client at a time: a transfer closes one and opens another.
            models.UniqueConstraint(
                fields=["client"],
                condition=Q(closed_on__isnull=True),
                name="episode_one_open_per_client",
                violation_error_message="This client already has an open episode.",
            ),
        ]
        indexes = [models.Index(fields=["clinician", "closed_on"])]

    def __str__(self) -> str:
        return f"Episode {self.pk} ({self.get_stage_display()})"

    @property
    def is_open(self) -> bool:
        return self.closed_on is None

    def move_to_stage(self, stage: str) -> None:
        if stage == self.Stage.CLOSED:
            raise ValueError("Use close() to close an episode; it needs a reason.")
        self.stage = stage
        self.save(update_fields=["stage"])

    def close(self, *, reason: str, on: date) -> None:
        self.stage = self.Stage.CLOSED
        self.close_reason = reason
        self.closed_on = on
        self.save(update_fields=["stage", "close_reason", "closed_on"])


class DateRange(Func):
    function = "DATERANGE"
    output_field = DateRangeField()


class SupervisionPairingQuerySet(models.QuerySet["SupervisionPairing"]):
    def current(self, *, on: date | None = None) -> SupervisionPairingQuerySet:
        day = on or timezone.localdate()
        return self.filter(started_on__lte=day).filter(
            Q(ended_on__isnull=True) | Q(ended_on__gt=day)
        )

    def in_practice(self, practice: Practice) -> SupervisionPairingQuerySet:
        return self.filter(practice=practice)


class SupervisionPairing(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="pairings")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="supervisees_pairings"
    )
    supervisee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="supervisor_pairings"
    )
    started_on = models.DateField(default=timezone.localdate)
    ended_on = models.DateField(
        null=True, blank=True, help_text="Exclusive: the first day without."
    )

    objects = SupervisionPairingQuerySet.as_manager()

    class Meta:
        ordering = ["-started_on", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(supervisor=models.F("supervisee")),
                name="pairing_not_self",
                violation_error_message="Nobody supervises themselves.",
            ),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gt=models.F("started_on")),
                name="pairing_ends_after_start",
                violation_error_message="A pairing must end after it starts.",
            ),
            # A supervisee has one supervisor at a time, so "the current supervisor" is defined.
            ExclusionConstraint(
                name="pairing_one_supervisor_at_a_time",
                expressions=[
                    ("supervisee", RangeOperators.EQUAL),
                    (
                        DateRange("started_on", "ended_on", models.Value("[)")),
                        RangeOperators.OVERLAPS,
                    ),
                ],
                violation_error_message="This clinician already has a supervisor for those dates.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.supervisor} supervises {self.supervisee}"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def in_practice(self, practice: Practice) -> AuditEventQuerySet:
        return self.filter(practice=practice)

    def about(self, obj: models.Model) -> AuditEventQuerySet:
        return self.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


class AuditEvent(models.Model):
    """Who did or read what, when, and from where. Never holds clinical content itself."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    # The client the object belongs to (the client itself, or their response, flag,
    # session…), so an admin can ask "who read this client's record?" across object types.
    client = models.ForeignKey(
        "Client", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["practice", "-at"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["client", "-at"]),
        ]

    def __str__(self) -> str:
        target = f"{self.object_type}#{self.object_id}"
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {target}"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def in_practice(self, practice: Practice) -> InvitationQuerySet:
        return self.filter(practice=practice)


class Invitation(models.Model):
    """A single-use link to set a password: staff join a practice, clients open their portal."""

    class Kind(models.TextChoices):
        STAFF = "staff", "Staff"
        CLIENT = "client", "Client portal"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="invitations")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    email = models.EmailField()
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_admin = models.BooleanField(default=False)
    is_clinician = models.BooleanField(default=False)
    is_supervisor = models.BooleanField(default=False)
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations"
    )
    # The link carries this nonce signed with SECRET_KEY, so a database read alone does not
    # yield a working link, and the worker can rebuild the link from the row.
    nonce = models.CharField(max_length=43, default=secrets.token_urlsafe, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="client", client__isnull=False)
                    | Q(kind="staff", client__isnull=True)
                    & (Q(is_admin=True) | Q(is_clinician=True) | Q(is_supervisor=True))
                ),
                name="invitation_kind_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation for {self.email}"

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now

    @property
    def roles(self) -> list[str]:
        flags = [("admin", self.is_admin), ("clinician", self.is_clinician)]
        flags.append(("supervisor", self.is_supervisor))
        return [name for name, held in flags if held]


class ImportRun(models.Model):
    """One import of another system's history, started from the admin upload page.

    The CSV files are kept in the row (workers may run on other machines), and the worker
    reports progress here for the page's progress bar.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        VALIDATING = "validating", "Validating"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Done"
        INVALID = "invalid", "Invalid: nothing was written"
        FAILED = "failed", "Failed: nothing was written"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="imports")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    files = models.JSONField(default=dict, help_text="File name to its CSV text.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.get_state_display()})"

    @property
    def percent(self) -> int:
        return int(100 * self.processed / self.total) if self.total else 0
