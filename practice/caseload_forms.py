"""Forms of the admin's caseload pages. They validate and normalise; practice.caseload persists.

Part of a top-layer page module (see practice/caseload.py): the practice core never
imports it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from practice.caseload import BOARD_SORTS, BoardFilters
from practice.forms import DateInput
from practice.models import Membership, Practice, User

SORT_CHOICES = [
    choice
    for key, (label, _) in BOARD_SORTS.items()
    for choice in ((key, f"{label}, ascending"), (f"-{key}", f"{label}, descending"))
]

CHECKBOX = forms.CheckboxInput(attrs={"class": "form-check-input"})


def _clinician_field(
    queryset: Any,
    *,
    label: str = "Clinician",
    required: bool = True,
    empty_label: str = "---------",
) -> forms.ModelChoiceField[User]:
    field: forms.ModelChoiceField[User] = forms.ModelChoiceField(
        queryset=queryset,
        label=label,
        required=required,
        empty_label=empty_label,
        error_messages={
            "required": "Choose a clinician.",
            "invalid_choice": "Choose a clinician of this practice from the list.",
        },
    )
    return field


def active_clinician_users(practice: Practice) -> Any:
    members = Membership.objects.active().in_practice(practice).clinicians()
    return User.objects.filter(membership__in=members).order_by("last_name", "first_name", "pk")


class BoardFilterForm(forms.Form):
    """The board's GET parameters. Every field is optional: no parameters, the whole board."""

    q = forms.CharField(
        label="Name or email",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control", "type": "search"}),
    )
    over_capacity = forms.BooleanField(label="Over capacity", required=False, widget=CHECKBOX)
    over_hours = forms.BooleanField(
        label="Over the weekly hours cap", required=False, widget=CHECKBOX
    )
    with_flags = forms.BooleanField(label="With open flags", required=False, widget=CHECKBOX)
    with_alerts = forms.BooleanField(
        label="With open workload alerts", required=False, widget=CHECKBOX
    )
    sort = forms.ChoiceField(
        label="Sort by",
        choices=SORT_CHOICES,
        required=False,
        error_messages={
            "invalid_choice": "Sort by one of the board's columns: "
            + ", ".join(BOARD_SORTS)
            + " (add a leading - to reverse)."
        },
    )

    def filters(self) -> BoardFilters:
        """The validated filters; the whole board, by name, when the parameters were bad."""
        if not self.is_valid():
            return BoardFilters()
        data = self.cleaned_data
        return BoardFilters(
            query=data["q"].strip(),
            over_capacity=data["over_capacity"],
            over_hours=data["over_hours"],
            with_flags=data["with_flags"],
            with_alerts=data["with_alerts"],
            sort=data["sort"] or "name",
        )


class AssignForm(forms.Form):
    over_capacity_reason = forms.CharField(
        label="Reason to assign over capacity",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {
            "clinician": _clinician_field(active_clinician_users(practice)),
            **self.fields,
        }


class TransferForm(forms.Form):
    handoff_note = forms.CharField(
        label="Handoff note",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="For the new clinician: where the work stands and what to watch for.",
        error_messages={"required": "Write a handoff note for the new clinician."},
    )
    over_capacity_reason = forms.CharField(
        label="Reason to assign over capacity",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Only needed when the new clinician has no free place.",
    )

    def __init__(self, *args: Any, practice: Practice, current: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        others = active_clinician_users(practice).exclude(pk=current.pk)
        self.fields = {
            "clinician": _clinician_field(others, label="New clinician"),
            **self.fields,
        }


class AppointmentsExportForm(forms.Form):
    first_day = forms.DateField(label="From", widget=DateInput)
    last_day = forms.DateField(label="To (inclusive)", widget=DateInput)

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Former clinicians too: an export covers history.
        clinicians = User.objects.filter(
            membership__in=Membership.objects.in_practice(practice).clinicians()
        ).order_by("last_name", "first_name", "pk")
        self.fields["clinician"] = _clinician_field(
            clinicians, required=False, empty_label="All clinicians"
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first: date | None = cleaned.get("first_day")
        last: date | None = cleaned.get("last_day")
        for name, day in (("first_day", first), ("last_day", last)):
            if day is not None and not date(2000, 1, 1) <= day <= date(2100, 1, 1):
                self.add_error(name, "Choose a date between 2000 and 2100.")
                return cleaned
        if first and last and last < first:
            self.add_error("last_day", "The last day must be on or after the first.")
        return cleaned
