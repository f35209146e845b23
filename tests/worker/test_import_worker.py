"""End to end through Redis: an uploaded import is run by a real Celery worker, which reports
its progress where the page can see it while the import's own transaction is still open."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse

from alliance.models import Response
from practice.models import ImportRun
from scheduling.models import Appointment
from tests.factories import PracticeFactory, staff
from tests.practice.import_helpers import history, many_sessions
from tests.worker.conftest import WorkerProcess

pytestmark = pytest.mark.worker


def signed_in_admin() -> HttpClient:
    practice = PracticeFactory.create(name="Lindenhof", slug="lindenhof")
    http = HttpClient()
    http.force_login(staff(practice, "admin"))
    return http


def uploads(files: dict[str, str]) -> dict[str, SimpleUploadedFile]:
    return {
        name.removesuffix(".csv"): SimpleUploadedFile(name, text.encode(), content_type="text/csv")
        for name, text in files.items()
    }


def test_a_real_worker_imports_an_upload_once(
    celery_worker_process: WorkerProcess, shipped_instruments: None
) -> None:
    http = signed_in_admin()

    response = http.post(reverse("import_upload"), uploads(history()))

    run = ImportRun.objects.get()
    assert response["Location"] == reverse("import_detail", args=[run.pk])
    celery_worker_process.wait_for(
        lambda: ImportRun.objects.filter(pk=run.pk, state=ImportRun.State.DONE).exists()
    )
    run.refresh_from_db()
    assert run.processed == run.total == 26
    assert run.summary["counts"]["appointments"] == {"created": 6, "unchanged": 0}
    assert (Appointment.objects.count(), Response.objects.count()) == (6, 2)
    status = http.get(reverse("import_status", args=[run.pk])).json()
    assert (status["state"], status["finished"], status["percent"]) == ("done", True, 100)

    # A second delivery of the same task (as after a redelivery) finds the run finished.
    from practice.tasks import run_import

    run_import.delay(run.pk)
    celery_worker_process.wait_for(
        lambda: celery_worker_process.log.read_text().count(" succeeded in ") >= 2
    )
    assert celery_worker_process.log.read_text().rstrip().endswith(": 'skipped'")
    assert Appointment.objects.count() == 6


def test_a_real_worker_records_the_problems_of_an_invalid_upload(
    celery_worker_process: WorkerProcess, shipped_instruments: None
) -> None:
    http = signed_in_admin()
    files = history()
    files["clients.csv"] = files["clients.csv"].replace("C2,Ben", "C2,")

    http.post(reverse("import_upload"), uploads(files))

    run = ImportRun.objects.get()
    celery_worker_process.wait_for(
        lambda: ImportRun.objects.filter(pk=run.pk, state=ImportRun.State.INVALID).exists()
    )
    run.refresh_from_db()
    assert run.errors == [
        {"file": "clients.csv", "row": 3, "column": "first_name", "message": "Required, but empty."}
    ]
    assert run.files == {}
    assert not Appointment.objects.exists()


def test_progress_is_visible_while_the_import_runs(celery_worker_process: WorkerProcess) -> None:
    http = signed_in_admin()
    http.post(reverse("import_upload"), uploads(many_sessions(20_000)))
    run = ImportRun.objects.get()

    seen: list[tuple[str, int, int]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = http.get(reverse("import_status", args=[run.pk])).json()
        seen.append((status["state"], status["processed"], status["total"]))
        if status["finished"]:
            break
        time.sleep(0.05)  # polling a real worker, as the page does; not controlling time

    assert seen[-1][0] == "done", celery_worker_process.log.read_text()[-2000:]
    # Seen mid-way, although the import's transaction commits only at the end.
    assert any(0 < processed < total for _, processed, total in seen), seen
    assert {"validating", "importing"} <= {state for state, _, _ in seen}, seen
    assert Appointment.objects.count() == 20_000
