"""The admin's import pages: upload, progress, summary and problems. Admins only."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import AuditEvent, ImportRun, Practice, User
from scheduling.models import Appointment
from tests.practice.import_helpers import history

pytestmark = pytest.mark.django_db


def upload(name: str, text: str | bytes) -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def all_files() -> dict[str, SimpleUploadedFile]:
    return {name.removesuffix(".csv"): upload(name, text) for name, text in history().items()}


@pytest.fixture
def run(practice: Practice, admin: User) -> ImportRun:
    return ImportRun.objects.create(
        practice=practice,
        started_by=admin,
        files={"clients.csv": "external_id,first_name,last_name\n"},
        state=ImportRun.State.IMPORTING,
        processed=50,
        total=200,
    )


# --- Admins only -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["as_clinician", "as_supervisor", "as_client"])
def test_only_admins_reach_the_import_pages(
    persona: str, run: ImportRun, request: pytest.FixtureRequest
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    for url in (
        reverse("import_upload"),
        reverse("import_detail", args=[run.pk]),
        reverse("import_status", args=[run.pk]),
    ):
        assert http.get(url).status_code == 404, url
    assert http.post(reverse("import_upload"), all_files()).status_code == 404
    assert ImportRun.objects.count() == 1


def test_an_outsider_admin_gets_404_for_another_practices_import(
    as_outsider: HttpClient, run: ImportRun
) -> None:
    # The outsider is an admin, of another practice: their own upload page works, our runs not.
    assert as_outsider.get(reverse("import_upload")).status_code == 200
    assert f"Import {run.pk}" not in as_outsider.get(reverse("import_upload")).content.decode()
    assert as_outsider.get(reverse("import_detail", args=[run.pk])).status_code == 404
    assert as_outsider.get(reverse("import_status", args=[run.pk])).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client: HttpClient, run: ImportRun) -> None:
    response = client.get(reverse("import_status", args=[run.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_admins_find_the_import_in_the_menu(as_admin: HttpClient, as_clinician: HttpClient) -> None:
    link = f'href="{reverse("import_upload")}"'
    assert link in as_admin.get(reverse("home")).content.decode()
    assert link not in as_clinician.get(reverse("home")).content.decode()


# --- Upload ------------------------------------------------------------------------------


def test_the_upload_page_has_a_field_per_file(as_admin: HttpClient, run: ImportRun) -> None:
    page = as_admin.get(reverse("import_upload")).content.decode()
    for name in ("clinicians", "clients", "appointments", "responses"):
        assert f'type="file" name="{name}"' in page
    assert 'enctype="multipart/form-data"' in page
    assert f'href="{reverse("import_detail", args=[run.pk])}"' in page


def test_an_upload_is_kept_in_an_import_run_and_queued(
    as_admin: HttpClient, admin: User, monkeypatch: pytest.MonkeyPatch, run_on_commit: None
) -> None:
    from practice.tasks import run_import

    queued: list[int] = []
    monkeypatch.setattr(run_import, "delay", lambda pk: queued.append(pk))

    response = as_admin.post(reverse("import_upload"), all_files())

    created = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_detail", args=[created.pk])
    assert queued == [created.pk]
    assert created.state == ImportRun.State.QUEUED and created.started_by == admin
    assert sorted(created.files) == [
        "appointments.csv",
        "clients.csv",
        "clinicians.csv",
        "responses.csv",
    ]
    assert created.files["clients.csv"].startswith("external_id,first_name,last_name")
    assert AuditEvent.objects.filter(action="import.upload", actor=admin).exists()
    assert not Appointment.objects.exists()  # the worker imports, not the request


def test_a_queued_import_shows_a_progress_bar_polled_by_a_script(
    as_admin: HttpClient, run: ImportRun
) -> None:
    page = as_admin.get(reverse("import_detail", args=[run.pk])).content.decode()

    assert 'data-status-url="{}"'.format(reverse("import_status", args=[run.pk])) in page
    assert re.search(r'<progress[^>]* max="200" value="50"', page)
    assert "50 of 200 rows (25%)" in page
    # The CSP allows no inline script: the page loads a static file, and links to itself.
    assert '<script src="/static/js/import-progress.js" defer></script>' in page
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None
    assert f'<a href="{reverse("import_detail", args=[run.pk])}">Refresh</a>' in page


def test_the_status_endpoint_reports_progress_and_is_not_cached(
    as_admin: HttpClient, run: ImportRun
) -> None:
    response = as_admin.get(reverse("import_status", args=[run.pk]))

    assert response.status_code == 200
    assert response.json() == {
        "state": "importing",
        "label": "Importing",
        "processed": 50,
        "total": 200,
        "percent": 25,
        "finished": False,
        "url": reverse("import_detail", args=[run.pk]),
    }
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "Choose at least one CSV file to import."),
        ({"clients": upload("kunden.csv", "Name;Vorname\nM\xfcller;Anna\n".encode("cp1252"))},
         "This is not UTF-8 text: byte 0xfc on line 2 cannot be read (Latin-1 or Windows-1252?). "
         "Save the file as “CSV UTF-8”."),
        ({"appointments": upload("export.xlsx", b"PK\x03\x04\x14\x00")},
         "This is a zip archive (an Excel workbook?), not a CSV file. Save it as “CSV UTF-8 "
         "(comma delimited)”."),
    ],
)  # fmt: skip
def test_files_that_cannot_be_read_are_refused_on_the_form(
    as_admin: HttpClient, files: dict[str, SimpleUploadedFile], message: str
) -> None:
    response = as_admin.post(reverse("import_upload"), files)

    assert response.status_code == 400
    assert message in response.content.decode().replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert not ImportRun.objects.exists()


# --- Outcomes ----------------------------------------------------------------------------


def test_an_uploaded_import_runs_and_shows_its_summary(
    as_admin: HttpClient, run_on_commit: None
) -> None:
    # Tasks run in-process in unit tests; tests/worker runs them on a real worker.
    response = as_admin.post(reverse("import_upload"), all_files(), follow=True)

    created = ImportRun.objects.get()
    assert created.state == ImportRun.State.DONE
    assert created.files == {}  # clinical data is not kept once the run has an outcome
    assert created.summary["counts"]["appointments"] == {"created": 6, "unchanged": 0}
    assert Appointment.objects.count() == 6
    page = response.content.decode()
    assert "The import is complete." in page
    rows = re.findall(r'<th scope="row">(\w+)</th>\s*<td[^>]*>(\d+)</td>', page)
    # In the order the files are read, whatever order the jsonb column keeps.
    assert rows == [
        ("Clinicians", "2"),
        ("Clients", "3"),
        ("Episodes", "3"),
        ("Appointments", "6"),
        ("Responses", "2"),
    ]
    assert "import-progress.js" not in page


def test_an_invalid_upload_lists_every_problem_and_writes_nothing(
    as_admin: HttpClient, run_on_commit: None
) -> None:
    files = all_files()
    files["appointments"] = upload(
        "appointments.csv",
        "external_id,clinician_external_id,client_external_id,starts_at,duration_minutes,status\n"
        "A1,T1,C1,2024-03-05 09:00,50,attended\n"
        "A2,T9,C1,2024-03-05 09:30,50,maybe\n",
    )

    response = as_admin.post(reverse("import_upload"), files, follow=True)

    created = ImportRun.objects.get()
    assert created.state == ImportRun.State.INVALID
    assert created.errors == [
        {"file": "appointments.csv", "row": 3, "column": "clinician_external_id",
         "message": "No clinician “T9” in clinicians.csv or in this practice."},
        {"file": "appointments.csv", "row": 3, "column": "status",
         "message": "“maybe” is not one of: attended, cancelled_client, cancelled_clinician, "
                    "confirmed, late_cancelled, no_show, scheduled."},
    ]  # fmt: skip
    assert (
        not Appointment.objects.exists()
        and not User.objects.filter(email="ole@old.example").exists()
    )
    page = response.content.decode()
    assert "Nothing was written: 2 problems in the files." in page
    rows = re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td><td>(.*?)</td><td>", page)
    assert rows == [
        ("appointments.csv", "3", "clinician_external_id"),
        ("appointments.csv", "3", "status"),
    ]


def test_a_failed_import_says_nothing_was_written(as_admin: HttpClient, run: ImportRun) -> None:
    ImportRun.objects.filter(pk=run.pk).update(
        state=ImportRun.State.FAILED,
        errors=[{"file": "", "row": 0, "column": "", "message": "The import failed unexpectedly."}],
    )
    page = as_admin.get(reverse("import_detail", args=[run.pk])).content.decode()
    assert "The import failed and nothing was written." in page
    assert (
        '<tr><td>—</td><td class="text-end">—</td><td>—</td><td>The import failed unexpectedly.</td></tr>'
        in page
    )


def test_a_long_list_of_problems_says_how_many_are_shown(
    as_admin: HttpClient, run: ImportRun
) -> None:
    problems = [
        {"file": "clients.csv", "row": n, "column": "email", "message": "Bad."}
        for n in range(2, 1002)
    ]
    ImportRun.objects.filter(pk=run.pk).update(
        state=ImportRun.State.INVALID, errors=problems, summary={"error_count": 4000}
    )
    page = as_admin.get(reverse("import_detail", args=[run.pk])).content.decode()
    assert "Showing the first 1000 of 4000 problems" in page
