"""Booking forms: they turn local dates and times into aware datetimes and validate them."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms

from practice.forms import DateInput, TimeInput
from practice.models import Client, Membership, Practice, User
from scheduling.models import AppointmentSeries, Kind, Location, Status

DURATIONS = [(30, "30 min"), (45, "45 min"), (50, "50 min"), (60, "60 min"), (90, "90 min")]
SCOPES = [("this", "Only this session"), ("following", "This and all following in the series")]


def local_datetime(day: date, at: time, tz: str) -> datetime:
    """An aware datetime for a local wall-clock time, refusing times that do not exist.

    On the night clocks go forward, 02:30 does not happen; booking it would silently land
    at 03:30, so we say so instead.
    """
    zone = zoneinfo.ZoneInfo(tz)
    moment = datetime.combine(day, at, tzinfo=zone)
    round_trip = moment.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(zone)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        raise forms.ValidationError(
            f"{at:%H:%M} does not exist on {day:%d %b %Y} in {tz}: the clocks change that night."
        )
    return moment


class SlotFieldsMixin(forms.Form):
    day = forms.DateField(label="Date", widget=DateInput)
    start_time = forms.TimeField(label="Start", widget=TimeInput)
    duration = forms.TypedChoiceField(label="Length", choices=DURATIONS, coerce=int, initial=50)

    tz: str = "UTC"

    def clean_slot(self, cleaned: dict[str, Any]) -> None:
        day, at, minutes = cleaned.get("day"), cleaned.get("start_time"), cleaned.get("duration")
        if day is None or at is None or minutes is None:
            return
        if not date(2000, 1, 1) <= day <= date(2100, 1, 1):
            self.add_error("day", "Choose a date between 2000 and 2100.")
            return
        try:
            starts_at = local_datetime(day, at, self.tz)
        except forms.ValidationError as exc:
            self.add_error("start_time", exc)
            return
        cleaned["starts_at"] = starts_at
        cleaned["ends_at"] = starts_at + timedelta(minutes=minutes)


class BookingForm(SlotFieldsMixin):
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.SESSION)
    location = forms.ChoiceField(choices=Location.choices, initial=Location.IN_PERSON)
    video_url = forms.URLField(label="Video link", required=False, assume_scheme="https")
    fee_waived = forms.BooleanField(label="Fee waived (free termination session)", required=False)
    repeat = forms.ChoiceField(
        choices=[("none", "Does not repeat"), *AppointmentSeries.Frequency.choices],
        initial="none",
    )
    interval = forms.IntegerField(
        label="Every N weeks", min_value=1, max_value=12, initial=1, required=False
    )
    until = forms.DateField(
        label="Repeat until", widget=DateInput, required=False, help_text="Or give a count."
    )
    count = forms.IntegerField(
        label="Number of sessions", min_value=1, max_value=AppointmentSeries.MAX_OCCURRENCES,
        required=False,
    )  # fmt: skip
    book_anyway = forms.BooleanField(
        required=False,
        label="Book anyway",
        help_text="Tick to book despite the warnings above.",
    )
    override_reason = forms.CharField(
        label="Reason for booking past a workload limit",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the session. Your practice may ask for one.",
    )

    def __init__(
        self, *args: Any, practice: Practice, clinician: User | None, tz: str, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        clients = Client.objects.in_practice(practice).filter(episodes__closed_on__isnull=True)
        fields: dict[str, forms.Field] = {}
        if clinician is None:
            members = Membership.objects.active().in_practice(practice).clinicians()
            fields["clinician"] = forms.ModelChoiceField(
                queryset=User.objects.filter(membership__in=members).order_by("last_name"),
                label="Clinician",
            )
        else:
            clients = clients.filter(episodes__clinician=clinician)
        fields["client"] = forms.ModelChoiceField(
            queryset=clients.distinct().order_by("last_name", "first_name"),
            label="Client",
            help_text="Clients with an open episode.",
        )
        self.fields = {**fields, **self.fields}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_slot(cleaned)
        if cleaned.get("location") == Location.VIDEO and not cleaned.get("video_url"):
            self.add_error("video_url", "A video session needs its link.")
        if cleaned.get("fee_waived") and cleaned.get("kind") != Kind.TERMINATION:
            self.add_error("fee_waived", "Only a termination session can be fee-waived.")
        if cleaned.get("repeat", "none") != "none":
            until, count = cleaned.get("until"), cleaned.get("count")
            if (until is None) == (count is None):
                self.add_error("until", "End the series on a date or after a number of sessions.")
            elif until is not None and cleaned.get("day") and until < cleaned["day"]:
                self.add_error("until", "The series must end after its first session.")
            cleaned["interval"] = cleaned.get("interval") or 1
        return cleaned


class RescheduleForm(SlotFieldsMixin):
    scope = forms.ChoiceField(choices=SCOPES, initial="this", widget=forms.RadioSelect)

    def __init__(self, *args: Any, tz: str, in_series: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        if not in_series:
            del self.fields["scope"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_slot(cleaned)
        cleaned.setdefault("scope", "this")
        return cleaned


class CancelForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)
    scope = forms.ChoiceField(choices=SCOPES, initial="this", widget=forms.RadioSelect)

    def __init__(self, *args: Any, in_series: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not in_series:
            del self.fields["scope"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned.setdefault("scope", "this")
        return cleaned


class TimeOffForm(forms.Form):
    first_day = forms.DateField(widget=DateInput)
    last_day = forms.DateField(widget=DateInput, help_text="Inclusive.")
    reason = forms.CharField(max_length=120, required=False, help_text="Optional, e.g. holiday.")

    def __init__(self, *args: Any, tz: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last:
            if last < first:
                self.add_error("last_day", "The last day cannot be before the first.")
            elif (last - first).days > 366:
                self.add_error("last_day", "Enter at most a year of time off at once.")
            else:
                zone = zoneinfo.ZoneInfo(self.tz)
                cleaned["starts_at"] = datetime.combine(first, time.min, tzinfo=zone)
                cleaned["ends_at"] = datetime.combine(
                    last + timedelta(days=1), time.min, tzinfo=zone
                )
        return cleaned


class AttendanceForm(forms.Form):
    status = forms.ChoiceField(
        choices=[
            (Status.ATTENDED, "Attended"),
            (Status.NO_SHOW, "No-show"),
            (Status.LATE_CANCELLED, "Late cancel"),
        ]
    )
