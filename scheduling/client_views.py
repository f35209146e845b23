"""What clients do without staff: signed email links, the portal's appointment list, and the
clinicians' secret calendar feeds. Clinical content never appears on these pages or feeds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from practice.access import client_of, membership_of, require_clinician
from practice.models import User
from practice.views import add_service_errors
from scheduling.access import get_appointment_for_client
from scheduling.ical import ical_for
from scheduling.links import ACTIONS, ClientLink, LinkRefused, client_link_read
from scheduling.models import Appointment, AppointmentStatusChange, CalendarFeed, Status
from scheduling.services import (
    appointment_client_cancel,
    appointment_confirm,
    appointment_request_reschedule,
    calendar_feed_regenerate,
    calendar_feed_revoke,
)

Via = AppointmentStatusChange.Via
FEED_HISTORY = timedelta(days=60)
FEED_CAP = 2000
PAST_SHOWN = 50
INVALID_LINK = "This link is not valid. It may have been copied incompletely."


# --- Forms: one per action; they only validate --------------------------------------------


class ConfirmForm(forms.Form):
    pass


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Only your clinician and the practice office see this.",
    )


class RescheduleForm(forms.Form):
    message = forms.CharField(
        label="Which times would suit you?",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Tell your clinician which times would suit you."},
    )


# action: (form, page title, button label)
ACTION_PAGES: dict[str, tuple[type[forms.Form], str, str]] = {
    "confirm": (ConfirmForm, "Confirm your appointment", "Confirm I will come"),
    "cancel": (CancelForm, "Cancel your appointment", "Cancel this appointment"),
    "reschedule": (RescheduleForm, "Ask for another time", "Send my request"),
}


def _action_form(request: HttpRequest, action: str) -> forms.Form:
    # Not `request.POST or None`: the confirm form has no fields, so its POST is empty.
    return ACTION_PAGES[action][0](request.POST if request.method == "POST" else None)


def _window_text(window: timedelta) -> str:
    hours = int(window.total_seconds() // 3600)
    return f"{hours} hour{pluralize(hours)}"


def _perform(
    action: str,
    appointment: Appointment,
    data: dict[str, Any],
    *,
    via: str,
    link: ClientLink | None = None,
    actor: User | None = None,
) -> str:
    """Call the action's service; return what happened, in words for the client."""
    if action == "confirm":
        appointment_confirm(appointment=appointment, via=via, link=link, actor=actor)
        return "Thank you. Your appointment is confirmed."
    if action == "cancel":
        cancelled = appointment_client_cancel(
            appointment=appointment, via=via, reason=data["reason"], link=link, actor=actor
        )
        if cancelled.status == Status.LATE_CANCELLED:
            window = _window_text(appointment.practice.cancellation_window)
            return (
                "Your appointment is cancelled. It was less than "
                f"{window} away, inside the practice's cancellation window, so it counts as "
                "a late cancellation."
            )
        return "Your appointment is cancelled."
    appointment_request_reschedule(
        appointment=appointment, message=data["message"], via=via, link=link, actor=actor
    )
    return (
        "Your request was sent to your clinician. Your appointment stays as it is until "
        "they offer you another time."
    )


def _render_action(
    request: HttpRequest, appointment: Appointment, action: str, form: forms.Form, **extra: Any
) -> HttpResponse:
    _, title, submit = ACTION_PAGES[action]
    context = {
        "appointment": appointment,
        "tz": appointment.client.effective_timezone,
        "action": action,
        "form": form,
        "title": title,
        "submit": submit,
        "window": _window_text(appointment.practice.cancellation_window),
        **extra,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "scheduling/client/action.html", context, status=status)


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "scheduling/client/link_refused.html", {"reason": reason}, status=410)


def _field_errors_only(form: forms.Form, exc: ValidationError) -> bool:
    return hasattr(exc, "error_dict") and all(field in form.fields for field in exc.error_dict)


# --- Signed links ------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def client_link(request: HttpRequest, action: str, token: str) -> HttpResponse:
    # GET only shows: mail scanners prefetch links, and a prefetch must not confirm or cancel.
    if action not in ACTIONS:
        return _refused(request, INVALID_LINK)
    try:
        link = client_link_read(token, action)
    except LinkRefused as exc:
        return _refused(request, exc.reason)
    form = _action_form(request, action)
    if request.method == "POST" and form.is_valid():
        try:
            # Whoever may be signed in, the link acts for the client: no actor.
            done = _perform(
                action, link.appointment, form.cleaned_data, via=Via.CLIENT_LINK, link=link
            )
        except ValidationError as exc:
            if not _field_errors_only(form, exc):
                return _refused(request, " ".join(exc.messages))
            add_service_errors(form, exc)
        else:
            return render(request, "scheduling/client/done.html", {"done": done})
    return _render_action(request, link.appointment, action, form)


# --- Portal ------------------------------------------------------------------------------


@never_cache
@login_required
def portal_appointments(request: HttpRequest) -> HttpResponse:
    client = client_of(request.user)
    mine = Appointment.objects.for_client(client).select_related("clinician")
    now = timezone.now()
    context = {
        "client": client,
        "tz": client.effective_timezone,
        "upcoming": mine.upcoming(now).order_by("starts_at"),
        "past": mine.past(now).order_by("-starts_at")[:PAST_SHOWN],
        "past_shown": PAST_SHOWN,
    }
    return render(request, "scheduling/client/portal_appointments.html", context)


@never_cache
@login_required
def portal_appointment_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    appointment = get_appointment_for_client(request.user, pk)  # type: ignore[arg-type]
    if action not in ACTION_PAGES:
        raise Http404("No such action.")
    form = _action_form(request, action)
    if request.method == "POST" and form.is_valid():
        actor: User = request.user  # type: ignore[assignment]
        try:
            done = _perform(action, appointment, form.cleaned_data, via=Via.PORTAL, actor=actor)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect("portal_appointments")
    return _render_action(request, appointment, action, form, portal=True)


# --- Calendar feeds ----------------------------------------------------------------------


@login_required
def calendar_feed_settings(request: HttpRequest) -> HttpResponse:
    require_clinician(request.user)
    clinician: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "regenerate":
            calendar_feed_regenerate(clinician=clinician)
            messages.success(request, "Your calendar has a new secret address; the old one ended.")
        elif action == "revoke":
            calendar_feed_revoke(clinician=clinician)
            messages.success(request, "Your calendar feed is switched off.")
        else:
            messages.error(request, "Choose to create a new address or to switch the feed off.")
        return redirect("calendar_feed_settings")
    feed = CalendarFeed.objects.filter(clinician=clinician).first()
    feed_url = (
        f"{settings.SITE_URL}{reverse('calendar_feed_ics', args=[feed.token])}" if feed else None
    )
    return render(request, "scheduling/feed_settings.html", {"feed": feed, "feed_url": feed_url})


def calendar_feed_ics(request: HttpRequest, token: str) -> HttpResponse:
    feed = get_object_or_404(CalendarFeed.objects.select_related("clinician"), token=token)
    membership = membership_of(feed.clinician)
    # A clinician who left the practice (or lost the role) no longer gets its calendar.
    if membership is None or not membership.is_clinician:
        raise Http404("No such calendar.")
    appointments = (
        Appointment.objects.for_clinician(feed.clinician)
        .in_practice(membership.practice)
        .filter(starts_at__gte=timezone.now() - FEED_HISTORY)
        .select_related("client")
        .order_by("starts_at", "pk")[:FEED_CAP]
    )
    body = ical_for(appointments, name=f"{membership.practice.name} sessions")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
