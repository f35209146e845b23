"""Clinical measures: instruments defined as data, and the clients' responses to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from practice.models import Client, Episode, Practice, User
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

    objects = ResponseQuerySet.as_manager()

    class Meta:
        ordering = ["completed_at", "pk"]
        indexes = [
            models.Index(fields=["episode", "completed_at"]),
            models.Index(fields=["client", "completed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.instrument.code} {self.total} on {self.completed_at:%Y-%m-%d}"


class RuptureFlagQuerySet(models.QuerySet["RuptureFlag"]):
    def open(self) -> RuptureFlagQuerySet:
        return self.filter(resolved_at__isnull=True)

    def for_clinician(self, clinician: User) -> RuptureFlagQuerySet:
        return self.filter(clinician=clinician)

    def for_episode(self, episode: Episode) -> RuptureFlagQuerySet:
        return self.filter(episode=episode)

    def by_severity(self) -> RuptureFlagQuerySet:
        """Most severe first (safety above all), then the oldest, which has waited longest."""
        return self.order_by("-severity", "raised_at", "pk")


class RuptureFlag(models.Model):
    """A possible rupture raised by a detection rule, with the evidence the rule saw.

    One flag per rule per triggering event (`trigger_key`, e.g. ``response:123``), so a
    sweep can run again and again without raising the same flag twice.
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

    # Safety outranks everything, so it shows first in every queue.
    SEVERITY: ClassVar[dict[str, int]] = {
        Rule.SAFETY: 100,
        Rule.RELIABLE_DETERIORATION: 70,
        Rule.DROPOUT: 60,
        Rule.TWO_MISSED: 55,
        Rule.MISSED_AFTER_STRAIN: 50,
        Rule.ALLIANCE_DROP: 40,
        Rule.LOW_ALLIANCE: 35,
        Rule.FELT_OFF: 30,
        Rule.NOT_ON_TRACK: 25,
        Rule.CLINICIAN_CAUSED: 20,
    }

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
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = RuptureFlagQuerySet.as_manager()

    class Meta:
        ordering = ["-severity", "raised_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "trigger_key"], name="rupture_flag_once_per_rule_and_trigger"
            )
        ]
        indexes = [models.Index(fields=["clinician", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} ({self.trigger_key})"
