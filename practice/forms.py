"""Forms validate and normalise; the services in practice.services persist."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.contrib.postgres.forms import SimpleArrayField
from django.utils import timezone

from practice.models import Client, ClinicianProfile, Episode, Membership, Practice, User, Weekday

ROLE_CHOICES = [("admin", "Admin"), ("clinician", "Clinician"), ("supervisor", "Supervisor")]


class DateInput(forms.DateInput):
    input_type = "date"


class TimeInput(forms.TimeInput):
    input_type = "time"


def _staff_choices(practice: Practice, *, role: str) -> forms.ModelChoiceField[User]:
    members = Membership.objects.active().in_practice(practice).filter(**{f"is_{role}": True})
    field: forms.ModelChoiceField[User] = forms.ModelChoiceField(
        queryset=User.objects.filter(membership__in=members).order_by("last_name", "first_name"),
        label=role.capitalize(),
    )
    return field


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ROLE_CHOICES, **kwargs)
        self.error_messages["required"] = "Choose at least one role."

    def clean(self, value: Any) -> tuple[str, ...]:
        return tuple(super().clean(value))


class StaffInviteForm(forms.Form):
    email = forms.EmailField()
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    roles = RolesField()

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("Someone with this email address already has a login.")
        return email


class ClientInviteForm(forms.Form):
    email = forms.EmailField(help_text="The portal login. Usually the client's contact email.")

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("Someone with this email address already has a login.")
        return email


class MembershipForm(forms.Form):
    roles = RolesField()
    is_active = forms.BooleanField(required=False, label="Active")


class WeekdaysField(forms.TypedMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Weekday.choices, coerce=int, **kwargs)


class ClinicianProfileForm(forms.ModelForm[ClinicianProfile]):
    languages = SimpleArrayField(
        forms.CharField(max_length=40), required=False, help_text="Comma-separated."
    )
    specialties = SimpleArrayField(
        forms.CharField(max_length=60), required=False, help_text="Comma-separated."
    )
    working_days = WeekdaysField()

    class Meta:
        model = ClinicianProfile
        fields = [
            "languages",
            "specialties",
            "caseload_capacity",
            "timezone",
            "working_days",
            "work_starts",
            "work_ends",
            "agenda_time",
        ]
        widgets = {
            "work_starts": TimeInput(),
            "work_ends": TimeInput(),
            "agenda_time": TimeInput(),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        starts, ends = cleaned.get("work_starts"), cleaned.get("work_ends")
        if starts and ends and ends <= starts:
            self.add_error("work_ends", "Working hours must end after they start.")
        return cleaned


class ClientForm(forms.ModelForm[Client]):
    needs = SimpleArrayField(
        forms.CharField(max_length=60),
        required=False,
        help_text="Comma-separated, e.g. anxiety, grief.",
    )
    preferred_times = forms.MultipleChoiceField(
        choices=Client.TimeOfDay.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Client
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "preferred_language",
            "timezone",
            "needs",
            "preferred_clinician_gender",
            "cultural_background",
            "preferred_times",
            "email_reminders",
            "sms_reminders",
        ]
        help_texts = {"cultural_background": "Only if the client chose to give it."}

    def clean_phone(self) -> str:
        phone: str = self.cleaned_data["phone"].strip().replace(" ", "")
        if phone and not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
            raise forms.ValidationError(
                "Enter the number in international format, e.g. +4930123456."
            )
        return phone

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("email") and not cleaned.get("phone"):
            raise forms.ValidationError("Give an email address or a phone number.")
        return cleaned


class EpisodeOpenForm(forms.Form):
    opened_on = forms.DateField(widget=DateInput, initial=timezone.localdate)
    stage = forms.ChoiceField(
        choices=[c for c in Episode.Stage.choices if c[0] != Episode.Stage.CLOSED],
        initial=Episode.Stage.INTAKE,
    )

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {"clinician": _staff_choices(practice, role="clinician"), **self.fields}


class EpisodeStageForm(forms.Form):
    stage = forms.ChoiceField(
        choices=[c for c in Episode.Stage.choices if c[0] != Episode.Stage.CLOSED]
    )


class EpisodeCloseForm(forms.Form):
    reason = forms.ChoiceField(choices=Episode.CloseReason.choices)
    closed_on = forms.DateField(widget=DateInput, initial=timezone.localdate)

    def clean_closed_on(self) -> date:
        closed_on: date = self.cleaned_data["closed_on"]
        if closed_on > timezone.localdate():
            raise forms.ValidationError("An episode cannot close in the future.")
        return closed_on


class PairingForm(forms.Form):
    started_on = forms.DateField(widget=DateInput, initial=timezone.localdate)

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {
            "supervisor": _staff_choices(practice, role="supervisor"),
            "supervisee": _staff_choices(practice, role="clinician"),
            **self.fields,
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("supervisor") and cleaned.get("supervisor") == cleaned.get("supervisee"):
            raise forms.ValidationError("Nobody supervises themselves.")
        return cleaned


class PairingEndForm(forms.Form):
    ended_on = forms.DateField(
        widget=DateInput, initial=timezone.localdate, help_text="The first day without supervision."
    )


class InvitationAcceptForm(forms.Form):
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second:
            if first != second:
                self.add_error("password2", "The two passwords differ.")
            else:
                probe = User(
                    email=self.email,
                    first_name=cleaned.get("first_name", ""),
                    last_name=cleaned.get("last_name", ""),
                )
                try:
                    validate_password(first, user=probe)
                except forms.ValidationError as exc:
                    self.add_error("password1", exc)
        return cleaned


class AuditFilterForm(forms.Form):
    """Search the audit log: who, which client, which action, between which days."""

    actor = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="Who", empty_label="Anyone"
    )
    client = forms.CharField(
        required=False, max_length=100, label="Client", help_text="Name, or the client's number."
    )
    action = forms.CharField(required=False, max_length=64, label="Action")
    date_from = forms.DateField(required=False, label="From", widget=DateInput)
    date_to = forms.DateField(required=False, label="To", widget=DateInput)

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["actor"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = User.objects.filter(membership__practice=practice).order_by("email")
        for each in self.fields.values():
            is_select = isinstance(each.widget, forms.Select)
            each.widget.attrs["class"] = "form-select" if is_select else "form-control"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned
