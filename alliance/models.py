"""Clinical measures: instruments defined as data, and the clients' responses to them."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from practice.models import Client, Episode, Practice, SupervisionPairing, User
from scheduling.models import Appointment

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager


class InstrumentQuerySet(models.QuerySet["Instrument"]):
    def active(self) -> InstrumentQuerySet:
        return self.filter(active=True)

    def shipped(self) -> InstrumentQuerySet:
        """The free instruments every practice gets (no practice of their own)."""
        return self.filter(practice__isnull=True)

    def available_to(self, practice: Practice) -> InstrumentQuerySet:
        """Shipped instruments plus the practice's own (e.g. a licensed ORS or WAI-SR)."""
        return self.filter(Q(practice__isnull=True) | Q(practice=practice))

    def outcome_measures(self) -> InstrumentQuerySet:
        return self.filter(kind=Instrument.Kind.OUTCOME)

    def alliance_measures(self) -> InstrumentQuerySet:
        return self.filter(kind=Instrument.Kind.ALLIANCE)

    def with_scoring_rules(self) -> InstrumentQuerySet:
        """Everything `alliance.scoring.score` reads, in a fixed number of queries."""
        return self.prefetch_related("items", "bands", "safety_rules__item")


class Instrument(models.Model):
    """A questionnaire: its items, scale, scoring rule, severity bands and safety items."""

    class Kind(models.TextChoices):
        OUTCOME = "outcome", "Outcome measure"
        ALLIANCE = "alliance", "Alliance measure"

    # Null: shipped with the app, available to every practice.
    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, null=True, blank=True, related_name="instruments"
    )
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    licence_note = models.TextField(
        blank=True, help_text="Who holds the rights, and on what terms this practice may use it."
    )
    reliable_change = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="A change in total of at least this many points is reliable change.",
    )
    active = models.BooleanField(default=True)

    objects = InstrumentQuerySet.as_manager()

    if TYPE_CHECKING:
        items: RelatedManager[InstrumentItem]
        bands: RelatedManager[SeverityBand]
        safety_rules: RelatedManager[SafetyRule]

    class Meta:
        ordering = ["code", "version"]
        constraints = [
            # nulls_distinct=False: two shipped PHQ-9 version 1 rows are a duplicate too.
            models.UniqueConstraint(
                fields=["practice", "code", "version"],
                name="instrument_unique_code_version",
                nulls_distinct=False,
                violation_error_message="This practice already has that instrument version.",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="instrument_version_positive"),
            models.CheckConstraint(
                condition=Q(reliable_change__isnull=True) | Q(reliable_change__gt=0),
                name="instrument_reliable_change_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class InstrumentItem(models.Model):
    """One question, with its response scale and whether it counts towards the total."""

    class Kind(models.TextChoices):
        SCALE = "scale", "Rating scale"
        YES_NO = "yes_no", "Yes or no"
        TEXT = "text", "Free text"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField(help_text="1 for the first item, and so on.")
    key = models.SlugField(max_length=40, help_text="Names the answer in a response.")
    wording = models.TextField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SCALE)
    scale_min = models.SmallIntegerField(default=0)
    scale_max = models.SmallIntegerField(default=3)
    scale_labels = models.JSONField(
        default=list,
        blank=True,
        help_text='Labels from the lowest answer up, e.g. ["Not at all", …].',
    )
    subscale = models.CharField(max_length=60, blank=True, help_text="Blank: no subscale.")
    # A yes/no or free-text follow-up is asked but not added up.
    scored = models.BooleanField(default=True)

    class Meta:
        ordering = ["instrument", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "position"], name="instrument_item_unique_position"
            ),
            models.UniqueConstraint(
                fields=["instrument", "key"], name="instrument_item_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(position__gte=1), name="instrument_item_position_from_one"
            ),
            models.CheckConstraint(
                condition=Q(scale_min__lt=F("scale_max")),
                name="instrument_item_scale_ordered",
                violation_error_message="The lowest answer must be below the highest.",
            ),
            # Only a rating scale adds up to a number.
            models.CheckConstraint(
                condition=Q(scored=False) | Q(kind="scale"),
                name="instrument_item_only_scales_scored",
                violation_error_message="Only rating-scale items can be scored.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.wording}"


class SeverityBand(models.Model):
    """From `lower` (inclusive) up to the next band's lower bound, the total reads as `label`."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="bands")
    lower = models.IntegerField()
    label = models.CharField(max_length=60)

    class Meta:
        ordering = ["instrument", "lower"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "lower"], name="severity_band_unique_lower"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lower}+: {self.label}"


class SafetyRule(models.Model):
    """An answer at or above `threshold` on `item` raises an immediate safety flag."""

    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="safety_rules"
    )
    item = models.ForeignKey(InstrumentItem, on_delete=models.CASCADE, related_name="safety_rules")
    threshold = models.SmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "threshold"], name="safety_rule_unique")
        ]

    def __str__(self) -> str:
        return f"{self.item.key} ≥ {self.threshold}"


class ResponseQuerySet(models.QuerySet["Response"]):
    def for_episode(self, episode: Episode) -> ResponseQuerySet:
        return self.filter(episode=episode)

    def for_client(self, client: Client) -> ResponseQuerySet:
        return self.filter(client=client)

    def to_instrument(self, code: str) -> ResponseQuerySet:
        return self.filter(instrument__code=code)

    def session_feedback(self) -> ResponseQuerySet:
        return self.filter(instrument__kind=Instrument.Kind.ALLIANCE)

    def outcome_measures(self) -> ResponseQuerySet:
        return self.filter(instrument__kind=Instrument.Kind.OUTCOME)

    def safety_triggered(self) -> ResponseQuerySet:
        return self.filter(safety_triggered=True)

    def chronological(self) -> ResponseQuerySet:
        return self.order_by("completed_at", "pk")

    def alliance_trend_by_clinician(
        self, *, since: datetime, below: int
    ) -> dict[int, tuple[int, int]]:
        """Per clinician: (session-feedback responses since `since`, how many were below
        `below`), the alliance trend a supervisor reads. One grouped query."""
        rows = (
            self.session_feedback()
            .filter(completed_at__gte=since)
            .values("episode__clinician")
            .annotate(
                answered=models.Count("pk"),
                low=models.Count("pk", filter=Q(total__lt=below)),
            )
            .order_by()
        )
        return {r["episode__clinician"]: (r["answered"], r["low"]) for r in rows}


class Response(models.Model):
    """A client's completed questionnaire, scored when it was submitted."""

    class Via(models.TextChoices):
        LINK = "link", "Emailed or texted link"
        PORTAL = "portal", "Client portal"
        IN_SESSION = "in_session", "In session"

    # PROTECT: a response is a clinical record; its instrument must outlive it.
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="responses")
    # Copied: an instrument edited later must not reinterpret what was answered.
    instrument_version = models.PositiveIntegerField()
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="responses")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="responses")
    appointment = models.ForeignKey(
        Appointment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="responses",
    )
    answers = models.JSONField(default=dict, help_text="Item key to the answer given.")
    total = models.IntegerField()
    subscales = models.JSONField(default=dict, blank=True)
    band = models.CharField(max_length=60, blank=True)
    safety_triggered = models.BooleanField(default=False)
    completed_at = models.DateTimeField()
    collected_via = models.CharField(max_length=12, choices=Via.choices)
    free_text = models.TextField(blank=True)
    # The link it answered. One-to-one: the database refuses a second answer to one link.
    request = models.OneToOneField(
        "MeasureRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="response",
    )
    external_id = models.CharField(
        max_length=100, blank=True, help_text="The response's id in a system imported from."
    )
    # Who held the screen for an in-session response.
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ResponseQuerySet.as_manager()

    class Meta:
        ordering = ["completed_at", "pk"]
        indexes = [
            models.Index(fields=["episode", "completed_at"]),
            models.Index(fields=["client", "completed_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_id"],
                condition=~Q(external_id=""),
                name="response_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument.code} {self.total} on {self.completed_at:%Y-%m-%d}"


class RuptureFlagQuerySet(models.QuerySet["RuptureFlag"]):
    def open(self) -> RuptureFlagQuerySet:
        """Still needing attention: open or in repair."""
        return self.filter(resolved_at__isnull=True)

    def for_clinician(self, clinician: User) -> RuptureFlagQuerySet:
        return self.filter(clinician=clinician)

    def for_episode(self, episode: Episode) -> RuptureFlagQuerySet:
        return self.filter(episode=episode)

    def for_client(self, client: Client) -> RuptureFlagQuerySet:
        return self.filter(client=client)

    def safety(self) -> RuptureFlagQuerySet:
        return self.filter(rule=RuptureFlag.Rule.SAFETY)

    def counts_by_clinician(self) -> dict[int, dict[str, int]]:
        """{clinician id: {rule: count}}: counts only, which is what an admin may see."""
        counts: dict[int, dict[str, int]] = {}
        for row in self.values("clinician", "rule").annotate(n=models.Count("pk")).order_by():
            counts.setdefault(row["clinician"], {})[row["rule"]] = row["n"]
        return counts

    def by_severity(self) -> RuptureFlagQuerySet:
        """Most severe first (safety above all), then the oldest, which has waited longest."""
        return self.order_by("-severity", "raised_at", "pk")

    def for_supervisor(self, supervisor: User, *, on: date | None = None) -> RuptureFlagQuerySet:
        """Flags a supervisor oversees: about clients in an open episode with one of their
        current supervisees, the same reach as the supervisor's read access to clients."""
        supervisees = SupervisionPairing.objects.current(on=on).filter(supervisor=supervisor)
        return self.filter(
            episode__clinician__in=supervisees.values("supervisee"),
            episode__closed_on__isnull=True,
        )


class RuptureFlag(models.Model):
    """A possible rupture: raised by a detection rule with the evidence it saw, or logged by
    the clinician in Safran and Muran's terms.

    One flag per rule per triggering event (`trigger_key`, e.g. ``response:123``), so a
    sweep can run again and again without raising the same flag twice. Its lifecycle is
    open → in repair → repaired or unresolved; a flag that needs no repair (a false alarm, a
    handled safety concern) is closed with a note. Every step is a `FlagEvent`.
    """

    class Rule(models.TextChoices):
        LOW_ALLIANCE = "low_alliance", "Low alliance"
        ALLIANCE_DROP = "alliance_drop", "Alliance drop"
        FELT_OFF = "felt_off", "Client said something felt off"
        MISSED_AFTER_STRAIN = "missed_after_strain", "Missed after strain"
        TWO_MISSED = "two_missed", "Two missed sessions in a row"
        DROPOUT = "dropout", "Dropout"
        RELIABLE_DETERIORATION = "reliable_deterioration", "Reliable deterioration"
        NOT_ON_TRACK = "not_on_track", "Not on track"
        SAFETY = "safety", "Safety"
        CLINICIAN_CAUSED = "clinician_caused", "Clinician-caused"
        LOGGED = "logged", "Logged by the clinician"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_REPAIR = "in_repair", "In repair"
        REPAIRED = "repaired", "Repaired"
        UNRESOLVED = "unresolved", "Unresolved"
        CLOSED = "closed", "Closed"

    class Kind(models.TextChoices):
        WITHDRAWAL = "withdrawal", "Withdrawal"
        CONFRONTATION = "confrontation", "Confrontation"

    class Marker(models.TextChoices):
        # Withdrawal markers (Safran & Muran)
        MINIMAL_RESPONSE = "minimal_response", "Minimal response"
        DENIAL = "denial", "Denial"
        TOPIC_SHIFTING = "topic_shifting", "Topic shifting"
        ABSTRACT_COMMUNICATION = "abstract", "Abstract communication"
        STORYTELLING = "storytelling", "Storytelling"
        DEFERENCE = "deference", "Deference and appeasing"
        CONTENT_AFFECT_SPLIT = "content_affect_split", "Content and affect split"
        SELF_CRITICISM = "self_criticism", "Self-criticism and hopelessness"
        # Confrontation markers
        COMPLAINTS_ABOUT_THERAPIST = "complaints_therapist", "Complaints about the therapist"
        REJECTING_INTERVENTION = "rejecting_intervention", "Rejecting an intervention"
        COMPLAINTS_ABOUT_ACTIVITIES = "complaints_activities", "Complaints about the activities"
        COMPLAINTS_ABOUT_PARAMETERS = "complaints_parameters", "Complaints about the parameters"
        COMPLAINTS_ABOUT_PROGRESS = "complaints_progress", "Complaints about progress"
        CONTROL_ATTEMPTS = "control", "Attempts to control the therapist"
        DEFENDING_AGAINST_THERAPIST = "defending", "Defending against the therapist"

    WITHDRAWAL_MARKERS: ClassVar[tuple[str, ...]] = (
        Marker.MINIMAL_RESPONSE,
        Marker.DENIAL,
        Marker.TOPIC_SHIFTING,
        Marker.ABSTRACT_COMMUNICATION,
        Marker.STORYTELLING,
        Marker.DEFERENCE,
        Marker.CONTENT_AFFECT_SPLIT,
        Marker.SELF_CRITICISM,
    )

    # Safety outranks everything, so it shows first in every queue.
    SEVERITY: ClassVar[dict[str, int]] = {
        Rule.SAFETY: 100,
        Rule.RELIABLE_DETERIORATION: 70,
        Rule.DROPOUT: 60,
        Rule.TWO_MISSED: 55,
        Rule.MISSED_AFTER_STRAIN: 50,
        Rule.LOGGED: 45,
        Rule.ALLIANCE_DROP: 40,
        Rule.LOW_ALLIANCE: 35,
        Rule.FELT_OFF: 30,
        Rule.NOT_ON_TRACK: 25,
        Rule.CLINICIAN_CAUSED: 20,
    }
    # Which step may follow which. A closed, repaired or unresolved flag can be reopened.
    TRANSITIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        Status.OPEN: (Status.IN_REPAIR, Status.REPAIRED, Status.UNRESOLVED, Status.CLOSED),
        Status.IN_REPAIR: (Status.REPAIRED, Status.UNRESOLVED, Status.CLOSED),
        Status.REPAIRED: (Status.OPEN,),
        Status.UNRESOLVED: (Status.OPEN, Status.IN_REPAIR),
        Status.CLOSED: (Status.OPEN,),
    }
    FINISHED: ClassVar[tuple[str, ...]] = (Status.REPAIRED, Status.UNRESOLVED, Status.CLOSED)

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="rupture_flags")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="rupture_flags")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rupture_flags"
    )
    rule = models.CharField(max_length=24, choices=Rule.choices)
    severity = models.IntegerField()
    trigger_key = models.CharField(
        max_length=80, help_text="The event that raised it, e.g. response:123 or appointment:45."
    )
    evidence = models.JSONField(
        default=dict, help_text="The scores, dates and appointments the rule saw, and a summary."
    )
    raised_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A rupture the clinician logged: Safran and Muran's kind and marker, and the session.
    kind = models.CharField(max_length=14, choices=Kind.choices, blank=True)
    marker = models.CharField(max_length=24, choices=Marker.choices, blank=True)
    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = RuptureFlagQuerySet.as_manager()

    if TYPE_CHECKING:
        events: RelatedManager[FlagEvent]
        repairs: RelatedManager[RepairAction]

    class Meta:
        ordering = ["-severity", "raised_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "trigger_key"], name="rupture_flag_once_per_rule_and_trigger"
            ),
            # A flag is finished exactly when it has a resolution time.
            models.CheckConstraint(
                condition=Q(status__in=["open", "in_repair"], resolved_at__isnull=True)
                | Q(status__in=["repaired", "unresolved", "closed"], resolved_at__isnull=False),
                name="rupture_flag_resolved_consistently",
            ),
            models.CheckConstraint(
                condition=~Q(rule="logged") | ~Q(kind="") & ~Q(marker=""),
                name="rupture_flag_logged_has_kind_and_marker",
                violation_error_message="A logged rupture needs its kind and marker.",
            ),
        ]
        indexes = [
            models.Index(fields=["clinician", "resolved_at"]),
            models.Index(fields=["client", "raised_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} ({self.trigger_key})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def summary(self) -> str:
        if self.rule == self.Rule.LOGGED:
            return f"{self.get_kind_display()}: {self.get_marker_display()}."
        return str(self.evidence.get("summary", ""))

    def allowed_transitions(self) -> tuple[str, ...]:
        return self.TRANSITIONS.get(self.status, ())

    def acknowledge(self, *, by: User, at: datetime) -> None:
        """The supervisor has seen it; the flag stays open for the clinician to work on."""
        self.acknowledged_at = at
        self.acknowledged_by = by
        self.save(update_fields=["acknowledged_at", "acknowledged_by"])

    def move_to(self, status: str, *, at: datetime) -> None:
        self.status = status
        self.resolved_at = at if status in self.FINISHED else None
        self.save(update_fields=["status", "resolved_at"])


class FlagEvent(models.Model):
    """One step in a flag's history: raised, a status change, or a note, with who and why."""

    class Action(models.TextChoices):
        RAISED = "raised", "Raised"
        STATUS = "status", "Status changed"
        REPAIR = "repair", "Repair action logged"
        NOTE = "note", "Note"
        ACKNOWLEDGED = "acknowledged", "Acknowledged by the supervisor"
        AGENDA = "agenda", "Added to the supervision agenda"
        PLAN_REQUESTED = "plan_requested", "Repair plan requested"
        PLAN_GIVEN = "plan_given", "Repair plan given"

    flag = models.ForeignKey(RuptureFlag, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    # Null: the sweep.
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on flag {self.flag_id}"


class RepairAction(models.Model):
    """What the clinician did to repair a rupture, in the 3RS vocabulary, and how it landed."""

    class Strategy(models.TextChoices):
        # Immediate: address the rupture at face value.
        GIVE_RATIONALE = "rationale", "Give a rationale"
        CHANGE_TASK_OR_GOAL = "change_task", "Change the task or goal"
        CLARIFY_MISUNDERSTANDING = "clarify", "Clarify a misunderstanding"
        # Exploratory: work through what lies under it.
        INVITE_EXPLORATION = "explore", "Invite exploration of the rupture"
        ACKNOWLEDGE_OWN_CONTRIBUTION = "acknowledge", "Acknowledge one's own contribution"
        LINK_TO_PATTERNS = "link_patterns", "Link to wider patterns"

    IMMEDIATE: ClassVar[tuple[str, ...]] = (
        Strategy.GIVE_RATIONALE,
        Strategy.CHANGE_TASK_OR_GOAL,
        Strategy.CLARIFY_MISUNDERSTANDING,
    )

    flag = models.ForeignKey(RuptureFlag, on_delete=models.PROTECT, related_name="repairs")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    performed_at = models.DateTimeField()
    appointment = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    strategy = models.CharField(max_length=14, choices=Strategy.choices)
    description = models.TextField(help_text="What was said or done.")
    client_response = models.TextField(help_text="How the client responded.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["performed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_strategy_display()} on flag {self.flag_id}"

    @property
    def approach(self) -> str:
        return "Immediate" if self.strategy in self.IMMEDIATE else "Exploratory"


class SafetyAlert(models.Model):
    """The email that tells one person at once about a safety flag. Unique per (flag,
    recipient) and claimed like a reminder, so the alert goes once and a crash is retried."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    flag = models.ForeignKey(RuptureFlag, on_delete=models.CASCADE, related_name="safety_alerts")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    role = models.CharField(max_length=12, help_text="clinician or supervisor")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["flag", "recipient"], name="safety_alert_once")
        ]
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"Safety alert for flag {self.flag_id} to {self.recipient_id}"


# Outreach and endings


class OutreachAttemptQuerySet(models.QuerySet["OutreachAttempt"]):
    def for_episode(self, episode: Episode) -> OutreachAttemptQuerySet:
        return self.filter(episode=episode)


class OutreachAttempt(models.Model):
    """One attempt to reach a client after dropout or an angry ending."""

    class Channel(models.TextChoices):
        PHONE = "phone", "Phone call"
        EMAIL = "email", "Email"
        SMS = "sms", "Text message"
        LETTER = "letter", "Letter"

    class Outcome(models.TextChoices):
        NO_ANSWER = "no_answer", "No answer"
        VOICEMAIL = "voicemail", "Left a voicemail"
        SPOKE = "spoke", "Spoke with the client"
        REPLIED = "replied", "The client replied"
        DECLINED = "declined", "The client declined further contact"
        UNDELIVERABLE = "undeliverable", "Could not be delivered"

    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="outreach")
    flag = models.ForeignKey(
        RuptureFlag, on_delete=models.SET_NULL, null=True, blank=True, related_name="outreach"
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    attempted_at = models.DateTimeField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    note = models.TextField(blank=True)

    objects = OutreachAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["attempted_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} on {self.attempted_at:%Y-%m-%d}"


class EpisodeEnding(models.Model):
    """How an episode ended: the planned last session, and the closing review."""

    class Kind(models.TextChoices):
        PLANNED = "planned", "Planned ending with a last session"
        TERMINATION_SESSION = "termination", "Fee-waived termination session after outreach"
        NO_LAST_SESSION = "no_last_session", "Closed without a last session"
        VOICEMAIL_ONLY = "voicemail_only", "Ended by voicemail only"
        DROPPED_OUT = "dropped_out", "Dropped out after outreach"

    episode = models.OneToOneField(Episode, on_delete=models.PROTECT, related_name="ending")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    last_session = models.ForeignKey(
        Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    planned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    planned_at = models.DateTimeField(default=timezone.now)
    goals_and_progress = models.TextField(blank=True)
    first_scores = models.JSONField(default=dict, blank=True)
    last_scores = models.JSONField(default=dict, blank=True)
    what_helps_on_return = models.TextField(blank=True)
    note = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Ending of {self.episode}"


# Practice and episode policy


class AlliancePolicy(models.Model):
    """A practice's thresholds for the rupture rules and the measure links.

    A practice without a row uses the defaults below (`AlliancePolicy.for_practice`), which
    are the values the rupture-detection design names.
    """

    practice = models.OneToOneField(
        Practice, on_delete=models.CASCADE, related_name="alliance_policy"
    )
    low_alliance_below = models.PositiveSmallIntegerField(
        default=36, help_text="Session feedback totals below this (of 40) raise a flag."
    )
    alliance_drop_points = models.PositiveSmallIntegerField(
        default=5, help_text="A total this far below the client's own running mean is a drop."
    )
    strain_window_sessions = models.PositiveSmallIntegerField(
        default=2, help_text="A miss within this many sessions after a strained score."
    )
    dropout_after_days = models.PositiveSmallIntegerField(
        default=21, help_text="Days with nothing attended and nothing booked before dropout."
    )
    not_on_track_after_sessions = models.PositiveSmallIntegerField(
        default=8, help_text="Attended sessions before 'not on track' is judged."
    )
    clinician_short_notice_hours = models.PositiveSmallIntegerField(
        default=24, help_text="A clinician cancel with less notice than this is flagged."
    )
    outreach_spacing_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days between two outreach attempts to the same client."
    )
    feedback_link_hours = models.PositiveSmallIntegerField(
        default=72, help_text="How long a session-feedback link works after it is sent."
    )
    outcome_lead_hours = models.PositiveSmallIntegerField(
        default=24, help_text="How long before a session the outcome-measure link goes out."
    )

    class Meta:
        verbose_name_plural = "alliance policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(low_alliance_below__lte=40), name="policy_low_alliance_at_most_40"
            ),
            models.CheckConstraint(
                condition=Q(alliance_drop_points__gte=1), name="policy_drop_at_least_1"
            ),
            models.CheckConstraint(
                condition=Q(strain_window_sessions__gte=1), name="policy_strain_window_positive"
            ),
            models.CheckConstraint(
                condition=Q(dropout_after_days__gte=1), name="policy_dropout_days_positive"
            ),
            models.CheckConstraint(
                condition=Q(not_on_track_after_sessions__gte=1),
                name="policy_not_on_track_positive",
            ),
            models.CheckConstraint(
                condition=Q(feedback_link_hours__gte=1), name="policy_feedback_link_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Alliance policy of {self.practice}"

    @classmethod
    def for_practice(cls, practice: Practice) -> AlliancePolicy:
        """The practice's policy, or the defaults (unsaved) when it never changed them."""
        policy = cls.objects.filter(practice=practice).first()
        return policy or cls(practice=practice)


class MeasurementPlan(models.Model):
    """Per episode: which outcome measure the client gets, and how often.

    An episode without a row gets the default: the PHQ-9 before every session, and session
    feedback after every attended session.
    """

    episode = models.OneToOneField(
        Episode, on_delete=models.CASCADE, related_name="measurement_plan"
    )
    outcome_instrument = models.ForeignKey(
        Instrument,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Blank: no outcome measure is sent.",
    )
    outcome_every_n_sessions = models.PositiveSmallIntegerField(
        default=1, help_text="1: before every session; 4: before the 1st, 5th, 9th…"
    )
    session_feedback = models.BooleanField(
        default=True, help_text="Send the session-feedback link after each attended session."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome_every_n_sessions__gte=1), name="plan_every_n_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Measurement plan of {self.episode}"


# Collecting responses


class MeasureRequestQuerySet(models.QuerySet["MeasureRequest"]):
    def awaiting_answer(self, now: datetime) -> MeasureRequestQuerySet:
        """Sent, not answered, and still working: what a client can open in the portal."""
        return self.filter(
            state=MeasureRequest.State.SENT, response__isnull=True, expires_at__gt=now
        )

    def for_client(self, client: Client) -> MeasureRequestQuerySet:
        return self.filter(client=client)


class MeasureRequest(models.Model):
    """A link to one questionnaire for one session, sent once, answered at most once.

    Unique per (appointment, instrument), so however often the sweep runs a session gets
    one feedback link and one outcome link. Sending follows the reminder pattern: the row
    moves pending → sending by a conditional UPDATE before the message leaves.
    """

    class Purpose(models.TextChoices):
        FEEDBACK = "feedback", "Session feedback after the session"
        OUTCOME = "outcome", "Outcome measure before the session"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="measure_requests")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="measure_requests")
    appointment = models.ForeignKey(
        Appointment, on_delete=models.CASCADE, related_name="measure_requests"
    )
    channel = models.CharField(max_length=8, blank=True, help_text="email or sms; blank if none.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    detail = models.TextField(blank=True, help_text="The error, or why it was skipped.")
    nonce = models.CharField(max_length=43, default=secrets.token_urlsafe, editable=False)
    due_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MeasureRequestQuerySet.as_manager()

    if TYPE_CHECKING:
        response: Response

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "instrument"], name="measure_request_once_per_session"
            )
        ]
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} for appointment {self.appointment_id}"


