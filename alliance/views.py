"""Clinician pages for the alliance: the client timeline, flags, repairs, outreach, endings,
and giving a measure in session. Each view authorises with an access helper, validates with
a form, calls one service, and redirects."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance import services, supervision
from alliance.access import (
    get_appointment_for_in_session,
    get_client_for_care_team,
    get_episode_for_clinician,
    get_flag_for_care_team,
    get_flag_for_clinician,
    get_response_for_care_team,
)
from alliance.charts import timeline_data, timeline_svg
from alliance.forms import (
    AlliancePolicyForm,
    ClosingReviewForm,
    EndingPlanForm,
    FlagTransitionForm,
    InstrumentChoiceForm,
    MeasureForm,
    MeasurementPlanForm,
    OutreachForm,
    RepairActionForm,
    RuptureLogForm,
    TerminationOfferForm,
)
from alliance.models import (
    AlliancePolicy,
    EpisodeEnding,
    FlagEvent,
    Instrument,
    OutreachAttempt,
    RepairAction,
    Response,
    RuptureFlag,
)
from practice.access import require_admin, require_clinician
from practice.access import signed_in_user as _user
from practice.services import audit_record
from practice.views import add_service_errors, render_form
from scheduling.services import clinician_timezone

# --- The client timeline -----------------------------------------------------------------


@never_cache
@login_required
def client_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    client = get_client_for_care_team(user, pk)
    audit_record(actor=user, action="timeline.view", obj=client, request=request)
    policy = AlliancePolicy.for_practice(client.practice)
    episodes = list(client.episodes.select_related("clinician").order_by("-opened_on", "-pk"))
    current = next((e for e in episodes if e.is_open), None)
    flags = (
        RuptureFlag.objects.for_client(client)
        .select_related("clinician", "appointment")
        .prefetch_related(
            Prefetch("repairs", queryset=RepairAction.objects.select_related("by")),
            Prefetch("events", queryset=FlagEvent.objects.select_related("by")),
        )
    )
    context: dict[str, Any] = {
        "client": client,
        "episodes": episodes,
        "current": current,
        "policy": policy,
        "chart": timeline_svg(
            timeline_data(client, low_alliance_below=policy.low_alliance_below),
            href_for_response=lambda r: reverse("response_detail", args=[r.pk]),
            href_for_flag=lambda f: reverse("flag_detail", args=[f.pk]),
        ),
        "open_flags": list(flags.open().by_severity()),
        "closed_flags": list(flags.exclude(resolved_at=None).order_by("-raised_at")),
        "responses": Response.objects.for_client(client)
        .select_related("instrument", "appointment")
        .order_by("-completed_at", "-pk"),
        "outreach": OutreachAttempt.objects.filter(episode__client=client).select_related("by"),
        "endings": EpisodeEnding.objects.filter(episode__client=client).select_related(
            "last_session"
        ),
        "is_clinician": current is not None and current.clinician_id == user.pk,
    }
    if current is not None:
        context["allowance"] = services.outreach_allowance(current, now=timezone.now())
        context["plan"] = services.measurement_plan_for(current)
    return render(request, "alliance/timeline.html", context)


@never_cache
@login_required
def response_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    response = get_response_for_care_team(user, pk)
    audit_record(actor=user, action="response.view", obj=response, request=request)
    items = response.instrument.items.order_by("position")
    answers = [(item, response.answers.get(item.key)) for item in items]
    return render(
        request, "alliance/response_detail.html", {"response": response, "answers": answers}
    )


# --- Flags, ruptures and repairs ---------------------------------------------------------


@never_cache
@login_required
def flag_list(request: HttpRequest) -> HttpResponse:
    """The clinician's own open flags, the most severe (safety) first."""
    user = _user(request)
    require_clinician(user)
    flags = (
        RuptureFlag.objects.open()
        .for_clinician(user)
        .filter(episode__clinician=user)
        .select_related("client")
        .by_severity()
    )
    return render(request, "alliance/flag_list.html", {"flags": flags})


