"""The admin's import pages: upload another system's CSV files, watch the import run, read
its summary or its problems. A top-layer page module, like practice.home: it starts the
import of practice.imports, which composes scheduling and alliance."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from practice import imports
from practice.access import get_import_run_for_admin, require_admin
from practice.models import ImportRun

# Form field → the file the importer reads.
UPLOADS = {
    "clinicians": imports.CLINICIANS,
    "clients": imports.CLIENTS,
    "appointments": imports.APPOINTMENTS,
    "responses": imports.RESPONSES,
}
FINISHED = (ImportRun.State.DONE, ImportRun.State.INVALID, ImportRun.State.FAILED)
# The summary's rows in the order the files are read (a jsonb column does not keep key order).
KINDS = ("clinicians", "clients", "episodes", "appointments", "responses")


def _columns(name: str) -> str:
    spec = imports.SPECS[name]
    optional = f"; optional: {', '.join(spec.optional)}" if spec.optional else ""
    return f"Columns: {', '.join(spec.required)}{optional}."


class ImportUploadForm(forms.Form):
    """One field per file, each optional; reads them as UTF-8 CSV text."""

    clinicians = forms.FileField(
        required=False, label=imports.CLINICIANS, help_text=_columns(imports.CLINICIANS)
    )
    clients = forms.FileField(
        required=False, label=imports.CLIENTS, help_text=_columns(imports.CLIENTS)
    )
    appointments = forms.FileField(
        required=False, label=imports.APPOINTMENTS, help_text=_columns(imports.APPOINTMENTS)
    )
    responses = forms.FileField(
        required=False,
        label=imports.RESPONSES,
        help_text=_columns(imports.RESPONSES) + " Plus one column per item key, e.g. phq9_1.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["accept"] = ".csv,text/csv"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        files: dict[str, str] = {}
        for field, name in UPLOADS.items():
            upload: UploadedFile | None = cleaned.get(field)
            if upload is None:
                continue
            if (upload.size or 0) > imports.MAX_FILE_BYTES:
                limit = imports.MAX_FILE_BYTES // (1024 * 1024)
                self.add_error(field, f"This file is larger than {limit} MB; split it.")
                continue
            try:
                files[name] = imports.decode_csv(name, upload.read())
            except imports.ImportInvalid as invalid:
                self.add_error(field, [problem.message for problem in invalid.problems])
        if not files and not self.errors:
            raise forms.ValidationError("Choose at least one CSV file to import.")
        cleaned["files"] = files
        return cleaned


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    # Bound on every POST: a POST with no file at all must say so, not show an empty form.
    posted = request.method == "POST"
    form = ImportUploadForm(request.POST if posted else None, request.FILES if posted else None)
    if posted and form.is_valid():
        run = imports.import_run_create(
            practice=admin.practice,
            actor=request.user,  # type: ignore[arg-type]
            files=form.cleaned_data["files"],
        )
        return redirect("import_detail", pk=run.pk)
    runs = (
        ImportRun.objects.filter(practice=admin.practice)
        .select_related("started_by")
        .defer("files", "errors")[:20]
    )
    return render(
        request,
        "practice/import/upload.html",
        {"form": form, "runs": runs},
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_import_run_for_admin(request.user, pk)  # type: ignore[arg-type]
    counts: dict[str, dict[str, int]] = run.summary.get("counts", {})
    summary = []
    for kind in KINDS:
        if kind not in counts:
            continue
        count = counts[kind]
        note = ""
        if count.get("linked"):
            note = f"{count['linked']} already here, found by email and linked"
        elif kind == "episodes" and count["created"]:
            note = f"{count['open']} open, {count['created'] - count['open']} closed as history"
        summary.append((kind.capitalize(), count["created"], count.get("unchanged"), note))
    return render(
        request,
        "practice/import/detail.html",
        {
            "run": run,
            "finished": run.state in FINISHED,
            "summary": summary,
            "error_count": run.summary.get("error_count", len(run.errors)),
            "tz": run.practice.timezone,
        },
    )


@never_cache
@login_required
@require_GET
def import_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the progress bar polls: small, and never cached by the browser."""
    run = get_import_run_for_admin(request.user, pk)  # type: ignore[arg-type]
    return JsonResponse(
        {
            "state": run.state,
            "label": run.get_state_display(),
            "processed": run.processed,
            "total": run.total,
            "percent": run.percent,
            "finished": run.state in FINISHED,
            "url": reverse("import_detail", args=[run.pk]),
        }
    )
