"""Supervision forms: they validate and normalise; `alliance.supervision` persists."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from alliance.forms import LocalDateTimeMixin
from alliance.models import SupervisionSession
from alliance.supervision import QueueKind
from practice.forms import DateInput, TimeInput
from practice.models import User


class PersonChoiceField(forms.ModelChoiceField[User]):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.email


class QueueFilterForm(forms.Form):
    supervisee = PersonChoiceField(
        queryset=User.objects.none(), required=False, empty_label="All supervisees"
    )
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *QueueKind.choices], required=False, label="Kind"
    )

    def __init__(self, *args: Any, supervisees: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["supervisee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = User.objects.filter(pk__in=[s.pk for s in supervisees]).order_by(
            "last_name", "first_name", "pk"
        )


class TriageNoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, required=False, label="Note"
    )


class AgendaAddForm(forms.Form):
    topic = forms.CharField(
        max_length=200,
        required=False,
        label="What to discuss",
        help_text="Optional: a line for the agenda, e.g. “how the ending was planned”.",
    )


class RepairPlanRequestForm(forms.Form):
    note = forms.CharField(
        label="What the plan should address",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
    )


class FlagCloseForm(forms.Form):
    note = forms.CharField(
        label="Why it needs no more work",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=4000,
    )


class RepairPlanAnswerForm(forms.Form):
    plan = forms.CharField(
        label="Your repair plan",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=8000,
    )


class SupervisionSessionForm(LocalDateTimeMixin):
    supervisee = PersonChoiceField(queryset=User.objects.none())
    day = forms.DateField(label="Date", widget=DateInput)
    at = forms.TimeField(label="Time", widget=TimeInput)

    def __init__(self, *args: Any, supervisees: list[User], tz: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        field = self.fields["supervisee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = User.objects.filter(pk__in=[s.pk for s in supervisees]).order_by(
            "last_name", "first_name", "pk"
        )
        self.fields["day"].initial = timezone.localdate() + timedelta(days=7)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        scheduled_for: datetime | None = self.local_moment(cleaned, "day", "at")
        if scheduled_for is not None:
            cleaned["scheduled_for"] = scheduled_for
        return cleaned


class SessionRecordForm(forms.Form):
    attendance = forms.ChoiceField(choices=SupervisionSession.Attendance.choices)
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=20000, required=False
    )


class AgendaTopicForm(forms.Form):
    topic = forms.CharField(max_length=200, label="Topic")


class AgendaDecisionForm(forms.Form):
    decision = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, label="Decision"
    )


class FollowUpForm(forms.Form):
    description = forms.CharField(max_length=300, label="What is to be done")
    owner = forms.TypedChoiceField(coerce=int, label="Who does it")
    due_by = forms.DateField(
        widget=DateInput,
        required=False,
        label="Due by",
        help_text="Empty: the date of the next supervision session.",
    )

    def __init__(self, *args: Any, session: SupervisionSession, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people = {
            session.supervisor.pk: session.supervisor,
            session.supervisee.pk: session.supervisee,
        }
        field = self.fields["owner"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [
            (session.supervisee.pk, f"{session.supervisee} (supervisee)"),
            (session.supervisor.pk, f"{session.supervisor} (supervisor)"),
        ]

    def clean_due_by(self) -> date | None:
        value: date | None = self.cleaned_data.get("due_by")
        if value is not None and not date(2000, 1, 1) <= value <= date(2100, 1, 1):
            raise forms.ValidationError("Choose a date between 2000 and 2100.")
        return value

    def clean_owner(self) -> User:
        return self.people[int(self.cleaned_data["owner"])]


class CountertransferenceNoteForm(forms.Form):
    text = forms.CharField(
        label="What you noticed in yourself",
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=20000,
        help_text="Private: only you and your current supervisor can read it.",
    )
