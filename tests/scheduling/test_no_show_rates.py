from __future__ import annotations

from datetime import UTC, datetime, timedelta

from practice.models import Client, Practice, User
from scheduling.models import Appointment, Status
from tests.factories import ClientFactory, book

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_no_show_rates_per_client_and_per_clinician_over_90_days(
    clinician: User, client_record: Client, practice: Practice
) -> None:
    other = ClientFactory.create(practice=practice)
    statuses = [Status.ATTENDED, Status.NO_SHOW, Status.NO_SHOW, Status.LATE_CANCELLED]
    for n, status in enumerate(statuses):
        book(clinician, client_record, NOW - timedelta(days=10 + n), status=status)
    book(clinician, other, NOW - timedelta(days=3), status=Status.ATTENDED)
    book(clinician, other, NOW - timedelta(days=120), status=Status.NO_SHOW)  # too old
    book(clinician, other, NOW + timedelta(days=3))  # not due yet

    by_client = {row["client"]: row for row in Appointment.objects.no_show_rates("client", now=NOW)}
    assert by_client[client_record.pk]["sessions"] == 3
    assert by_client[client_record.pk]["no_shows"] == 2
    assert abs(by_client[client_record.pk]["no_show_rate"] - 2 / 3) < 1e-9
    assert by_client[other.pk]["no_show_rate"] == 0.0

    (row,) = Appointment.objects.for_clinician(clinician).no_show_rates("clinician", now=NOW)
    assert (row["sessions"], row["no_shows"]) == (4, 2)
    assert row["no_show_rate"] == 0.5
