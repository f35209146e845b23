"""The admin's caseload pages: the board, the waitlist and matching, assigning, transfers and
the CSV exports. Admins only; everyone else, and every other practice, gets a 404.

A top-layer page module (see practice/caseload.py): it may compose scheduling and alliance,
which the practice core (models, services, access, views) never imports.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from practice import caseload
from practice.access import get_client_for_admin, get_episode_for_admin, require_admin
from practice.caseload_forms import (
    AppointmentsExportForm,
    AssignForm,
    BoardFilterForm,
    TransferForm,
)
from practice.models import Client, User
from practice.services import audit_record
from practice.views import add_service_errors

SUGGESTIONS_SHOWN = 10


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _csv(
    filename: str, columns: Iterable[str], rows: Iterable[Iterable[object]]
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        caseload.csv_lines(columns, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _sort_columns(current: str) -> list[dict[str, str]]:
    """Header links: a click sorts by the column, a second click reverses. Numbers sort
    biggest first on the first click, since the busiest clinicians are what an admin seeks."""
    columns = []
    for key, (label, _) in caseload.BOARD_SORTS.items():
        first = key if key == "name" else f"-{key}"
        second = f"-{key}" if key == "name" else key
        aria = {key: "ascending", f"-{key}": "descending"}.get(current, "")
        columns.append(
            {
                "key": key,
                "label": label,
                "next": second if current == first else first,
                "aria": aria,
            }
        )
    return columns


# --- The board -----------------------------------------------------------------------------


@login_required
def caseload_board(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    form = BoardFilterForm(request.GET)
    filters = form.filters()
    now = timezone.now()
    rows = caseload.caseload_board(practice=admin.practice, now=now, filters=filters)
    context = {
        "form": form,
        "filters": filters,
        "rows": rows,
        "columns": _sort_columns(filters.sort),
        "weeks": caseload.weeks_around(admin.practice, now),
        "practice": admin.practice,
    }
    return render(
        request, "practice/caseload/board.html", context, status=400 if form.errors else 200
    )


@login_required
def caseload_board_csv(request: HttpRequest) -> HttpResponseBase:
    admin = require_admin(request.user)
    form = BoardFilterForm(request.GET)
    if not form.is_valid():
        errors = [
            f"{form[name].label}: {' '.join(str(error) for error in field_errors)}"
            for name, field_errors in form.errors.items()
        ]
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain; charset=utf-8")
    now = timezone.now()
    rows = caseload.caseload_board(practice=admin.practice, now=now, filters=form.filters())
    audit_record(
        actor=_user(request),
        action="export.caseload_board",
        practice=admin.practice,
        request=request,
    )
    return _csv(
        f"caseload-board-{caseload.local_today(admin.practice, now):%Y-%m-%d}.csv",
        [name for name, _ in caseload.BOARD_COLUMNS],
        caseload.board_csv_rows(rows),
    )


# --- The waitlist, matching and assigning --------------------------------------------------


@login_required
def waitlist(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    page = Paginator(caseload.waitlist(admin.practice), 50).get_page(request.GET.get("page"))
    facts = caseload.clinician_facts(admin.practice)
    entries = [
        (client, next(iter(caseload.suggestions_for(client, facts)), None)) for client in page
    ]
    return render(request, "practice/caseload/waitlist.html", {"page": page, "entries": entries})


def _matches(
    request: HttpRequest, client: Client, form: AssignForm, *, status: int = 200
) -> HttpResponse:
    suggestions = caseload.suggestions_for(client)
    # After a refused POST, the chosen clinician's card shows the error (and all cards show,
    # so that it is among them).
    raw = str(form.data.get("clinician", "")) if form.is_bound else ""
    failed = int(raw) if raw.isdigit() and len(raw) < 12 else None
    show_all = request.GET.get("all") == "1" or form.is_bound
    return render(
        request,
        "practice/caseload/matches.html",
        {
            "client": client,
            "form": form,
            "failed": failed,
            "suggestions": suggestions if show_all else suggestions[:SUGGESTIONS_SHOWN],
            "hidden": 0 if show_all else max(0, len(suggestions) - SUGGESTIONS_SHOWN),
            "total": len(suggestions),
        },
        status=status,
    )


@login_required
def waitlist_client(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_client_for_admin(_user(request), pk)
    if client.status != Client.Status.WAITLIST:
        messages.info(request, f"{client.full_name} is not on the waitlist.")
        return redirect("client_detail", pk=client.pk)
    return _matches(request, client, AssignForm(practice=client.practice))


@login_required
@require_POST
def client_assign(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_client_for_admin(_user(request), pk)
    form = AssignForm(request.POST, practice=client.practice)
    if form.is_valid():
        try:
            episode = caseload.client_assign(
                client=client,
                clinician=form.cleaned_data["clinician"],
                actor=_user(request),
                over_capacity_reason=form.cleaned_data["over_capacity_reason"],
                request=request,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Assigned {client.full_name} to {caseload.display_name(episode.clinician)}.",
            )
            return redirect("client_detail", pk=client.pk)
    return _matches(request, client, form, status=400)


# --- Transfers -----------------------------------------------------------------------------


@login_required
def episode_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    episode = get_episode_for_admin(_user(request), pk)
    if not episode.is_open:
        messages.error(request, "This episode is closed; only an open episode can be transferred.")
        return redirect("client_detail", pk=episode.client_id)
    form = TransferForm(
        request.POST or None, practice=episode.client.practice, current=episode.clinician
    )
    if request.method == "POST" and form.is_valid():
        try:
            transfer = caseload.episode_transfer(
                episode=episode,
                to_clinician=form.cleaned_data["clinician"],
                actor=_user(request),
                handoff_note=form.cleaned_data["handoff_note"],
                over_capacity_reason=form.cleaned_data["over_capacity_reason"],
                request=request,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Transferred {episode.client.full_name} to "
                f"{caseload.display_name(transfer.episode.clinician)}.",
            )
            return redirect("episode_transferred", pk=transfer.episode.pk)
    return render(
        request,
        "practice/caseload/transfer.html",
        {
            "episode": episode,
            "form": form,
            "to_cancel": caseload.sessions_to_cancel(episode),
            "tz": episode.client.practice.tz,
        },
        status=400 if form.errors else 200,
    )


@login_required
def episode_transferred(request: HttpRequest, pk: int) -> HttpResponse:
    episode = get_episode_for_admin(_user(request), pk)
    return render(
        request,
        "practice/caseload/transferred.html",
        {
            "episode": episode,
            "to_rebook": caseload.sessions_to_rebook(episode),
            "tz": episode.client.practice.tz,
        },
    )


# --- Exports -------------------------------------------------------------------------------


@login_required
def appointments_export(request: HttpRequest) -> HttpResponseBase:
    admin = require_admin(request.user)
    if "first_day" not in request.GET:
        today = caseload.local_today(admin.practice)
        form = AppointmentsExportForm(
            practice=admin.practice,
            initial={"first_day": today.replace(day=1), "last_day": today},
        )
    else:
        form = AppointmentsExportForm(request.GET, practice=admin.practice)
        if form.is_valid():
            data = form.cleaned_data
            audit_record(
                actor=_user(request),
                action="export.appointments",
                practice=admin.practice,
                request=request,
            )
            appointments = caseload.appointments_for_export(
                practice=admin.practice,
                first_day=data["first_day"],
                last_day=data["last_day"],
                clinician=data["clinician"],
            )
            return _csv(
                f"appointments-{data['first_day']:%Y-%m-%d}-to-{data['last_day']:%Y-%m-%d}.csv",
                [name for name, _ in caseload.APPOINTMENT_COLUMNS],
                caseload.appointment_csv_rows(appointments, admin.practice),
            )
    return render(
        request,
        "practice/caseload/appointments_export.html",
        {"form": form, "columns": caseload.APPOINTMENT_COLUMNS},
        status=400 if form.errors else 200,
    )