@never_cache
@login_required
def flag_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_care_team(user, pk)
    audit_record(actor=user, action="flag.view", obj=flag, request=request)
    can_act = flag.episode.clinician_id == user.pk
    tz = clinician_timezone(user)
    return render(
        request,
        "alliance/flag_detail.html",
        {
            "flag": flag,
            "events": flag.events.select_related("by"),
            "repairs": flag.repairs.select_related("by", "appointment"),
            "plan_requests": flag.plan_requests.select_related("requested_by"),
            "triage": supervision.flag_triage_state(flag, supervisor=user),
            "can_act": can_act,
            "transition_form": FlagTransitionForm(flag=flag) if can_act else None,
            "repair_form": RepairActionForm(flag=flag, tz=tz) if can_act and flag.is_open else None,
        },
    )


@login_required
@require_POST
def flag_transition(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_clinician(user, pk)
    form = FlagTransitionForm(request.POST, flag=flag)
    if form.is_valid():
        try:
            services.flag_transition(
                flag=flag,
                to_status=form.cleaned_data["to_status"],
                note=form.cleaned_data["note"],
                actor=user,
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"The flag is now {flag.get_status_display().lower()}.")
            return redirect("flag_detail", pk=flag.pk)
    return render_form(
        request, form, title=f"Change “{flag.get_rule_display()}”", submit="Save", lead=flag.summary
    )


@login_required
def repair_action_new(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_clinician(user, pk)
    form = RepairActionForm(
        request.POST if request.method == "POST" else None, flag=flag, tz=clinician_timezone(user)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.repair_action_log(
                flag=flag,
                actor=user,
                strategy=form.cleaned_data["strategy"],
                description=form.cleaned_data["description"],
                client_response=form.cleaned_data["client_response"],
                performed_at=form.cleaned_data["performed_at"],
                appointment=form.cleaned_data["appointment"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Repair action logged.")
            return redirect("flag_detail", pk=flag.pk)
    return render_form(
        request, form, title="Log a repair action", submit="Log repair", lead=flag.summary
    )


@login_required
def rupture_log_new(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    form = RuptureLogForm(request.POST if request.method == "POST" else None, episode=episode)
    if request.method == "POST" and form.is_valid():
        try:
            flag = services.rupture_log(
                episode=episode,
                clinician=user,
                kind=form.cleaned_data["kind"],
                marker=form.cleaned_data["marker"],
                appointment=form.cleaned_data["appointment"],
                note=form.cleaned_data["note"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Rupture logged.")
            return redirect("flag_detail", pk=flag.pk)
    return render_form(
        request,
        form,
        title=f"Log a rupture with {episode.client}",
        submit="Log rupture",
        lead="Withdrawal: the client moves away from you or the work. Confrontation: the "
        "client moves against you or the work.",
    )


# --- Outreach and endings ----------------------------------------------------------------


@login_required
def outreach(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    now = timezone.now()
    form = OutreachForm(
        request.POST if request.method == "POST" else None, tz=clinician_timezone(user)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.outreach_log(
                episode=episode,
                actor=user,
                channel=form.cleaned_data["channel"],
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
                attempted_at=form.cleaned_data["attempted_at"],
                now=now,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Outreach attempt logged.")
            return redirect("outreach", pk=episode.pk)
    return render(
        request,
        "alliance/outreach.html",
        {
            "episode": episode,
            "form": form,
            "attempts": OutreachAttempt.objects.for_episode(episode).select_related("by"),
            "allowance": services.outreach_allowance(episode, now=now),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
def ending_plan(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    form = EndingPlanForm(request.POST if request.method == "POST" else None, episode=episode)
    if request.method == "POST" and form.is_valid():
        try:
            services.episode_ending_plan(
                episode=episode,
                actor=user,
                last_session=form.cleaned_data["last_session"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "The episode is in its ending stage.")
            return redirect("client_timeline", pk=episode.client_id)
    return render_form(
        request,
        form,
        title=f"Plan the ending with {episode.client}",
        submit="Plan the ending",
        lead="Choose the last session. The episode moves to its ending stage.",
    )


@login_required
def termination_offer(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    form = TerminationOfferForm(
        request.POST if request.method == "POST" else None, tz=clinician_timezone(user)
    )
    if request.method == "POST" and form.is_valid() and "starts_at" in form.cleaned_data:
        try:
            services.termination_session_offer(
                episode=episode,
                actor=user,
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
                location=form.cleaned_data["location"],
                video_url=form.cleaned_data["video_url"],
                note=form.cleaned_data["note"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Fee-waived termination session booked.")
            return redirect("client_timeline", pk=episode.client_id)
    return render_form(
        request,
        form,
        title=f"Offer a termination session to {episode.client}",
        submit="Book the session",
        lead="A fee-waived last session, to end well after a dropout or an angry ending.",
    )


@login_required
def ending_close(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    form = ClosingReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.episode_close_with_review(
                episode=episode,
                actor=user,
                kind=form.cleaned_data["kind"],
                goals_and_progress=form.cleaned_data["goals_and_progress"],
                what_helps_on_return=form.cleaned_data["what_helps_on_return"],
                note=form.cleaned_data["note"],
                closed_on=form.cleaned_data["closed_on"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "The episode is closed, with its closing review.")
            return redirect("client_timeline", pk=episode.client_id)
    return render_form(
        request,
        form,
        title=f"Close the episode with {episode.client}",
        submit="Close the episode",
        lead="The first and last scores are added to the review for you.",
    )


@login_required
def measurement_plan_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    episode = get_episode_for_clinician(user, pk)
    plan = services.measurement_plan_for(episode)
    form = MeasurementPlanForm(
        request.POST if request.method == "POST" else None,
        episode=episode,
        initial={
            "outcome_instrument": plan.outcome_instrument,
            "outcome_every_n_sessions": plan.outcome_every_n_sessions,
            "session_feedback": plan.session_feedback,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.measurement_plan_update(episode=episode, actor=user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Measurement plan saved.")
            return redirect("client_timeline", pk=episode.client_id)
    return render_form(request, form, title=f"Measures for {episode.client}", submit="Save")


# --- In session ---------------------------------------------------------------------------


@login_required
def in_session_start(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    require_clinician(user)
    appointment = get_appointment_for_in_session(user, pk)
    form = InstrumentChoiceForm(request.GET or None, episode=appointment.episode)
    if form.is_bound and form.is_valid():
        return redirect(
            "in_session_form", pk=appointment.pk, instrument=form.cleaned_data["instrument"].pk
        )
    return render(
        request, "alliance/in_session_start.html", {"appointment": appointment, "form": form}
    )


@never_cache
@login_required
def in_session_form(request: HttpRequest, pk: int, instrument: int) -> HttpResponse:
    """The handed-over screen: the questionnaire and nothing else, no navigation."""
    user = _user(request)
    require_clinician(user)
    appointment = get_appointment_for_in_session(user, pk)
    measure = get_object_or_404(
        Instrument.objects.available_to(appointment.client.practice).active().with_scoring_rules(),
        pk=instrument,
    )
    form = MeasureForm(request.POST if request.method == "POST" else None, instrument=measure)
    if request.method == "POST" and form.is_valid():
        try:
            services.response_record_in_session(
                instrument=measure,
                answers=form.answers,
                appointment=appointment,
                clinician=user,
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("in_session_done", pk=appointment.pk)
    return render(
        request,
        "alliance/in_session_form.html",
        {"appointment": appointment, "instrument": measure, "form": form},
        status=400 if form.is_bound and form.errors else 200,
    )


@never_cache
@login_required
def in_session_done(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    appointment = get_appointment_for_in_session(user, pk)
    return render(request, "alliance/in_session_done.html", {"appointment": appointment})


# --- Practice policy ----------------------------------------------------------------------


@login_required
def alliance_policy_edit(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    membership = require_admin(user)
    policy = AlliancePolicy.for_practice(membership.practice)
    form = AlliancePolicyForm(request.POST if request.method == "POST" else None, instance=policy)
    if request.method == "POST" and form.is_valid():
        try:
            services.alliance_policy_update(
                practice=membership.practice,
                actor=user,
                **{name: form.cleaned_data[name] for name in AlliancePolicyForm.Meta.fields},
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Alliance thresholds saved. The next sweep uses them.")
            return redirect("alliance_policy_edit")
    return render_form(
        request,
        form,
        title="Alliance thresholds",
        submit="Save",
        lead="When the rupture rules raise a flag, and how measure links and outreach work "
        "in this practice.",
    )
