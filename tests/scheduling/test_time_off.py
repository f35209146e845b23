from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import time_machine
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import Client, User
from scheduling.models import TimeOff
from scheduling.services import availability_warnings

BERLIN = ZoneInfo("Europe/Berlin")


@time_machine.travel(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), tick=False)
def test_a_clinician_adds_leave_and_booking_into_it_warns(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    response = as_clinician.post(
        reverse("time_off"),
        {"first_day": "2026-03-09", "last_day": "2026-03-13", "reason": "Holiday"},
    )
    assert response.status_code == 302
    leave = TimeOff.objects.get(clinician=clinician)
    assert leave.starts_at == datetime(2026, 3, 9, tzinfo=BERLIN)
    assert leave.ends_at == datetime(2026, 3, 14, tzinfo=BERLIN)
    warnings = availability_warnings(
        clinician=clinician,
        starts_at=datetime(2026, 3, 10, 10, tzinfo=BERLIN),
        ends_at=datetime(2026, 3, 10, 11, tzinfo=BERLIN),
    )
    assert any("time off" in w for w in warnings)
    assert b"Holiday" in as_clinician.get(reverse("time_off")).content


def test_time_off_input_errors_are_clear(as_clinician: HttpClient) -> None:
    response = as_clinician.post(
        reverse("time_off"), {"first_day": "2026-03-13", "last_day": "2026-03-09"}
    )
    assert response.status_code == 400
    assert b"cannot be before the first" in response.content
    assert not TimeOff.objects.exists()


def test_only_the_clinician_or_an_admin_manages_leave(
    as_other_clinician: HttpClient, as_outsider: HttpClient, as_admin: HttpClient, clinician: User
) -> None:
    leave = TimeOff.objects.create(
        clinician=clinician,
        starts_at=datetime(2030, 1, 1, tzinfo=UTC),
        ends_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    for http in (as_other_clinician, as_outsider):
        assert http.post(reverse("time_off_delete", args=[leave.pk])).status_code == 404
        assert http.get(reverse("time_off"), {"clinician": clinician.pk}).status_code == 404
    assert TimeOff.objects.filter(pk=leave.pk).exists()
    assert as_admin.post(reverse("time_off_delete", args=[leave.pk])).status_code == 302
    assert not TimeOff.objects.filter(pk=leave.pk).exists()
