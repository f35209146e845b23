"""Alliance forms: they validate and normalise; the services persist."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from alliance.models import (
    AlliancePolicy,
    EpisodeEnding,
    Instrument,
    InstrumentItem,
    OutreachAttempt,
    RepairAction,
    RuptureFlag,
)
from alliance.scoring import score
from practice.forms import DateInput, TimeInput
from practice.models import Episode
from scheduling.forms import DURATIONS, local_datetime
from scheduling.models import Appointment, Location, Status


class SessionChoiceField(forms.ModelChoiceField[Appointment]):
    def label_from_instance(self, obj: Appointment) -> str:
        return f"{timezone.localtime(obj.starts_at):%a %d %b %Y %H:%M}"


class MeasureForm(forms.Form):
    """One field per item of an instrument, validated by the instrument's own scoring."""

    def __init__(self, *args: Any, instrument: Instrument, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instrument = instrument
        self.items = sorted(instrument.items.all(), key=lambda item: item.position)
        for item in self.items:
            label = f"{item.position}. {item.wording}"
            field: forms.Field
            if item.kind == InstrumentItem.Kind.SCALE:
                labels = list(item.scale_labels or [])
                choices = [
                    (
                        str(value),
                        f"{value} – {labels[value - item.scale_min]}"
                        if value - item.scale_min < len(labels)
                        else str(value),
                    )
                    for value in range(item.scale_min, item.scale_max + 1)
                ]
                field = forms.ChoiceField(
                    label=label, choices=choices, widget=forms.RadioSelect, required=False
                )
            elif item.kind == InstrumentItem.Kind.YES_NO:
                field = forms.ChoiceField(
                    label=label,
                    choices=[("no", "No"), ("yes", "Yes")],
                    widget=forms.RadioSelect,
                    required=False,
                )
            else:
                field = forms.CharField(
                    label=label,
                    required=False,
                    max_length=2000,
                    widget=forms.Textarea(attrs={"rows": 3}),
                )
            self.fields[item.key] = field
        self.answers: dict[str, object] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        answers = {key: cleaned.get(key) for key in self.fields}
        try:
            result = score(self.instrument, answers)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                self.add_error(key if key in self.fields else None, messages)
            return cleaned
        self.answers = dict(result.answers)
        return cleaned


class RuptureLogForm(forms.Form):
    kind = forms.ChoiceField(choices=RuptureFlag.Kind.choices, widget=forms.RadioSelect)
    marker = forms.ChoiceField(
        choices=[
            (
                "Withdrawal markers",
                [(m, RuptureFlag.Marker(m).label) for m in RuptureFlag.WITHDRAWAL_MARKERS],
            ),
            (
                "Confrontation markers",
                [
                    (m.value, m.label)
                    for m in RuptureFlag.Marker
                    if m.value not in RuptureFlag.WITHDRAWAL_MARKERS
                ],
            ),
        ]
    )
    appointment = SessionChoiceField(
        queryset=Appointment.objects.none(), required=False, label="Session"
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)

    def __init__(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["appointment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Appointment.objects.filter(
            episode=episode, status=Status.ATTENDED
        ).order_by("-starts_at")


class FlagTransitionForm(forms.Form):
    to_status = forms.ChoiceField(label="Move to")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)

    def __init__(self, *args: Any, flag: RuptureFlag, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to_status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(s, RuptureFlag.Status(s).label) for s in flag.allowed_transitions()]


class LocalDateTimeMixin(forms.Form):
    """A date and a time in the user's zone, cleaned into one aware datetime."""

    tz: str = "UTC"

    def local_moment(
        self, cleaned: dict[str, Any], day_field: str, time_field: str
    ) -> datetime | None:
        day, at = cleaned.get(day_field), cleaned.get(time_field)
        if day is None or at is None:
            return None
        if not date(2000, 1, 1) <= day <= date(2100, 1, 1):
            self.add_error(day_field, "Choose a date between 2000 and 2100.")
            return None
        try:
            return local_datetime(day, at, self.tz)
        except forms.ValidationError as exc:
            self.add_error(time_field, exc)
            return None


class RepairActionForm(LocalDateTimeMixin):
    strategy = forms.ChoiceField(
        choices=[
            (
                "Immediate",
                [(s, RepairAction.Strategy(s).label) for s in RepairAction.IMMEDIATE],
            ),
            (
                "Exploratory",
                [
                    (s.value, s.label)
                    for s in RepairAction.Strategy
                    if s.value not in RepairAction.IMMEDIATE
                ],
            ),
        ]
    )
    description = forms.CharField(
        label="What you said or did", widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )
    client_response = forms.CharField(
        label="How the client responded",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=4000,
    )
    day = forms.DateField(label="Date", widget=DateInput)
    at = forms.TimeField(label="Time", widget=TimeInput)
    appointment = SessionChoiceField(
        queryset=Appointment.objects.none(), required=False, label="In session"
    )

    def __init__(self, *args: Any, flag: RuptureFlag, tz: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        now = timezone.localtime(timezone.now(), timezone=zoneinfo.ZoneInfo(tz))
        self.fields["day"].initial = now.date()
        self.fields["at"].initial = now.time().replace(second=0, microsecond=0)
        field = self.fields["appointment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Appointment.objects.filter(
            episode_id=flag.episode_id, status=Status.ATTENDED
        ).order_by("-starts_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["performed_at"] = self.local_moment(cleaned, "day", "at")
        return cleaned


class OutreachForm(LocalDateTimeMixin):
    channel = forms.ChoiceField(choices=OutreachAttempt.Channel.choices)
    outcome = forms.ChoiceField(choices=OutreachAttempt.Outcome.choices)
    day = forms.DateField(label="Date", widget=DateInput)
    at = forms.TimeField(label="Time", widget=TimeInput)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )

    def __init__(self, *args: Any, tz: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        now = timezone.localtime(timezone.now(), timezone=zoneinfo.ZoneInfo(tz))
        self.fields["day"].initial = now.date()
        self.fields["at"].initial = now.time().replace(second=0, microsecond=0)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["attempted_at"] = self.local_moment(cleaned, "day", "at")
        return cleaned


class EndingPlanForm(forms.Form):
    last_session = SessionChoiceField(queryset=Appointment.objects.none())
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )

    def __init__(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["last_session"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Appointment.objects.filter(
            episode=episode, status__in=[Status.SCHEDULED, Status.CONFIRMED]
        ).order_by("starts_at")


class TerminationOfferForm(LocalDateTimeMixin):
    day = forms.DateField(label="Date", widget=DateInput)
    start_time = forms.TimeField(label="Start", widget=TimeInput)
    duration = forms.TypedChoiceField(label="Length", choices=DURATIONS, coerce=int, initial=50)
    location = forms.ChoiceField(choices=Location.choices, initial=Location.IN_PERSON)
    video_url = forms.URLField(required=False, label="Video link", assume_scheme="https")
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )

    def __init__(self, *args: Any, tz: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        starts_at = self.local_moment(cleaned, "day", "start_time")
        if starts_at is not None and cleaned.get("duration"):
            cleaned["starts_at"] = starts_at
            cleaned["ends_at"] = starts_at + timedelta(minutes=cleaned["duration"])
        return cleaned


class ClosingReviewForm(forms.Form):
    kind = forms.ChoiceField(label="How it ended", choices=EpisodeEnding.Kind.choices)
    goals_and_progress = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=8000, required=False
    )
    what_helps_on_return = forms.CharField(
        label="What helps if the client returns",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=8000,
        required=False,
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )
    closed_on = forms.DateField(widget=DateInput, initial=timezone.localdate)

    def clean_closed_on(self) -> date:
        value: date = self.cleaned_data["closed_on"]
        if value > timezone.localdate() + timedelta(days=1):
            raise forms.ValidationError("An episode cannot close on a date still ahead.")
        return value


class MeasurementPlanForm(forms.Form):
    outcome_instrument = forms.ModelChoiceField(
        queryset=Instrument.objects.none(),
        required=False,
        empty_label="No outcome measure",
    )
    outcome_every_n_sessions = forms.IntegerField(
        label="Before every Nth session",
        min_value=1,
        max_value=52,
        initial=1,
        help_text="1: before every session; 4: before the 1st, 5th, 9th…",
    )
    session_feedback = forms.BooleanField(
        required=False, initial=True, label="Send session feedback after each attended session"
    )

    def __init__(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["outcome_instrument"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = (
            Instrument.objects.available_to(episode.client.practice).active().outcome_measures()
        )


class AlliancePolicyForm(forms.ModelForm[AlliancePolicy]):
    class Meta:
        model = AlliancePolicy
        fields = [
            "low_alliance_below",
            "alliance_drop_points",
            "strain_window_sessions",
            "dropout_after_days",
            "not_on_track_after_sessions",
            "clinician_short_notice_hours",
            "outreach_spacing_days",
            "feedback_link_hours",
            "outcome_lead_hours",
        ]


class InstrumentChoiceForm(forms.Form):
    instrument = forms.ModelChoiceField(queryset=Instrument.objects.none(), label="Questionnaire")

    def __init__(self, *args: Any, episode: Episode, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["instrument"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Instrument.objects.available_to(episode.client.practice).active()
