"""Workload warnings in the booking form, the required reason, and who sees the alerts page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import Client, ClinicianProfile, Practice, User
from scheduling.models import Appointment, WorkloadAlert
from scheduling.workload import workload_sweep
from tests.factories import PairingFactory, book

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = date(2026, 3, 2)
Kind = WorkloadAlert.Kind
pytestmark = pytest.mark.usefixtures("run_on_commit")


@pytest.fixture(autouse=True)
def _monday_morning() -> Iterator[None]:
    # Monday 2 March 2026, 08:00 in Berlin.
    with time_machine.travel(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), tick=False):
        yield


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


def form(client: Client, **overrides: object) -> dict[str, object]:
    return {
        "client": client.pk,
        "day": "2026-03-03",
        "start_time": "10:10",
        "duration": "60",
        "kind": "session",
        "location": "in_person",
        "repeat": "none",
        **overrides,
    }


@pytest.fixture
def full_week(clinician: User, client_record: Client) -> None:
    """33 booked hours: a full day Monday, Wednesday to Friday, and 09:00-10:00 Tuesday."""
    for day in (2, 4, 5, 6):
        book(clinician, client_record, at(day, 9), minutes=8 * 60)
    book(clinician, client_record, at(3, 9), minutes=60)


# --- Warnings and the reason in the booking form -----------------------------------------


@pytest.mark.usefixtures("full_week")
def test_booking_past_the_weekly_cap_warns_with_the_hours_it_makes(
    as_clinician: HttpClient, client_record: Client
) -> None:
    response = as_clinician.post(reverse("appointment_new"), form(client_record))
    assert response.status_code == 200
    assert "This makes 34 of 30 hours this week." in response.content.decode()
    assert Appointment.objects.count() == 5


@pytest.mark.usefixtures("full_week")
def test_booking_anyway_needs_no_reason_unless_the_practice_asks(
    as_clinician: HttpClient, client_record: Client
) -> None:
    response = as_clinician.post(reverse("appointment_new"), form(client_record, book_anyway="on"))
    assert response.status_code == 302
    assert Appointment.objects.get(starts_at=at(3, 10, 10)).override_reason == ""


@pytest.mark.usefixtures("full_week")
def test_the_practice_can_require_a_written_reason_which_is_kept(
    as_clinician: HttpClient, client_record: Client, practice: Practice
) -> None:
    practice.overbooking_needs_reason = True
    practice.save()
    url = reverse("appointment_new")
    response = as_clinician.post(url, form(client_record, book_anyway="on"))
    assert response.status_code == 400
    assert b"Give a reason for booking past the limit." in response.content
    assert Appointment.objects.count() == 5

    response = as_clinician.post(
        url, form(client_record, book_anyway="on", override_reason="Crisis session, agreed.")
    )
    assert response.status_code == 302
    booked = Appointment.objects.get(starts_at=at(3, 10, 10))
    assert booked.override_reason == "Crisis session, agreed."


@pytest.mark.usefixtures("full_week")
def test_a_series_past_the_limit_keeps_the_reason_on_every_session(
    as_clinician: HttpClient, client_record: Client, practice: Practice
) -> None:
    practice.overbooking_needs_reason = True
    practice.save()
    data = form(
        client_record, repeat="weekly", interval="1", count="2", book_anyway="on",
        override_reason="Covering for a colleague.",
    )  # fmt: skip
    response = as_clinician.post(reverse("appointment_new"), data)
    assert response.status_code == 200
    series = Appointment.objects.filter(series__isnull=False)
    assert series.count() == 2
    assert {a.override_reason for a in series} == {"Covering for a colleague."}


def test_a_booking_within_the_limits_needs_no_reason(
    as_clinician: HttpClient, client_record: Client, practice: Practice
) -> None:
    practice.overbooking_needs_reason = True
    practice.save()
    response = as_clinician.post(reverse("appointment_new"), form(client_record))
    assert response.status_code == 302
    assert Appointment.objects.get().override_reason == ""


def test_a_day_off_is_named_once_though_both_checks_see_it(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    ClinicianProfile.objects.filter(membership__user=clinician).update(working_days=[1, 2, 4, 5])
    response = as_clinician.post(reverse("appointment_new"), form(client_record, day="2026-03-04"))
    assert response.status_code == 200
    assert response.content.decode().count("Wednesday is not one of this clinician") == 1


def test_a_sunday_booking_names_the_rest_day(
    as_clinician: HttpClient, client_record: Client
) -> None:
    response = as_clinician.post(reverse("appointment_new"), form(client_record, day="2026-03-08"))
    assert "Sunday is a rest day." in response.content.decode()


# --- Who sees the alerts page ------------------------------------------------------------


def alert(clinician: User, practice: Practice, **fields: object) -> WorkloadAlert:
    values: dict[str, object] = {
        "week_start": WEEK,
        "kind": Kind.WEEKLY_HOURS,
        "measured": 34,
        "limit": 30,
        **fields,
    }
    return WorkloadAlert.objects.create(practice=practice, clinician=clinician, **values)


@pytest.fixture
def alerts(
    practice: Practice, clinician: User, other_clinician: User, outsider: User
) -> dict[str, WorkloadAlert]:
    return {
        "ours": alert(clinician, practice),
        "resolved": alert(
            clinician,
            practice,
            kind=Kind.SHORT_BREAKS,
            resolved_at=datetime(2026, 3, 1, tzinfo=UTC),
        ),
        "colleague": alert(other_clinician, practice, kind=Kind.OUTSIDE_HOURS, measured=3, limit=0),
        "elsewhere": alert(outsider, outsider.membership.practice, kind=Kind.NO_REST_DAY),
    }


def shown(http: HttpClient) -> set[tuple[str, str]]:
    response = http.get(reverse("workload_alerts"))
    assert response.status_code == 200
    return {(a.clinician.email, a.kind) for a in response.context["alerts"]}


BOB = ("bob@lindenhof.example", Kind.WEEKLY_HOURS)
CAROL = ("carol@lindenhof.example", Kind.OUTSIDE_HOURS)


@pytest.mark.usefixtures("alerts")
def test_a_clinician_sees_their_own_open_alerts(as_clinician: HttpClient) -> None:
    response = as_clinician.get(reverse("workload_alerts"))
    content = response.content.decode()
    assert "Booked hours over the weekly cap" in content
    assert "34 of 30" in content
    assert "Mon 2 Mar 2026" in content
    assert shown(as_clinician) == {BOB}


@pytest.mark.usefixtures("alerts")
def test_another_clinician_sees_none_of_ours(as_other_clinician: HttpClient) -> None:
    assert shown(as_other_clinician) == {CAROL}


@pytest.mark.usefixtures("alerts")
def test_a_supervisor_sees_their_current_supervisees_alerts(as_supervisor: HttpClient) -> None:
    assert shown(as_supervisor) == {BOB}


@pytest.mark.usefixtures("alerts")
def test_a_supervisor_whose_pairing_ended_sees_nothing(
    practice: Practice, other_clinician: User, supervisor: User
) -> None:
    PairingFactory.create(
        practice=practice,
        supervisor=supervisor,
        supervisee=other_clinician,
        started_on=date(2025, 1, 1),
        ended_on=date(2026, 1, 1),
    )
    http = HttpClient()
    http.force_login(supervisor)
    assert shown(http) == {BOB}


@pytest.mark.usefixtures("alerts")
def test_an_admin_sees_the_practices_alerts(as_admin: HttpClient) -> None:
    assert shown(as_admin) == {BOB, CAROL}


@pytest.mark.usefixtures("alerts")
def test_an_outsider_sees_none_of_ours(as_outsider: HttpClient) -> None:
    assert shown(as_outsider) == {("mallory@else.example", Kind.NO_REST_DAY)}


@pytest.mark.usefixtures("alerts")
def test_a_client_gets_404(as_client: HttpClient) -> None:
    assert as_client.get(reverse("workload_alerts")).status_code == 404


def test_signing_in_comes_first(db: None) -> None:
    response = HttpClient().get(reverse("workload_alerts"))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_weeks_the_sweep_no_longer_keeps_current_are_not_shown(
    as_clinician: HttpClient, clinician: User, practice: Practice
) -> None:
    alert(clinician, practice, week_start=WEEK - timedelta(weeks=4))
    alert(clinician, practice, week_start=WEEK - timedelta(weeks=5))
    response = as_clinician.get(reverse("workload_alerts"))
    assert [a.week_start for a in response.context["alerts"]] == [WEEK - timedelta(weeks=4)]


def test_the_page_shows_what_the_sweep_found(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(8, 10))
    workload_sweep(now=datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    content = as_clinician.get(reverse("workload_alerts")).content.decode()
    assert "Sessions on rest days" in content
    assert "1 of 0" in content
