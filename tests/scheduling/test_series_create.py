"""scheduling.services.series_create: recurring sessions that keep their local time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from practice.models import Client, Episode, Practice, User
from scheduling.models import Appointment, AppointmentSeries, Status
from scheduling.services import SeriesResult, Slot, series_create
from tests.factories import ClientFactory, EpisodeFactory, book

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKLY = AppointmentSeries.Frequency.WEEKLY
MONTHLY = AppointmentSeries.Frequency.MONTHLY_WEEKDAY


@pytest.fixture(autouse=True)
def _autumn_2026() -> Iterator[time_machine.Traveller]:
    # Thursday 1 October 2026: every series below starts after this.
    with time_machine.travel(datetime(2026, 10, 1, 8, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def first_slot(starts_at: datetime, minutes: int = 50) -> Slot:
    return Slot(starts_at=starts_at, ends_at=starts_at + timedelta(minutes=minutes))


def create(
    clinician: User,
    client: Client,
    starts_at: datetime,
    *,
    frequency: str = WEEKLY,
    interval: int = 1,
    until: date | None = None,
    count: int | None = None,
) -> SeriesResult:
    return series_create(
        clinician=clinician,
        client=client,
        first=first_slot(starts_at),
        frequency=frequency,
        interval=interval,
        until=until,
        count=count,
        actor=clinician,
    )


def local_dates(result: SeriesResult, zone: ZoneInfo) -> list[date]:
    return [a.starts_at.astimezone(zone).date() for a in result.booked]


def use_timezone(clinician: User, tz: str) -> None:
    profile = clinician.membership.clinician_profile
    profile.timezone = tz
    profile.save(update_fields=["timezone"])


def test_a_weekly_series_keeps_ten_oclock_in_berlin_across_the_end_of_summer_time(
    clinician: User, client_record: Client
) -> None:
    # Summer time ends on Sunday 25 October 2026.
    result = create(clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=10)

    assert len(result.booked) == 10
    assert result.conflicts == []
    assert result.series.timezone == "Europe/Berlin"
    for appointment in result.booked:
        assert appointment.starts_at.astimezone(BERLIN).hour == 10
        assert appointment.starts_at.astimezone(BERLIN).minute == 0
        assert appointment.duration == timedelta(minutes=50)
    utc_hours = [a.starts_at.astimezone(UTC).hour for a in result.booked]
    assert utc_hours == [8, 8, 8] + [9] * 7
    assert local_dates(result, BERLIN) == [
        date(2026, 10, 5) + timedelta(weeks=n) for n in range(10)
    ]
    stored = Appointment.objects.filter(series=result.series, status=Status.SCHEDULED)
    assert stored.count() == 10


def test_a_weekly_series_keeps_ten_oclock_in_berlin_across_the_start_of_summer_time(
    clinician: User, client_record: Client, _autumn_2026: time_machine.Traveller
) -> None:
    # Summer time starts on Sunday 28 March 2027.
    _autumn_2026.move_to(datetime(2027, 3, 1, 8, 0, tzinfo=UTC))
    result = create(clinician, client_record, datetime(2027, 3, 8, 10, 0, tzinfo=BERLIN), count=6)

    assert [a.starts_at.astimezone(BERLIN).hour for a in result.booked] == [10] * 6
    assert [a.starts_at.astimezone(UTC).hour for a in result.booked] == [9, 9, 9, 8, 8, 8]


def test_a_weekly_series_keeps_ten_oclock_in_new_york_across_both_changes(
    clinician: User, client_record: Client
) -> None:
    # US daylight time ends on 1 November 2026 and starts again on 14 March 2027: the
    # clinician's own zone counts, not the practice's (Berlin changes on other dates).
    use_timezone(clinician, "America/New_York")
    result = create(
        clinician, client_record, datetime(2026, 10, 19, 10, 0, tzinfo=NEW_YORK), count=23
    )

    assert result.series.timezone == "America/New_York"
    assert len(result.booked) == 23
    assert all(a.starts_at.astimezone(NEW_YORK).hour == 10 for a in result.booked)
    by_date = {a.starts_at.astimezone(NEW_YORK).date(): a.starts_at for a in result.booked}
    assert by_date[date(2026, 10, 26)].astimezone(UTC).hour == 14  # EDT, UTC-4
    assert by_date[date(2026, 11, 2)].astimezone(UTC).hour == 15  # EST, UTC-5
    assert by_date[date(2027, 3, 8)].astimezone(UTC).hour == 15
    assert by_date[date(2027, 3, 15)].astimezone(UTC).hour == 14  # EDT again
    # Between 25 October and 1 November Berlin is already on winter time, New York not yet.
    assert by_date[date(2026, 10, 26)].astimezone(BERLIN).hour == 15
    assert by_date[date(2026, 11, 2)].astimezone(BERLIN).hour == 16


def test_a_series_every_two_weeks(clinician: User, client_record: Client) -> None:
    result = create(
        clinician, client_record, datetime(2026, 10, 7, 15, 0, tzinfo=BERLIN), interval=2, count=5
    )

    assert local_dates(result, BERLIN) == [
        date(2026, 10, 7),
        date(2026, 10, 21),
        date(2026, 11, 4),
        date(2026, 11, 18),
        date(2026, 12, 2),
    ]
    assert all(a.starts_at.astimezone(BERLIN).hour == 15 for a in result.booked)


def test_a_monthly_series_keeps_the_second_tuesday(clinician: User, client_record: Client) -> None:
    result = create(
        clinician,
        client_record,
        datetime(2026, 10, 13, 9, 0, tzinfo=BERLIN),
        frequency=MONTHLY,
        count=6,
    )

    days = local_dates(result, BERLIN)
    assert days == [
        date(2026, 10, 13),
        date(2026, 11, 10),
        date(2026, 12, 8),
        date(2027, 1, 12),
        date(2027, 2, 9),
        date(2027, 3, 9),
    ]
    assert all(day.isoweekday() == 2 and 8 <= day.day <= 14 for day in days)
    assert all(a.starts_at.astimezone(BERLIN).hour == 9 for a in result.booked)


def test_a_monthly_series_from_a_fifth_weekday_becomes_the_last_weekday(
    clinician: User, client_record: Client
) -> None:
    # 29 October 2026 is the fifth Thursday; most months have only four.
    result = create(
        clinician,
        client_record,
        datetime(2026, 10, 29, 11, 0, tzinfo=BERLIN),
        frequency=MONTHLY,
        count=5,
    )

    days = local_dates(result, BERLIN)
    assert days == [
        date(2026, 10, 29),
        date(2026, 11, 26),
        date(2026, 12, 31),
        date(2027, 1, 28),
        date(2027, 2, 25),
    ]
    for day in days:
        assert day.isoweekday() == 4
        assert (day + timedelta(weeks=1)).month != day.month  # the last one of its month


def test_a_series_can_end_on_a_date_and_includes_that_day(
    clinician: User, client_record: Client
) -> None:
    result = create(
        clinician,
        client_record,
        datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN),
        until=date(2026, 11, 2),
    )

    assert local_dates(result, BERLIN) == [
        date(2026, 10, 5),
        date(2026, 10, 12),
        date(2026, 10, 19),
        date(2026, 10, 26),
        date(2026, 11, 2),
    ]
    assert (result.series.until, result.series.count) == (date(2026, 11, 2), None)


def test_a_series_can_end_after_a_number_of_sessions(
    clinician: User, client_record: Client
) -> None:
    result = create(clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=3)

    assert len(result.booked) == 3
    assert (result.series.until, result.series.count) == (None, 3)


def test_a_long_series_is_capped(clinician: User, client_record: Client) -> None:
    result = create(
        clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=300
    )
    assert len(result.booked) == AppointmentSeries.MAX_OCCURRENCES


@pytest.mark.parametrize(
    ("until", "count"), [(None, None), (date(2026, 12, 1), 5)], ids=["neither", "both"]
)
def test_a_series_ends_either_on_a_date_or_after_a_count(
    clinician: User, client_record: Client, until: date | None, count: int | None
) -> None:
    with pytest.raises(ValidationError):
        create(
            clinician,
            client_record,
            datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN),
            until=until,
            count=count,
        )
    assert not AppointmentSeries.objects.exists()
    assert not Appointment.objects.exists()


def test_a_series_cannot_end_before_it_starts(clinician: User, client_record: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        create(
            clinician,
            client_record,
            datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN),
            until=date(2026, 10, 4),
        )
    assert "until" in refused.value.message_dict
    assert not AppointmentSeries.objects.exists()


def test_a_series_needs_an_open_episode(
    clinician: User, practice: Practice, client_record: Client
) -> None:
    Episode.objects.get(client=client_record).close(
        reason=Episode.CloseReason.COMPLETED, on=date(2026, 10, 1)
    )
    with pytest.raises(ValidationError):
        create(clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=4)
    assert not AppointmentSeries.objects.exists()


def test_a_series_books_every_free_occurrence_and_reports_each_conflict(
    practice: Practice, clinician: User, other_clinician: User, client_record: Client
) -> None:
    # The clinician sees Zora on 19 October at 09:30; the client sees someone else on
    # 9 November at 10:20 (an earlier episode with the other clinician).
    zora = ClientFactory.create(practice=practice, first_name="Zora", last_name="Quist")
    book(clinician, zora, datetime(2026, 10, 19, 9, 30, tzinfo=BERLIN))
    EpisodeFactory.create(
        client=client_record,
        clinician=other_clinician,
        stage=Episode.Stage.CLOSED,
        opened_on=date(2026, 5, 4),
        closed_on=date(2026, 9, 28),
        close_reason=Episode.CloseReason.TRANSFERRED,
    )
    book(other_clinician, client_record, datetime(2026, 11, 9, 10, 20, tzinfo=BERLIN))

    result = create(clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=10)

    all_dates = [date(2026, 10, 5) + timedelta(weeks=n) for n in range(10)]
    conflict_dates = [start.astimezone(BERLIN).date() for start, _ in result.conflicts]
    assert conflict_dates == [date(2026, 10, 19), date(2026, 11, 9)]
    assert all(start.astimezone(BERLIN).hour == 10 for start, _ in result.conflicts)
    # Nothing dropped silently: every occurrence is either booked or reported.
    assert len(result.booked) == 8
    assert sorted(local_dates(result, BERLIN) + conflict_dates) == all_dates
    assert Appointment.objects.filter(series=result.series).count() == 8

    clinician_clash, client_clash = (message for _, message in result.conflicts)
    assert "09:30–10:20" in clinician_clash and "(client ZQ)" in clinician_clash
    assert "Zora" not in clinician_clash
    assert client_record.full_name in client_clash and "10:20–11:10" in client_clash
    assert other_clinician.last_name not in client_clash
    assert other_clinician.email not in client_clash


@pytest.mark.usefixtures("run_on_commit")
def test_a_series_sends_one_notice_listing_the_booked_sessions(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    zora = ClientFactory.create(practice=practice)
    book(clinician, zora, datetime(2026, 10, 12, 10, 0, tzinfo=BERLIN))

    result = create(clinician, client_record, datetime(2026, 10, 5, 10, 0, tzinfo=BERLIN), count=4)

    assert len(result.booked) == 3
    assert len(mail.outbox) == 1
    listed = [line for line in mail.outbox[0].body.splitlines() if line.startswith("- ")]
    assert len(listed) == 3
    assert "12 October" not in mail.outbox[0].body
