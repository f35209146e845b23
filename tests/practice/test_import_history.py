"""Importing another system's history: validation first, then all or nothing, idempotent."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance.models import Response
from practice.imports import (
    ImportInvalid,
    Problem,
    decode_csv,
    history_import,
)
from practice.management.commands.import_history import ProgressBar
from practice.models import (
    AuditEvent,
    Client,
    ClinicianProfile,
    Episode,
    Practice,
    User,
)
from scheduling.models import Appointment, AppointmentStatusChange, Status
from tests.factories import ClientFactory, book, staff
from tests.practice.import_helpers import (
    APPOINTMENTS,
    CLIENTS,
    CLINICIANS,
    NOW,
    RESPONSES,
    csv_text,
    history,
    many_sessions,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clock() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "clients": Client.objects.count(),
        "episodes": Episode.objects.count(),
        "appointments": Appointment.objects.count(),
        "changes": AppointmentStatusChange.objects.count(),
        "responses": Response.objects.count(),
    }


def problems_of(files: dict[str, str], practice: Practice) -> list[str]:
    with pytest.raises(ImportInvalid) as raised:
        history_import(practice=practice, files=files)
    return [str(problem) for problem in raised.value.problems]


# --- A valid import ----------------------------------------------------------------------


def test_it_imports_clinicians_clients_sessions_and_responses(
    practice: Practice, admin: User
) -> None:
    summary = history_import(practice=practice, files=history(), actor=admin)

    assert summary.counts == {
        "clinicians": {"created": 2, "linked": 0, "unchanged": 0},
        "clients": {"created": 3, "unchanged": 0},
        "episodes": {"created": 3, "open": 1},
        "appointments": {"created": 6, "unchanged": 0},
        "responses": {"created": 2, "unchanged": 0},
    }
    hanna = User.objects.get(email="hanna.berg@old.example")
    assert not hanna.has_usable_password()
    assert hanna.membership.practice == practice and hanna.membership.is_clinician
    profile = hanna.membership.clinician_profile
    assert profile.external_id == "T1"
    assert profile.languages == ["German", "English"]
    assert profile.specialties == ["anxiety", "grief"]
    ole = User.objects.get(email="ole@old.example")
    assert not ole.is_active and not ole.membership.is_active
    assert ole.membership.clinician_profile.timezone == "Europe/Oslo"

    ada = Client.objects.get(external_id="C1")
    assert (ada.practice, ada.phone, ada.status) == (practice, "+49301234567", "active")
    # Written by COPY: the model's defaults for the columns the files do not have.
    assert (ada.needs, ada.preferred_times, ada.email_reminders, ada.user) == ([], [], True, None)
    assert ada.created_at == NOW
    assert Client.objects.get(external_id="C2").status == "discharged"
    # No sessions at all: waiting for a clinician.
    assert Client.objects.get(external_id="C3").status == "waitlist"


def test_naive_times_are_the_practices_local_time_and_offsets_are_kept(practice: Practice) -> None:
    history_import(practice=practice, files=history())

    by_id = {a.external_id: a for a in Appointment.objects.all()}
    # Europe/Berlin: +01:00 in March, +02:00 in July and October.
    assert by_id["A1"].starts_at == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
    assert by_id["A2"].starts_at == datetime(2024, 3, 12, 8, 0, tzinfo=UTC)
    assert by_id["A2"].ends_at - by_id["A2"].starts_at == timedelta(minutes=50)
    assert by_id["A3"].starts_at == datetime(2024, 7, 2, 12, 0, tzinfo=UTC)
    assert by_id["A4"].starts_at == datetime(2024, 10, 22, 12, 0, tzinfo=UTC)
    assert (by_id["A4"].location, by_id["A4"].video_url) == ("video", "https://meet.example/ada")
    assert by_id["A5"].kind == "intake"
    assert by_id["A2"].status == Status.NO_SHOW
    assert by_id["A6"].status == Status.CANCELLED_BY_CLIENT


def test_episodes_keep_one_open_for_the_latest_clinician_and_close_history(
    practice: Practice,
) -> None:
    history_import(practice=practice, files=history())

    ada_with_ole = Episode.objects.get(client__external_id="C1", clinician__email="ole@old.example")
    assert (ada_with_ole.opened_on, ada_with_ole.closed_on) == (date(2024, 3, 5), date(2024, 3, 12))
    assert ada_with_ole.close_reason == Episode.CloseReason.TRANSFERRED
    ada_with_hanna = Episode.objects.get(
        client__external_id="C1", clinician__email="hanna.berg@old.example"
    )
    assert ada_with_hanna.is_open and ada_with_hanna.opened_on == date(2024, 7, 2)
    assert ada_with_hanna.stage == Episode.Stage.MIDDLE
    ben = Episode.objects.get(client__external_id="C2")
    assert (ben.closed_on, ben.close_reason) == (date(2024, 5, 13), Episode.CloseReason.COMPLETED)
    for appointment in Appointment.objects.select_related("episode"):
        assert appointment.episode.client_id == appointment.client_id
        assert appointment.episode.clinician_id == appointment.clinician_id


def test_statuses_have_a_history_dated_when_they_happened(practice: Practice, admin: User) -> None:
    history_import(practice=practice, files=history(), actor=admin)

    attended = Appointment.objects.get(external_id="A1")
    # Not "now": the measure sweep would send feedback links for every session ever attended.
    assert attended.status_changed_at == attended.ends_at
    change = attended.status_changes.get()
    assert (change.from_status, change.to_status, change.via, change.changed_by) == (
        "", "attended", "system", admin,
    )  # fmt: skip
    booked = Appointment.objects.get(external_id="A4")
    assert booked.created_at == NOW and booked.created_by == admin
    assert AuditEvent.objects.filter(action="import.history", actor=admin).count() == 1


def test_responses_are_scored_and_filed_under_their_episode(practice: Practice) -> None:
    history_import(practice=practice, files=history())

    phq9 = Response.objects.get(external_id="R1")
    assert (phq9.total, phq9.band, phq9.safety_triggered) == (16, "moderately severe", False)
    assert phq9.appointment == Appointment.objects.get(external_id="A1")
    assert phq9.episode == phq9.appointment.episode
    assert phq9.completed_at == datetime(2024, 3, 5, 7, 45, tzinfo=UTC)
    assert phq9.collected_via == "link" and phq9.instrument_version == 1
    gad7 = Response.objects.get(external_id="R2")
    assert gad7.total == 7 and gad7.appointment is None
    assert gad7.episode.clinician.email == "hanna.berg@old.example"


def test_optional_items_need_no_column_and_free_text_is_kept(practice: Practice) -> None:
    feedback = {"external_id": "F1", "client_external_id": "C1", "instrument": "session-feedback",
                "completed_at": "2024-07-02 15:00", "appointment_external_id": "A3",
                "relationship": "9", "goals_topics": "8", "approach": "9", "overall": "10"}  # fmt: skip
    history_import(practice=practice, files=history(responses=[feedback]))
    commented = {**feedback, "external_id": "F2", "client_external_id": "C2",
                 "appointment_external_id": "A5", "felt_off": "yes",
                 "felt_off_text": "It felt rushed"}  # fmt: skip
    history_import(practice=practice, files=history(responses=[commented]))

    first, second = Response.objects.get(external_id="F1"), Response.objects.get(external_id="F2")
    assert (first.total, first.answers.get("felt_off"), first.free_text) == (36, None, "")
    assert (second.answers["felt_off"], second.free_text) == (True, "It felt rushed")


def test_progress_is_reported_up_to_the_total(practice: Practice) -> None:
    calls: list[tuple[int, int]] = []
    history_import(
        practice=practice, files=history(), progress=lambda done, total: calls.append((done, total))
    )

    rows = len(CLINICIANS) + len(CLIENTS) + len(APPOINTMENTS) + len(RESPONSES)
    assert calls[0] == (0, 2 * rows)
    assert calls[-1] == (2 * rows, 2 * rows)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_the_number_of_queries_does_not_grow_with_the_files(
    practice: Practice, other_practice: Practice
) -> None:
    def queries(target: Practice, sessions: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            history_import(practice=target, files=many_sessions(sessions, f"{target.slug}.example"))
        assert Appointment.objects.in_practice(target).count() == sessions
        return len(captured)

    assert queries(practice, 80) == queries(other_practice, 800)


def test_a_dry_run_counts_and_writes_nothing(practice: Practice) -> None:
    before = counts()
    summary = history_import(practice=practice, files=history(), dry_run=True)

    assert summary.dry_run
    assert summary.counts["appointments"]["created"] == 6
    assert counts() == before


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(practice: Practice) -> None:
    data = "\ufeff".encode() + csv_text(CLIENTS).encode()
    history_import(practice=practice, files={"clients.csv": decode_csv("clients.csv", data)})
    assert Client.objects.filter(external_id="C1").exists()


# --- Idempotent by external id -----------------------------------------------------------


def test_importing_the_same_files_twice_creates_nothing_new(practice: Practice) -> None:
    history_import(practice=practice, files=history())
    before = counts()

    summary = history_import(practice=practice, files=history())

    assert counts() == before
    assert summary.created == 0
    assert summary.counts == {
        "clinicians": {"created": 0, "linked": 0, "unchanged": 2},
        "clients": {"created": 0, "unchanged": 3},
        "episodes": {"created": 0, "open": 0},
        "appointments": {"created": 0, "unchanged": 6},
        "responses": {"created": 0, "unchanged": 2},
    }


def test_a_later_export_adds_only_what_is_new_to_the_existing_episode(practice: Practice) -> None:
    history_import(practice=practice, files=history())
    later = {"external_id": "A7", "clinician_external_id": "T1", "client_external_id": "C1",
             "starts_at": "2024-10-29 14:00", "duration_minutes": "50", "status": "confirmed"}  # fmt: skip

    summary = history_import(practice=practice, files=history(appointments=[*APPOINTMENTS, later]))

    assert summary.counts["appointments"] == {"created": 1, "unchanged": 6}
    assert summary.counts["episodes"]["created"] == 0
    a4, a7 = (Appointment.objects.get(external_id=e) for e in ("A4", "A7"))
    assert a7.episode_id == a4.episode_id


def test_an_existing_clinician_is_found_by_email_and_linked(practice: Practice) -> None:
    hanna = staff(practice, "clinician", email="hanna.berg@old.example")

    summary = history_import(practice=practice, files=history())

    assert summary.counts["clinicians"] == {"created": 1, "linked": 1, "unchanged": 0}
    assert ClinicianProfile.objects.get(membership__user=hanna).external_id == "T1"
    assert Appointment.objects.filter(clinician=hanna).count() == 4
    assert hanna.has_usable_password()  # untouched


def test_files_may_come_separately_and_refer_to_earlier_imports(practice: Practice) -> None:
    history_import(practice=practice, files=history(appointments=None, responses=None))
    history_import(practice=practice, files=history(clinicians=None, clients=None, responses=None))
    history_import(
        practice=practice, files=history(clinicians=None, clients=None, appointments=None)
    )

    assert Appointment.objects.count() == 6
    assert Response.objects.get(external_id="R1").appointment == Appointment.objects.get(
        external_id="A1"
    )


# --- Invalid input: nothing written, every problem named ------------------------------------


def test_an_invalid_import_writes_nothing_and_names_every_problem(practice: Practice) -> None:
    bad_clients = [*CLIENTS, {"external_id": "C1", "first_name": "", "last_name": "Twin", "email": "not-an-email",
                              "phone": "030 123", "status": "gone"}]  # fmt: skip
    bad_appointments = [
        *APPOINTMENTS,
        {"external_id": "A8", "clinician_external_id": "T9", "client_external_id": "C1",
         "starts_at": "5 March 2024", "duration_minutes": "50", "status": "attended"},
        {"external_id": "A9", "clinician_external_id": "T1", "client_external_id": "C3",
         "starts_at": "2024-10-20 10:00", "ends_at": "2024-10-20 09:00", "status": "maybe"},
        {"external_id": "A10", "clinician_external_id": "T1", "client_external_id": "C3",
         "starts_at": "2024-11-20 10:00", "duration_minutes": "50", "status": "attended"},
    ]  # fmt: skip
    bad_responses = [
        {**RESPONSES[0], "phq9_3": "4", "phq9_5": ""},
        {**RESPONSES[1], "instrument": "ors"},
    ]
    before = counts()

    problems = problems_of(
        history(clients=bad_clients, appointments=bad_appointments, responses=bad_responses),
        practice,
    )

    assert counts() == before
    assert problems == [
        # A row's problems come in the order of its columns; the duplicate id is found last.
        "clients.csv:5:first_name: Required, but empty.",
        "clients.csv:5:email: “not-an-email” is not an email address.",
        "clients.csv:5:phone: “030 123” is not in international format, e.g. +4930123456.",
        "clients.csv:5:status: “gone” is not one of: active, discharged, waitlist.",
        "clients.csv:5:external_id: Row 2 has this external id too.",
        "appointments.csv:8:clinician_external_id: No clinician “T9” in clinicians.csv or in this practice.",
        "appointments.csv:8:starts_at: “5 March 2024” is not a date and time in ISO 8601, "
        "e.g. 2024-03-05T14:00:00+01:00 or 2024-03-05 14:00.",
        "appointments.csv:9:ends_at: The session must end after it starts.",
        "appointments.csv:9:status: “maybe” is not one of: attended, cancelled_client, "
        "cancelled_clinician, confirmed, late_cancelled, no_show, scheduled.",
        "appointments.csv:10:status: A session that has not started yet cannot be attended.",
        "responses.csv:2:phq9_3: Please answer item 3: “Trouble falling or staying asleep, or "
        "sleeping too much” with a number from 0 to 3; 4 is outside it.",
        "responses.csv:2:phq9_5: Please answer item 5: “Poor appetite or overeating”.",
        "responses.csv:3:instrument: No instrument with the code “ors”; known: gad-7, phq-9, "
        "session-feedback.",
    ]


def test_a_duplicate_row_is_reported_not_merged(practice: Practice) -> None:
    problems = problems_of(history(appointments=[*APPOINTMENTS, APPOINTMENTS[0]]), practice)
    assert problems == ["appointments.csv:8:external_id: Row 2 has this external id too."]


def test_local_times_in_the_dst_gap_or_twice_over_are_refused(practice: Practice) -> None:
    gap = {**APPOINTMENTS[0], "starts_at": "2024-03-31 02:30", "ends_at": "2024-03-31 03:30"}
    twice = {**APPOINTMENTS[1], "clinician_external_id": "T1", "status": "scheduled",
             "starts_at": "2024-10-27 02:30"}  # fmt: skip
    problems = problems_of(history(appointments=[gap, twice], responses=None), practice)

    assert problems == [
        "appointments.csv:2:starts_at: 2024-03-31 02:30 does not exist in Europe/Berlin: the "
        "clocks went forward that night. Give the time with its UTC offset.",
        "appointments.csv:3:starts_at: 2024-10-27 02:30 happened twice in Europe/Berlin: the "
        "clocks went back that night. Give the time with its UTC offset.",
    ]
    # With an offset, the same wall-clock time is unambiguous.
    fixed = {**twice, "starts_at": "2024-10-27T02:30:00+01:00"}
    history_import(practice=practice, files=history(appointments=[fixed], responses=None))
    assert Appointment.objects.get().starts_at == datetime(2024, 10, 27, 1, 30, tzinfo=UTC)


def test_an_inactive_clinician_cannot_keep_sessions_booked_ahead(practice: Practice) -> None:
    ahead = {**APPOINTMENTS[3], "external_id": "A8", "clinician_external_id": "T2",
             "starts_at": "2024-10-23 14:00"}  # fmt: skip
    problems = problems_of(history(appointments=[*APPOINTMENTS, ahead]), practice)
    assert problems == [
        "appointments.csv:8:clinician_external_id: Clinician “T2” is inactive, but this session "
        "is still booked ahead. Cancel it, or make the clinician active.",
    ]


def test_a_discharged_client_cannot_have_a_session_booked_ahead(practice: Practice) -> None:
    ahead = {**APPOINTMENTS[3], "external_id": "A8", "client_external_id": "C2",
             "starts_at": "2024-10-24 14:00"}  # fmt: skip
    problems = problems_of(history(appointments=[*APPOINTMENTS, ahead]), practice)
    assert problems == [
        "clients.csv:3:status: The client is discharged, but has a session booked ahead "
        "(appointments.csv row 8). Cancel it, or make the client active.",
    ]


def test_clinicians_that_clash_with_existing_logins_are_refused(
    practice: Practice, other_practice: Practice, client_user: User
) -> None:
    staff(other_practice, "clinician", email="elsewhere@old.example")
    staff(practice, "admin", email="admin@old.example")
    rows = [
        {"external_id": "X1", "email": "elsewhere@old.example", "first_name": "E", "last_name": "W"},
        {"external_id": "X2", "email": "admin@old.example", "first_name": "A", "last_name": "D"},
        {"external_id": "X3", "email": client_user.email, "first_name": "C", "last_name": "L"},
        {"external_id": "X4", "email": "ADMIN@old.example", "first_name": "A", "last_name": "D"},
    ]  # fmt: skip
    problems = problems_of({"clinicians.csv": csv_text(rows)}, practice)
    assert problems == [
        "clinicians.csv:2:email: elsewhere@old.example is a staff member of another practice.",
        "clinicians.csv:3:email: admin@old.example is a member of this practice without the "
        "clinician role. Give them the role on the Members page first.",
        f"clinicians.csv:4:email: {client_user.email} already has a login that is not a staff "
        "member of this practice (a client's portal login?).",
        "clinicians.csv:5:email: Row 3 has this email address too.",
        "clinicians.csv:5:email: admin@old.example is a member of this practice without the "
        "clinician role. Give them the role on the Members page first.",
    ]


def test_a_response_outside_the_clients_care_is_refused(practice: Practice) -> None:
    lost = {**RESPONSES[1], "external_id": "R3", "client_external_id": "C3"}
    wrong_session = {**RESPONSES[0], "external_id": "R4", "client_external_id": "C2"}
    problems = problems_of(history(responses=[*RESPONSES, lost, wrong_session]), practice)
    assert problems == [
        "responses.csv:4:client_external_id: This client has no episode to file the response "
        "under: give appointment_external_id or clinician_external_id.",
        "responses.csv:5:appointment_external_id: This session belongs to another client.",
    ]


# --- Overlaps ----------------------------------------------------------------------------


def test_overlapping_sessions_in_the_files_name_both_rows(practice: Practice) -> None:
    clash = {**APPOINTMENTS[2], "external_id": "A8", "client_external_id": "C3",
             "starts_at": "2024-07-02 14:30"}  # fmt: skip
    twice = {**APPOINTMENTS[4], "external_id": "A9"}
    # A cancelled session no longer holds its slot: no clash.
    freed = {**APPOINTMENTS[5], "external_id": "A10", "client_external_id": "C3"}
    problems = problems_of(history(appointments=[*APPOINTMENTS, clash, twice, freed]), practice)

    assert problems == [
        "appointments.csv:8:starts_at: Overlaps row 4 (“A3”), 2024-07-02 14:00–14:50: Clinician "
        "“T1” would be in two sessions at once. Cancel one, or correct its time.",
        "appointments.csv:9:starts_at: Overlaps row 6 (“A5”), 2024-05-06 10:00–10:50: Clinician "
        "“T1” would be in two sessions at once. Cancel one, or correct its time.",
    ]


def test_back_to_back_sessions_do_not_overlap(practice: Practice) -> None:
    next_one = {**APPOINTMENTS[2], "external_id": "A8", "client_external_id": "C3",
                "starts_at": "2024-07-02 14:50"}  # fmt: skip
    history_import(practice=practice, files=history(appointments=[*APPOINTMENTS, next_one]))
    assert Appointment.objects.count() == 7


def test_a_session_already_in_the_app_counts_as_an_overlap(
    practice: Practice, clinician: User
) -> None:
    ClinicianProfile.objects.filter(membership__user=clinician).update(external_id="T1")
    client = ClientFactory.create(practice=practice, external_id="C9")
    book(clinician, client, datetime(2024, 7, 2, 12, 30, tzinfo=UTC), external_id="OLD")
    rows = [{**APPOINTMENTS[2], "clinician_external_id": "T1", "client_external_id": "C9"}]

    problems = problems_of({"appointments.csv": csv_text(rows)}, practice)

    assert problems == [
        "appointments.csv:2:starts_at: Overlaps a session already in this app (external id "
        "“OLD”), 2024-07-02 14:30–15:20: Clinician “T1” would be in two sessions at once. "
        "Cancel one, or correct its time.",
    ]


# --- Bad files: clear problems, never a crash ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Name;Vorname\nM\xfcller;Anna\n".encode("latin-1"),
         "clients.csv:2:: This is not UTF-8 text: byte 0xfc on line 2 cannot be read (Latin-1 or "
         "Windows-1252?). Save the file as “CSV UTF-8”."),
        ("external_id\n".encode("utf-16"),
         "clients.csv:1:: This file is UTF-16 text. Save it as “CSV UTF-8 (comma delimited)”."),
        (b"PK\x03\x04\x14\x00\x06\x00",
         "clients.csv:0:: This is a zip archive (an Excel workbook?), not a CSV file. Save it as "
         "“CSV UTF-8 (comma delimited)”."),
        (b"GIF89a\x01\x00\x00\x00",
         "clients.csv:1:: This file contains NUL bytes: it is a binary file, not CSV text."),
    ],
)  # fmt: skip
def test_files_that_are_not_utf8_csv_are_refused_with_a_reason(data: bytes, expected: str) -> None:
    with pytest.raises(ImportInvalid) as raised:
        decode_csv("clients.csv", data)
    assert [str(p) for p in raised.value.problems] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["clients.csv:1:: The file is empty. It needs a header row with the columns "
              "external_id, first_name, last_name."]),
        ("external_id;first_name;last_name\nC1;Ada;Kern\n",
         ["clients.csv:1:: The header is one column: the file seems to use semicolons. Save it "
          "comma-separated (CSV UTF-8)."]),
        ("external_id,first_name,surname\nC1,Ada,Kern\n",
         ["clients.csv:1:surname: Unknown column. clients.csv has the columns external_id, "
          "first_name, last_name, email, phone, preferred_language, timezone, status.",
          "clients.csv:1:last_name: This required column is missing."]),
        ("external_id,first_name,last_name,first_name\nC1,Ada,Kern,Ada\n",
         ["clients.csv:1:first_name: This column appears twice."]),
        ('external_id,first_name,last_name\nC1,"Ada,Kern\n',
         ["clients.csv:2:: Cannot read this row as CSV (unexpected end of data); reading "
          "stopped."]),
        ("external_id,first_name,last_name\nC1,Ada,Kern,extra\n",
         ["clients.csv:2:: This row has 4 cells but the header has 3 columns."]),
        ("\x89PNG\r\n\x1a\n garbage that decodes",
         ["clients.csv:1:\x89png: Unknown column. clients.csv has the columns external_id, "
          "first_name, last_name, email, phone, preferred_language, timezone, status.",
          "clients.csv:1:external_id: This required column is missing.",
          "clients.csv:1:first_name: This required column is missing.",
          "clients.csv:1:last_name: This required column is missing."]),
    ],
)  # fmt: skip
def test_broken_files_give_problems_not_crashes(
    practice: Practice, text: str, expected: list[str]
) -> None:
    assert problems_of({"clients.csv": text}, practice) == expected
    assert not Client.objects.exists()


def test_a_short_row_reads_as_blanks_and_blank_lines_are_skipped(practice: Practice) -> None:
    text = "external_id,first_name,last_name,email\r\nC1,Ada,Kern\r\n\r\n"
    history_import(practice=practice, files={"clients.csv": text})
    assert Client.objects.get().email == ""


def test_responses_need_the_item_columns_of_their_instrument(practice: Practice) -> None:
    rows = [{k: v for k, v in RESPONSES[1].items() if k != "gad7_7"}]
    problems = problems_of(history(responses=rows), practice)
    assert problems == ["responses.csv:1:gad7_7: This column is missing; GAD-7 rows need it."]


def test_an_answer_to_another_instruments_item_is_refused(practice: Practice) -> None:
    rows = [{**RESPONSES[1], "phq9_1": "2"}]
    problems = problems_of(history(responses=rows), practice)
    assert problems == [
        "responses.csv:2:phq9_1: “phq9_1” is not an item of GAD-7; please remove it."
    ]


def test_problem_formats_as_file_row_column_message() -> None:
    assert str(Problem("clients.csv", 7, "email", "Bad.")) == "clients.csv:7:email: Bad."


# --- The command ---------------------------------------------------------------------------


def write_history(folder: Path, **changes: list[dict[str, str]] | None) -> Path:
    for name, text in history(**changes).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_the_command_imports_a_folder_and_prints_a_summary(
    practice: Practice, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_history", str(write_history(tmp_path)), stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Imported 13 rows into Lindenhof in ")
    assert lines[1].split() == ["created", "unchanged"]
    assert lines[2].split() == ["clinicians", "2", "0"]
    assert lines[4].split() == ["episodes", "3", "(1", "open,", "2", "closed)"]
    assert lines[5].split() == ["appointments", "6", "0"]
    assert Appointment.objects.count() == 6

    again = io.StringIO()
    call_command(
        "import_history", str(tmp_path), "--practice", "lindenhof", stdout=again, stderr=err
    )
    assert again.getvalue().splitlines()[5].split() == ["appointments", "0", "6"]


def test_the_command_prints_every_problem_and_writes_nothing(
    practice: Practice, tmp_path: Path
) -> None:
    bad = [
        {**APPOINTMENTS[0], "status": "maybe", "starts_at": "tomorrow"},
        {**APPOINTMENTS[1], "client_external_id": "C7"},
    ]
    write_history(tmp_path, appointments=bad)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^3 problems found; nothing was written\.$") as raised:
        call_command("import_history", str(tmp_path), stdout=io.StringIO(), stderr=err)

    assert raised.value.returncode == 1
    assert err.getvalue().splitlines() == [
        "appointments.csv:2:starts_at: “tomorrow” is not a date and time in ISO 8601, e.g. "
        "2024-03-05T14:00:00+01:00 or 2024-03-05 14:00.",
        "appointments.csv:2:status: “maybe” is not one of: attended, cancelled_client, "
        "cancelled_clinician, confirmed, late_cancelled, no_show, scheduled.",
        "appointments.csv:3:client_external_id: No client “C7” in clients.csv or in this practice.",
    ]
    assert counts() == dict.fromkeys(counts(), 0)


def test_the_command_refuses_a_file_it_cannot_read_before_reading_the_rest(
    practice: Practice, tmp_path: Path
) -> None:
    write_history(tmp_path)
    (tmp_path / "clients.csv").write_bytes(
        "external_id,first_name,last_name\nC1,J\xfcrgen,X\n".encode("cp1252")
    )
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^1 problem found; nothing was written\.$"):
        call_command("import_history", str(tmp_path), stdout=io.StringIO(), stderr=err)

    # Not also every row that refers to a client in it.
    assert err.getvalue().splitlines() == [
        "clients.csv:2:: This is not UTF-8 text: byte 0xfc on line 2 cannot be read (Latin-1 or "
        "Windows-1252?). Save the file as “CSV UTF-8”.",
    ]


def test_the_progress_bar_is_redrawn_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar(OutputWrapper(screen))
    bar(0, 200)
    bar.set_phase("importing")
    bar(200, 200)
    bar.end()

    assert screen.getvalue() == (
        "\r[..............................]   0% validating 0/200"
        "\r[##############################] 100% importing 200/200\n"
    )


def test_the_command_refuses_a_folder_without_files_and_an_unknown_practice(
    practice: Practice, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match=r"has none of the files clinicians\.csv"):
        call_command("import_history", str(tmp_path))
    with pytest.raises(CommandError, match="No practice with the slug “nowhere”"):
        call_command("import_history", str(tmp_path), "--practice", "nowhere")


def test_the_command_needs_a_practice_when_there_are_several(
    practice: Practice, other_practice: Practice, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="choose one with --practice"):
        call_command("import_history", str(write_history(tmp_path)))


def test_the_command_dry_run_writes_nothing(practice: Practice, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_history",
        str(write_history(tmp_path)),
        "--dry-run",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "dry run: nothing was written" in out.getvalue()
    assert not Appointment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_on_invalid_input(tmp_path: Path) -> None:
    Practice.objects.create(name="Lindenhof", slug="lindenhof", timezone="Europe/Berlin")
    write_history(tmp_path, appointments=[{**APPOINTMENTS[0], "status": "maybe"}], responses=None)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "import_history", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(
        "appointments.csv:2:status: “maybe” is not one of:"
    )
    assert "1 problem found; nothing was written." in result.stderr
    assert not Client.objects.exists()
