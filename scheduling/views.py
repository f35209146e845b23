"""Clinician pages: week and day calendars, booking, rescheduling, cancelling, attendance."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from practice.access import membership_of, require_staff
from practice.models import ClinicianProfile, Membership, User
from practice.views import add_service_errors
from scheduling import services
from scheduling.access import (
    get_appointment_for_user,
    get_appointment_for_user_write,
    get_calendar_owner,
)
from scheduling.forms import AttendanceForm, BookingForm, CancelForm, RescheduleForm, TimeOffForm
from scheduling.models import Appointment, AppointmentStatusChange, Status, TimeOff
from scheduling.workload import workload_warnings

Via = AppointmentStatusChange.Via


def _parse_day(raw: str | None, tz: str) -> date:
    try:
        return (
            date.fromisoformat(raw)
            if raw
            else timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
        )
    except ValueError:
        return timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()


def _parse_int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


def _calendar_context(request: HttpRequest) -> tuple[User, str, date, dict[str, Any]]:
    user: User = request.user  # type: ignore[assignment]
    owner = get_calendar_owner(user, _parse_int(request.GET.get("clinician")))
    tz = services.clinician_timezone(owner)
    day = _parse_day(request.GET.get("date"), tz)
    membership = membership_of(user)
    clinicians = (
        Membership.objects.active()
        .in_practice(membership.practice)
        .clinicians()
        .select_related("user")
        if membership is not None and membership.is_admin
        else Membership.objects.none()
    )
    return owner, tz, day, {"owner": owner, "tz": tz, "clinicians": clinicians}


def _local_appointments(
    owner: User, tz: str, first: date, last: date
) -> list[tuple[Appointment, datetime]]:
    zone = zoneinfo.ZoneInfo(tz)
    start = datetime.combine(first, time.min, tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    rows = Appointment.objects.for_clinician(owner).between(start, end).select_related("client")
    return [(a, a.starts_at.astimezone(zone)) for a in rows.order_by("starts_at")]


@login_required
def calendar_week(request: HttpRequest) -> HttpResponse:
    owner, tz, day, context = _calendar_context(request)
    monday = day - timedelta(days=day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    by_day: dict[date, list[tuple[Appointment, datetime]]] = {d: [] for d in days}
    for appointment, local in _local_appointments(owner, tz, days[0], days[-1]):
        by_day.setdefault(local.date(), []).append((appointment, local))
    active = [a for rows in by_day.values() for a, _ in rows if a.is_active]
    context |= {
        "days": [(d, by_day[d]) for d in days],
        "today": _parse_day(None, tz),
        "previous": monday - timedelta(days=7),
        "next": monday + timedelta(days=7),
        "booked_hours": sum((a.duration for a in active), timedelta()).total_seconds() / 3600,
        "session_count": len(active),
    }
    return render(request, "scheduling/calendar_week.html", context)


@dataclass
class AgendaRow:
    at: datetime
    appointments: list[Appointment]
    free: bool


@login_required
def calendar_day(request: HttpRequest) -> HttpResponse:
    """The bookable agenda: the working day in hourly rows, free ones with a Book button."""
    owner, tz, day, context = _calendar_context(request)
    zone = zoneinfo.ZoneInfo(tz)
    profile = ClinicianProfile.objects.filter(membership__user=owner).first()
    opens = profile.work_starts if profile else time(9)
    closes = profile.work_ends if profile else time(17)
    day_rows = _local_appointments(owner, tz, day, day)
    first_hour = min([opens.hour, *(local.hour for _, local in day_rows)])
    last_hour = max(
        [closes.hour - (0 if closes.minute else 1), *(local.hour for _, local in day_rows)]
    )
    rows = []
    for hour in range(first_hour, last_hour + 1):
        at = datetime.combine(day, time(hour), tzinfo=zone)
        here = [a for a, local in day_rows if local.hour == hour]
        busy = any(
            a.is_active and a.starts_at < at + timedelta(hours=1) and a.ends_at > at
            for a, _ in day_rows
        )
        rows.append(AgendaRow(at=at, appointments=here, free=not busy and at > timezone.now()))
    context |= {
        "day": day,
        "rows": rows,
        "working_day": profile is None or day.isoweekday() in profile.working_days,
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1),
    }
    return render(request, "scheduling/calendar_day.html", context)


def _booking_clinician(user: User, raw: str | None) -> User | None:
    """Clinicians book for themselves; an admin picks any clinician (None: choose in form)."""
    membership = require_staff(user)
    if membership.is_clinician and not membership.is_admin:
        return user
    if membership.is_admin:
        chosen = _parse_int(raw)
        return get_calendar_owner(user, chosen) if chosen else None
    raise Http404("No such page.")


@login_required
def appointment_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    clinician = _booking_clinician(user, request.GET.get("clinician"))
    membership = require_staff(user)
    tz = services.clinician_timezone(clinician) if clinician else membership.practice.timezone
    initial: dict[str, Any] = {"day": _parse_day(request.GET.get("date"), tz)}
    start = request.GET.get("time", "")
    if len(start) == 5 and start[2] == ":" and start.replace(":", "").isdigit():
        initial["start_time"] = start
    form = BookingForm(
        request.POST or None,
        initial=initial,
        practice=membership.practice,
        clinician=clinician,
        tz=tz,
    )
    warnings: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = clinician or data["clinician"]
        if clinician is None:
            # An admin's chosen clinician: re-read the times in that clinician's zone.
            form.tz = services.clinician_timezone(chosen)
            form.clean_slot(data)
        warnings = services.availability_warnings(
            clinician=chosen, starts_at=data["starts_at"], ends_at=data["ends_at"]
        )
        workload = workload_warnings(
            clinician=chosen, starts_at=data["starts_at"], ends_at=data["ends_at"]
        )
        # Both checks flag a day off or late hours in the same words: say it once.
        warnings += [warning for warning in workload if warning not in warnings]
        if (
            workload
            and data["book_anyway"]
            and membership.practice.overbooking_needs_reason
            and not data["override_reason"]
        ):
            form.add_error("override_reason", "Give a reason for booking past the limit.")
        elif not warnings or data["book_anyway"]:
            response = _book(request, form, chosen, user)
            if response is not None:
                return response
    return render(
        request,
        "scheduling/appointment_form.html",
        {"form": form, "warnings": warnings, "title": "Book a session", "submit": "Book"},
        status=400 if form.errors else 200,
    )


def _book(
    request: HttpRequest, form: BookingForm, clinician: User, user: User
) -> HttpResponse | None:
    data = form.cleaned_data
    slot = services.Slot(
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        kind=data["kind"],
        location=data["location"],
        video_url=data["video_url"],
        fee_waived=data["fee_waived"],
    )
    try:
        if data["repeat"] == "none":
            appointment = services.appointment_book(
                clinician=clinician,
                client=data["client"],
                slot=slot,
                actor=user,
                override_reason=data["override_reason"],
            )
            messages.success(request, "Session booked. The client gets an email with their links.")
            return redirect("appointment_detail", pk=appointment.pk)
        result = services.series_create(
            clinician=clinician,
            client=data["client"],
            first=slot,
            frequency=data["repeat"],
            interval=data["interval"],
            until=data["until"],
            count=data["count"],
            actor=user,
            override_reason=data["override_reason"],
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None
    return _series_result(request, result, services.clinician_timezone(clinician), "booked")


def _series_result(
    request: HttpRequest, result: services.SeriesResult, tz: str, verb: str
) -> HttpResponse:
    zone = zoneinfo.ZoneInfo(tz)
    return render(
        request,
        "scheduling/series_result.html",
        {
            "result": result,
            "verb": verb,
            "booked": [(a, a.starts_at.astimezone(zone)) for a in result.booked],
            "conflicts": [(at.astimezone(zone), why) for at, why in result.conflicts],
            "tz": tz,
        },
    )


@login_required
def appointment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    # A staff page (status history names staff): clients use the portal and their links.
    require_staff(user)
    appointment = get_appointment_for_user(user, pk)
    tz = services.clinician_timezone(appointment.clinician)
    membership = membership_of(user)
    can_change = membership is not None and (
        membership.is_admin or appointment.clinician_id == user.pk
    )
    return render(
        request,
        "scheduling/appointment_detail.html",
        {
            "appointment": appointment,
            "local_start": appointment.local_start(tz),
            "local_end": appointment.ends_at.astimezone(zoneinfo.ZoneInfo(tz)),
            "tz": tz,
            "history": appointment.status_changes.select_related("changed_by"),
            "requests": appointment.reschedule_requests.filter(resolved_at__isnull=True),
            "can_change": can_change,
            "has_started": appointment.starts_at <= timezone.now(),
            "attendance_form": AttendanceForm(),
        },
    )


@login_required
def appointment_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    appointment = get_appointment_for_user_write(user, pk)
    tz = services.clinician_timezone(appointment.clinician)
    local = appointment.local_start(tz)
    initial = {
        "day": local.date(),
        "start_time": local.time(),
        "duration": int(appointment.duration.total_seconds() // 60),
    }
    form = RescheduleForm(
        request.POST or None, initial=initial, tz=tz, in_series=appointment.series_id is not None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["scope"] == "following":
                result = services.series_reschedule(
                    appointment=appointment,
                    scope="following",
                    new_time=data["start_time"],
                    duration=data["ends_at"] - data["starts_at"],
                    actor=user,
                )
                return _series_result(request, result, tz, "moved")
            services.appointment_reschedule(
                appointment=appointment,
                starts_at=data["starts_at"],
                ends_at=data["ends_at"],
                actor=user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Session moved. The client gets new links by email.")
            return redirect("appointment_detail", pk=appointment.pk)
    return render(
        request,
        "scheduling/appointment_form.html",
        {
            "form": form,
            "title": f"Move the session of {local:%a %d %b, %H:%M}",
            "submit": "Move",
            "appointment": appointment,
        },
        status=400 if form.errors else 200,
    )


@login_required
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    appointment = get_appointment_for_user_write(user, pk)
    form = CancelForm(request.POST or None, in_series=appointment.series_id is not None)
    if request.method == "POST" and form.is_valid():
        try:
            cancelled = services.appointment_cancel(
                appointment=appointment,
                by_client=False,
                actor=user,
                via=Via.STAFF,
                reason=form.cleaned_data["reason"],
                scope=form.cleaned_data["scope"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, f"Cancelled {len(cancelled)} session{'s' if len(cancelled) != 1 else ''}."
            )
            return redirect("appointment_detail", pk=appointment.pk)
    return render(
        request,
        "scheduling/appointment_form.html",
        {
            "form": form,
            "title": "Cancel the session",
            "submit": "Cancel session",
            "appointment": appointment,
            "danger": True,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def appointment_attendance(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    appointment = get_appointment_for_user_write(user, pk)
    form = AttendanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose attended, no-show or late cancel.")
    else:
        try:
            services.appointment_record_attendance(
                appointment=appointment, status=form.cleaned_data["status"], actor=user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            label = Status(form.cleaned_data["status"]).label
            messages.success(request, f"Recorded: {label}.")
    return redirect("appointment_detail", pk=appointment.pk)


@login_required
def time_off(request: HttpRequest) -> HttpResponse:
    """A clinician's own leave (an admin may open any clinician's with ?clinician=)."""
    user: User = request.user  # type: ignore[assignment]
    owner = get_calendar_owner(user, _parse_int(request.GET.get("clinician")))
    tz = services.clinician_timezone(owner)
    form = TimeOffForm(request.POST or None, tz=tz)
    if request.method == "POST" and form.is_valid():
        try:
            services.time_off_add(
                clinician=owner,
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
                reason=form.cleaned_data["reason"],
                actor=user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Time off added.")
            return redirect(f"{request.path}?clinician={owner.pk}")
    leave = TimeOff.objects.filter(clinician=owner, ends_at__gte=timezone.now())
    return render(
        request,
        "scheduling/time_off.html",
        {"form": form, "owner": owner, "leave": leave, "tz": tz},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def time_off_delete(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    leave = get_object_or_404(TimeOff.objects.select_related("clinician"), pk=pk)
    # Reuse the calendar rule: whoever may open this clinician's calendar manages their leave.
    get_calendar_owner(user, leave.clinician_id)
    services.time_off_remove(leave=leave, actor=user)
    messages.success(request, "Time off removed.")
    return redirect(f"{reverse('time_off')}?clinician={leave.clinician_id}")