# Supervision


class RepairPlanRequestQuerySet(models.QuerySet["RepairPlanRequest"]):
    def unanswered(self) -> RepairPlanRequestQuerySet:
        return self.filter(answered_at__isnull=True)

    def for_clinician(self, clinician: User) -> RepairPlanRequestQuerySet:
        return self.filter(flag__episode__clinician=clinician)

    def outstanding(self) -> RepairPlanRequestQuerySet:
        """Unanswered, about a flag still open: what the clinician's home page asks for."""
        return self.unanswered().filter(flag__resolved_at__isnull=True)


class RepairPlanRequest(models.Model):
    """A supervisor asks the clinician how they plan to repair; the clinician answers."""

    flag = models.ForeignKey(RuptureFlag, on_delete=models.CASCADE, related_name="plan_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    plan = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = RepairPlanRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"Repair plan request for flag {self.flag_id}"


class SupervisionSessionQuerySet(models.QuerySet["SupervisionSession"]):
    def for_supervisor(self, supervisor: User) -> SupervisionSessionQuerySet:
        return self.filter(supervisor=supervisor)

    def for_supervisee(self, supervisee: User) -> SupervisionSessionQuerySet:
        return self.filter(supervisee=supervisee)

    def upcoming(self, now: datetime) -> SupervisionSessionQuerySet:
        return self.filter(scheduled_for__gte=now, attendance=SupervisionSession.Attendance.PLANNED)


class SupervisionSession(models.Model):
    """A supervision meeting: its agenda, notes, decisions and follow-ups."""

    class Attendance(models.TextChoices):
        PLANNED = "planned", "Planned"
        ATTENDED = "attended", "Attended"
        MISSED = "missed", "Missed by the supervisee"
        CANCELLED = "cancelled", "Cancelled"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="supervisions_given"
    )
    supervisee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="supervisions_received"
    )
    scheduled_for = models.DateTimeField()
    attendance = models.CharField(
        max_length=10, choices=Attendance.choices, default=Attendance.PLANNED
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SupervisionSessionQuerySet.as_manager()

    if TYPE_CHECKING:
        agenda_items: RelatedManager[AgendaItem]
        follow_ups: RelatedManager[FollowUp]

    class Meta:
        ordering = ["-scheduled_for", "-pk"]
        indexes = [models.Index(fields=["supervisee", "scheduled_for"])]

    def __str__(self) -> str:
        return f"Supervision of {self.supervisee} on {self.scheduled_for:%Y-%m-%d}"


class AgendaItemQuerySet(models.QuerySet["AgendaItem"]):
    def waiting(self) -> AgendaItemQuerySet:
        """Added before any session was planned: the supervisee's next session picks it up."""
        return self.filter(session__isnull=True)

    def pending(self) -> AgendaItemQuerySet:
        """Waiting, or on the agenda of a session still planned: not discussed yet."""
        return self.filter(
            Q(session__isnull=True) | Q(session__attendance=SupervisionSession.Attendance.PLANNED)
        )

    def between(self, supervisor: User, supervisee: User) -> AgendaItemQuerySet:
        return self.filter(supervisor=supervisor, supervisee=supervisee)


class AgendaItem(models.Model):
    """One item for a supervision session: a flag, a workload alert, or a topic.

    Without a session it waits for the supervisee's next one, which picks it up.
    """

    session = models.ForeignKey(
        SupervisionSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="agenda_items",
    )
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    supervisee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    flag = models.ForeignKey(
        RuptureFlag, on_delete=models.CASCADE, null=True, blank=True, related_name="agenda_items"
    )
    workload_alert = models.ForeignKey(
        "scheduling.WorkloadAlert",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    topic = models.CharField(max_length=200, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)
    # Safety flags join every agenda by themselves until they are closed.
    automatic = models.BooleanField(default=False)
    decision = models.TextField(blank=True)

    objects = AgendaItemQuerySet.as_manager()

    class Meta:
        ordering = ["added_at", "pk"]
        constraints = [
            # A flag is on a session's agenda once.
            models.UniqueConstraint(
                fields=["session", "flag"],
                condition=Q(flag__isnull=False),
                name="agenda_item_flag_once_per_session",
            ),
        ]

    def __str__(self) -> str:
        return self.topic or f"Agenda item {self.pk}"


class FollowUpQuerySet(models.QuerySet["FollowUp"]):
    def open(self) -> FollowUpQuerySet:
        return self.filter(done_at__isnull=True)


class FollowUp(models.Model):
    """Something to do before the next supervision session."""

    session = models.ForeignKey(
        SupervisionSession, on_delete=models.CASCADE, related_name="follow_ups"
    )
    description = models.CharField(max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    due_by = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        ordering = ["due_by", "pk"]

    def __str__(self) -> str:
        return self.description


class CountertransferenceNoteQuerySet(models.QuerySet["CountertransferenceNote"]):
    def readable_by(self, user: User, *, on: date | None = None) -> CountertransferenceNoteQuerySet:
        """Only the author, and the author's current supervisor. Never an admin as such, and
        never another clinician, even the next one on the case."""
        supervisees = SupervisionPairing.objects.current(on=on).filter(supervisor=user)
        return self.filter(Q(author=user) | Q(author__in=supervisees.values("supervisee")))


class CountertransferenceNote(models.Model):
    """A clinician's private note about their own reactions to a client, for supervision."""

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    episode = models.ForeignKey(Episode, on_delete=models.PROTECT, related_name="+")
    written_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()

    objects = CountertransferenceNoteQuerySet.as_manager()

    class Meta:
        ordering = ["-written_at", "-pk"]

    def __str__(self) -> str:
        return f"Note by {self.author_id} on {self.written_at:%Y-%m-%d}"
