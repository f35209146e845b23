"""CSV exports for admins: the caseload board and appointments. Operational data only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
import time_machine
from django.http import StreamingHttpResponse
from django.test import Client as HttpClient
from django.urls import reverse

from alliance.models import RuptureFlag
from practice.caseload import APPOINTMENT_COLUMNS, BOARD_COLUMNS
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, Location, Status
from scheduling.services import appointment_cancel
from tests.factories import ClientFactory, EpisodeFactory, book, staff
from tests.practice.caseload_helpers import NOW, alert, at, flag, set_capacity

BOARD_CSV = reverse("caseload_board_csv")
APPOINTMENTS_CSV = reverse("appointments_export")


@pytest.fixture(autouse=True)
def _wednesday_noon() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def body_of(response: object) -> str:
    assert isinstance(response, StreamingHttpResponse)  # streamed, never built in memory
    return b"".join(response.streaming_content).decode()  # type: ignore[arg-type]


def read_csv(response: object) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body_of(response))))


@pytest.fixture
def nadia(practice: Practice) -> User:
    return staff(practice, "clinician", first_name="Nadia", last_name="Berger", mfa=False)


@pytest.fixture
def erin(practice: Practice, nadia: User) -> Client:
    client = ClientFactory.create(
        practice=practice, first_name="Erin", last_name="Vogel", external_id="OLD-7"
    )
    EpisodeFactory.create(client=client, clinician=nadia)
    return client


# --- The board -----------------------------------------------------------------------------


def test_the_board_csv_has_the_documented_columns_and_values(
    as_admin: HttpClient, admin: User, nadia: User, erin: Client, clinician: User
) -> None:
    set_capacity(nadia, 1)
    EpisodeFactory.create(client=ClientFactory.create(practice=erin.practice), clinician=nadia)
    book(nadia, erin, at(6, 4, 10), 90)
    book(nadia, erin, at(5, 20, 10), status=Status.NO_SHOW)
    episode = Episode.objects.get(client=erin)
    flag(episode, summary="Client said the last session felt rushed.")
    flag(episode, rule=RuptureFlag.Rule.SAFETY, summary="PHQ-9 item 9 answered 1.")
    alert(erin.practice, nadia)

    response = as_admin.get(BOARD_CSV)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="caseload-board-2026-06-03.csv"'
    assert response["Cache-Control"] == "no-store"
    rows = read_csv(response)
    assert list(rows[0]) == [name for name, _ in BOARD_COLUMNS]
    by_name = {row["clinician"]: row for row in rows}
    assert by_name["Nadia Berger"] == {
        "clinician": "Nadia Berger",
        "email": nadia.email,
        "active_episodes": "2",
        "capacity": "1",
        "free_places": "-1",
        "hours_this_week": "1.50",
        "hours_next_week": "0.00",
        "weekly_hours_cap": "30",
        "sessions_90_days": "1",
        "no_shows_90_days": "1",
        "no_show_rate_90_days": "1.000",
        "open_workload_alerts": "1",
        "open_flags": "2",
        "open_safety_flags": "1",
    }
    assert by_name[clinician.get_full_name()]["no_show_rate_90_days"] == ""
    assert AuditEvent.objects.filter(actor=admin, action="export.caseload_board").count() == 1


def test_the_board_csv_carries_no_clinical_content(
    as_admin: HttpClient, nadia: User, erin: Client
) -> None:
    flag(Episode.objects.get(client=erin), summary="Client said the last session felt rushed.")
    body = body_of(as_admin.get(BOARD_CSV))
    assert "Erin" not in body and "Vogel" not in body
    assert "rushed" not in body


def test_the_board_csv_uses_the_boards_filters(
    as_admin: HttpClient, nadia: User, erin: Client, clinician: User
) -> None:
    set_capacity(nadia, 0)
    rows = read_csv(as_admin.get(BOARD_CSV, {"over_capacity": "on", "sort": "-episodes"}))
    assert [row["clinician"] for row in rows] == ["Nadia Berger"]
    rows = read_csv(as_admin.get(BOARD_CSV, {"q": clinician.email}))
    assert [row["email"] for row in rows] == [clinician.email]


def test_bad_board_parameters_get_400_and_no_file(as_admin: HttpClient, nadia: User) -> None:
    response = as_admin.get(BOARD_CSV, {"sort": "salary"})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Sort by: Sort by one of the board's columns" in response.content.decode()
    assert not AuditEvent.objects.filter(action="export.caseload_board").exists()


# --- Appointments ---------------------------------------------------------------------------


@pytest.fixture
def june(
    nadia: User, erin: Client, clinician: User, client_record: Client
) -> dict[str, Appointment]:
    """Sessions around 1-7 June in Berlin, for two clinicians."""
    first = book(nadia, erin, at(6, 1, 0, 15), 45, status=Status.ATTENDED)
    late = book(
        nadia,
        erin,
        at(6, 7, 23, 0),
        50,
        location=Location.VIDEO,
        video_url="https://video.example/room-secret",
        override_reason="Client in crisis, booked past the cap.",
    )
    book(nadia, erin, at(6, 8, 0, 30))  # the next day: outside the range
    book(nadia, erin, at(5, 31, 22, 30))  # the day before
    cancelled = book(nadia, erin, at(6, 5, 15))
    appointment_cancel(
        appointment=cancelled,
        by_client=True,
        actor=None,
        via="portal",
        reason="Too low to get out of bed this week.",
    )
    theirs = book(clinician, client_record, at(6, 2, 9))
    return {"first": first, "late": late, "cancelled": cancelled, "theirs": theirs}


def test_the_appointments_csv_covers_the_local_days_asked_for(
    as_admin: HttpClient, admin: User, june: dict[str, Appointment], erin: Client, nadia: User
) -> None:
    response = as_admin.get(APPOINTMENTS_CSV, {"first_day": "2026-06-01", "last_day": "2026-06-07"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="appointments-2026-06-01-to-2026-06-07.csv"'
    )
    rows = read_csv(response)
    assert list(rows[0]) == [name for name, _ in APPOINTMENT_COLUMNS]
    first = june["first"]
    assert [row["appointment_id"] for row in rows] == [
        str(first.pk),
        str(june["theirs"].pk),
        str(june["cancelled"].pk),
        str(june["late"].pk),
    ]
    assert rows[0] == {
        "appointment_id": str(first.pk),
        "external_id": "",
        "date": "2026-06-01",
        "starts": "00:15",
        "ends": "01:00",
        "timezone": "Europe/Berlin",
        "starts_at_utc": "2026-05-31T22:15:00+00:00",
        "duration_minutes": "45",
        "kind": "session",
        "location": "in_person",
        "status": "attended",
        "fee_waived": "no",
        "clinician": "Nadia Berger",
        "clinician_email": nadia.email,
        "client_id": str(erin.pk),
        "client_external_id": "OLD-7",
        "client": "Erin Vogel",
        "episode_id": str(Episode.objects.get(client=erin).pk),
    }
    assert rows[2]["status"] == "cancelled_client"
    assert (rows[3]["date"], rows[3]["starts"], rows[3]["location"]) == (
        "2026-06-07",
        "23:00",
        "video",
    )
    assert AuditEvent.objects.filter(actor=admin, action="export.appointments").count() == 1


def test_the_appointments_csv_carries_no_clinical_content_nor_secrets(
    as_admin: HttpClient, june: dict[str, Appointment]
) -> None:
    response = as_admin.get(APPOINTMENTS_CSV, {"first_day": "2026-06-01", "last_day": "2026-06-07"})
    body = body_of(response)
    assert "Too low to get out of bed" not in body  # the client's cancellation reason
    assert "crisis" not in body  # the override reason
    assert "room-secret" not in body  # the video link


def test_the_appointments_csv_for_one_clinician(
    as_admin: HttpClient, june: dict[str, Appointment], clinician: User
) -> None:
    rows = read_csv(
        as_admin.get(
            APPOINTMENTS_CSV,
            {"first_day": "2026-06-01", "last_day": "2026-06-30", "clinician": str(clinician.pk)},
        )
    )
    assert [row["appointment_id"] for row in rows] == [str(june["theirs"].pk)]


def test_a_cell_that_a_spreadsheet_would_run_is_defused(
    as_admin: HttpClient, practice: Practice, nadia: User
) -> None:
    sly = ClientFactory.create(practice=practice, first_name='=HYPERLINK("x")', last_name="A")
    book(nadia, sly, at(6, 2, 10))
    rows = read_csv(
        as_admin.get(APPOINTMENTS_CSV, {"first_day": "2026-06-02", "last_day": "2026-06-02"})
    )
    assert rows[0]["client"] == '\'=HYPERLINK("x") A'


def test_the_export_page_documents_the_columns(as_admin: HttpClient) -> None:
    response = as_admin.get(APPOINTMENTS_CSV)
    assert response.status_code == 200
    page = response.content.decode()
    for name, _ in APPOINTMENT_COLUMNS:
        assert f"<code>{name}</code>" in page
    assert 'value="2026-06-01"' in page and 'value="2026-06-03"' in page  # this month so far


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"first_day": "2026-06-07", "last_day": "2026-06-01"}, "The last day must be on or after the first."),
        ({"first_day": "June", "last_day": "2026-06-01"}, "Enter a valid date."),
        ({"first_day": "1999-01-01", "last_day": "2026-06-01"}, "Choose a date between 2000 and 2100."),
        ({"first_day": "2026-06-01"}, "This field is required."),
        ({"first_day": "2026-06-01", "last_day": "2026-06-02", "clinician": "99999"}, "Choose a clinician of this practice from the list."),
    ],
)  # fmt: skip
def test_a_bad_range_gets_a_clear_400_and_no_file(
    as_admin: HttpClient, params: dict[str, str], message: str
) -> None:
    response = as_admin.get(APPOINTMENTS_CSV, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action="export.appointments").exists()


def test_a_clinician_of_another_practice_is_not_a_choice(
    as_admin: HttpClient, outsider: User
) -> None:
    response = as_admin.get(
        APPOINTMENTS_CSV,
        {"first_day": "2026-06-01", "last_day": "2026-06-02", "clinician": str(outsider.pk)},
    )
    assert response.status_code == 400


def test_exports_are_for_admins_of_the_practice_only(
    as_clinician: HttpClient,
    as_supervisor: HttpClient,
    as_client: HttpClient,
    as_outsider: HttpClient,
    june: dict[str, Appointment],
) -> None:
    params = {"first_day": "2026-06-01", "last_day": "2026-06-07"}
    for http in (as_clinician, as_supervisor, as_client):
        assert http.get(APPOINTMENTS_CSV, params).status_code == 404
        assert http.get(BOARD_CSV).status_code == 404
    # An admin elsewhere exports their own practice: none of these sessions.
    assert read_csv(as_outsider.get(APPOINTMENTS_CSV, params)) == []
    board = read_csv(as_outsider.get(BOARD_CSV))
    assert [row["email"] for row in board] == ["mallory@else.example"]
