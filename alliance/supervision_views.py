"""Supervisor pages: the review queue and triage, supervision sessions, the supervisee
overview, the flag export; and the clinician's side of it: answering a repair-plan request
and writing countertransference notes. Each view authorises with an access helper,
validates with a form, calls one service, and redirects."""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance import supervision
from alliance.access import (
    get_agenda_item_for_supervisor,
    get_client_for_countertransference,
    get_client_for_countertransference_write,
    get_countertransference_note,
    get_flag_for_supervisor,
    get_follow_up_for_update,
    get_plan_request_for_clinician,
    get_session_for_participant,
    get_session_for_supervisor,
    get_workload_alert_for_supervisor,
)
from alliance.flag_export import FORMATS, write_flags
from alliance.models import CountertransferenceNote, RuptureFlag, SupervisionSession
from alliance.supervision_forms import (
    AgendaAddForm,
    AgendaDecisionForm,
    AgendaTopicForm,
    CountertransferenceNoteForm,
    FlagCloseForm,
    FollowUpForm,
    QueueFilterForm,
    RepairPlanAnswerForm,
    RepairPlanRequestForm,
    SessionRecordForm,
    SupervisionSessionForm,
    TriageNoteForm,
)
from practice.access import require_supervisor
from practice.access import signed_in_user as _user
from practice.services import audit_record
from practice.views import add_service_errors, render_form
from scheduling.services import clinician_timezone


def _posted(request: HttpRequest) -> QueryDict | None:
    """The submitted data, or None for a GET. An empty POST is still a submission (which
    `request.POST or None` would mistake for a first visit)."""
    return request.POST if request.method == "POST" else None


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Back to where the form was (the queue, with its filters), if that is on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        # Not redirect(target): that would read "0" or "home" as a view name to reverse,
        # and a NoReverseMatch is a 500.
        return HttpResponseRedirect(target)
    return redirect(default)


def _refused(
    request: HttpRequest, form: BaseForm, exc: ValidationError, *, title: str, lead: str
) -> HttpResponse:
    form.is_valid()  # a bound form takes errors only once it has been cleaned
    add_service_errors(form, exc)
    return render_form(request, form, title=title, submit="Try again", lead=lead)


def _triage_form(
    request: HttpRequest, form: BaseForm, *, title: str, submit: str, lead: str
) -> HttpResponse:
    """A triage form page that goes back to where it was opened from (the queue's filters)."""
    return render(
        request,
        "alliance/supervision/triage_form.html",
        {
            "form": form,
            "title": title,
            "submit": submit,
            "lead": lead,
            "next": request.POST.get("next") or request.GET.get("next", ""),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


# --- The review queue and triage ---------------------------------------------------------


@never_cache
@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    membership = require_supervisor(user)
    supervisees = supervision.current_supervisees(user, membership.practice)
    form = QueueFilterForm(request.GET or None, supervisees=supervisees)
    chosen = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = supervision.review_queue(
        supervisor=user,
        practice=membership.practice,
        now=timezone.now(),
        supervisee=chosen.get("supervisee"),
        kind=chosen.get("kind") or None,
    )
    audit_record(actor=user, action="review_queue.view", practice=membership.practice)
    return render(
        request,
        "alliance/supervision/queue.html",
        {
            "form": form,
            "entries": entries,
            "supervisees": supervisees,
            "here": request.get_full_path(),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
@require_POST
def flag_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_supervisor(user, pk)
    form = TriageNoteForm(request.POST)
    if form.is_valid():
        try:
            supervision.flag_acknowledge(
                flag=flag, supervisor=user, note=form.cleaned_data["note"], now=timezone.now()
            )
        except ValidationError as exc:
            return _refused(request, form, exc, title="Acknowledge the flag", lead=flag.summary)
        messages.success(request, f"“{flag.get_rule_display()}” acknowledged.")
        return _back(request, reverse("flag_detail", args=[flag.pk]))
    return render_form(request, form, title="Acknowledge the flag", submit="Acknowledge")


@login_required
@require_POST
def flag_add_to_agenda(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_supervisor(user, pk)
    form = AgendaAddForm(request.POST)
    if form.is_valid():
        try:
            item = supervision.flag_add_to_agenda(
                flag=flag, supervisor=user, topic=form.cleaned_data["topic"], now=timezone.now()
            )
        except ValidationError as exc:
            return _refused(request, form, exc, title="Add to the agenda", lead=flag.summary)
        if item.session_id:
            messages.success(request, "Added to the agenda of the next supervision session.")
        else:
            messages.success(request, "Added to the agenda; the next session you plan takes it.")
        return _back(request, reverse("flag_detail", args=[flag.pk]))
    return render_form(request, form, title="Add to the agenda", submit="Add")


@login_required
def repair_plan_request_new(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_supervisor(user, pk)
    form = RepairPlanRequestForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            supervision.repair_plan_request(
                flag=flag, supervisor=user, note=form.cleaned_data["note"], now=timezone.now()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{flag.clinician} is asked for a repair plan.")
            return _back(request, reverse("flag_detail", args=[flag.pk]))
    return _triage_form(
        request,
        form,
        title=f"Ask {flag.clinician} for a repair plan",
        submit="Ask for a plan",
        lead=flag.summary,
    )


@login_required
def flag_close(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    flag = get_flag_for_supervisor(user, pk)
    form = FlagCloseForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            supervision.flag_close_by_supervisor(
                flag=flag, supervisor=user, note=form.cleaned_data["note"], now=timezone.now()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"“{flag.get_rule_display()}” closed.")
            return _back(request, reverse("flag_detail", args=[flag.pk]))
    return _triage_form(
        request,
        form,
        title=f"Close “{flag.get_rule_display()}”",
        submit="Close the flag",
        lead=flag.summary,
    )


@login_required
@require_POST
def workload_alert_add_to_agenda(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    alert = get_workload_alert_for_supervisor(user, pk)
    try:
        supervision.workload_alert_add_to_agenda(alert=alert, supervisor=user, now=timezone.now())
    except ValidationError as exc:
        return _refused(
            request, AgendaAddForm(request.POST), exc, title="Add to the agenda", lead=str(alert)
        )
    messages.success(request, "Workload alert added to the supervision agenda.")
    return _back(request, reverse("review_queue"))


@login_required
def repair_plan_answer(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    plan_request = get_plan_request_for_clinician(user, pk)
    flag = plan_request.flag
    form = RepairPlanAnswerForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            supervision.repair_plan_answer(
                plan_request=plan_request,
                clinician=user,
                plan=form.cleaned_data["plan"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Your repair plan is sent to your supervisor.")
            return redirect("flag_detail", pk=flag.pk)
    asked = f"{plan_request.requested_by} asks: {plan_request.note}" if plan_request.note else ""
    return render_form(
        request,
        form,
        title=f"Repair plan for “{flag.get_rule_display()}” with {flag.client}",
        submit="Send the plan",
        lead=f"{flag.summary} {asked}".strip(),
    )


# --- Supervision sessions ----------------------------------------------------------------


@never_cache
@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    membership = require_supervisor(user)
    sessions = (
        SupervisionSession.objects.for_supervisor(user)
        .filter(practice=membership.practice)
        .select_related("supervisee")
        .annotate(agenda_size=Count("agenda_items", distinct=True))
    )
    return render(
        request,
        "alliance/supervision/session_list.html",
        {
            "sessions": sessions,
            "supervisees": supervision.current_supervisees(user, membership.practice),
        },
    )


@login_required
def session_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    membership = require_supervisor(user)
    supervisees = supervision.current_supervisees(user, membership.practice)
    form = SupervisionSessionForm(
        _posted(request),
        supervisees=supervisees,
        tz=clinician_timezone(user),
        initial={"supervisee": request.GET.get("supervisee")},
    )
    if request.method == "POST" and form.is_valid() and "scheduled_for" in form.cleaned_data:
        try:
            session = supervision.supervision_session_create(
                supervisor=user,
                supervisee=form.cleaned_data["supervisee"],
                scheduled_for=form.cleaned_data["scheduled_for"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Supervision session planned. Its agenda filled itself.")
            return redirect("supervision_session_detail", pk=session.pk)
    return render_form(
        request,
        form,
        title="Plan a supervision session",
        submit="Plan the session",
        lead="Flags you added to the agenda, and every open safety flag, join it by themselves.",
    )


@never_cache
@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    session = get_session_for_participant(user, pk)
    now = timezone.now()
    if session.attendance == SupervisionSession.Attendance.PLANNED:
        supervision.supervision_agenda_fill(session=session, now=now)
    audit_record(actor=user, action="supervision_session.view", obj=session, request=request)
    is_supervisor = session.supervisor_id == user.pk
    agenda = session.agenda_items.select_related(
        "flag__client", "flag__episode", "workload_alert", "added_by"
    ).order_by("-automatic", "added_at", "pk")
    notes = (
        CountertransferenceNote.objects.readable_by(user)
        .filter(author=session.supervisee)
        .select_related("client")
    )
    return render(
        request,
        "alliance/supervision/session_detail.html",
        {
            "session": session,
            "agenda": agenda,
            "follow_ups": session.follow_ups.select_related("owner"),
            "notes": notes,
            "is_supervisor": is_supervisor,
            "next_session": supervision.next_session_after(session),
            "record_form": SessionRecordForm(
                initial={"attendance": session.attendance, "notes": session.notes}
            )
            if is_supervisor
            else None,
            "topic_form": AgendaTopicForm() if is_supervisor else None,
            "follow_up_form": FollowUpForm(session=session) if is_supervisor else None,
            "now": now,
        },
    )


@login_required
@require_POST
def session_record(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    session = get_session_for_supervisor(user, pk)
    form = SessionRecordForm(request.POST)
    if form.is_valid():
        try:
            supervision.supervision_session_record(
                session=session,
                supervisor=user,
                attendance=form.cleaned_data["attendance"],
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Session recorded.")
            return redirect("supervision_session_detail", pk=session.pk)
    return render_form(request, form, title="Record the session", submit="Save")


@login_required
@require_POST
def session_topic_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    session = get_session_for_supervisor(user, pk)
    form = AgendaTopicForm(request.POST)
    if form.is_valid():
        try:
            supervision.agenda_topic_add(
                session=session,
                supervisor=user,
                topic=form.cleaned_data["topic"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Topic added to the agenda.")
            return redirect("supervision_session_detail", pk=session.pk)
    return render_form(request, form, title="Add a topic", submit="Add")


@login_required
@require_POST
def agenda_item_decide(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    item = get_agenda_item_for_supervisor(user, pk)
    form = AgendaDecisionForm(request.POST)
    if form.is_valid():
        try:
            supervision.agenda_item_decide(
                item=item,
                supervisor=user,
                decision=form.cleaned_data["decision"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Decision recorded.")
            return redirect(
                reverse("supervision_session_detail", args=[item.session_id]) + f"#item-{item.pk}"
            )
    return render_form(request, form, title="Record the decision", submit="Save")


@login_required
@require_POST
def follow_up_new(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    session = get_session_for_supervisor(user, pk)
    form = FollowUpForm(request.POST, session=session)
    if form.is_valid():
        try:
            supervision.follow_up_add(
                session=session,
                supervisor=user,
                description=form.cleaned_data["description"],
                owner=form.cleaned_data["owner"],
                due_by=form.cleaned_data["due_by"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Follow-up added.")
            return redirect("supervision_session_detail", pk=session.pk)
    return render_form(request, form, title="Add a follow-up", submit="Add")


@login_required
@require_POST
def follow_up_done(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    follow_up = get_follow_up_for_update(user, pk)
    try:
        supervision.follow_up_done(follow_up=follow_up, actor=user, now=timezone.now())
    except ValidationError as exc:
        return _refused(
            request,
            TriageNoteForm(request.POST),
            exc,
            title="Mark the follow-up done",
            lead=str(follow_up),
        )
    messages.success(request, "Follow-up done.")
    return redirect("supervision_session_detail", pk=follow_up.session_id)


# --- The supervisee overview and the flag export -----------------------------------------


@never_cache
@login_required
def supervisee_overview(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    membership = require_supervisor(user)
    rows = supervision.supervisee_overview(
        supervisor=user, practice=membership.practice, now=timezone.now()
    )
    audit_record(actor=user, action="supervisee_overview.view", practice=membership.practice)
    return render(
        request,
        "alliance/supervision/overview.html",
        {
            "rows": rows,
            "kinds": supervision.SuperviseeOverview.KINDS,
            "trend_weeks": supervision.ALLIANCE_TREND_WEEKS,
        },
    )


@login_required
def flag_export(request: HttpRequest) -> HttpResponse:
    require_supervisor(_user(request))
    return render(request, "alliance/supervision/export.html", {"formats": FORMATS})


@never_cache
@login_required
def flag_export_download(request: HttpRequest, fmt: str) -> HttpResponse:
    user = _user(request)
    membership = require_supervisor(user)
    if fmt not in FORMATS:
        raise Http404("No such format.")
    flags = RuptureFlag.objects.for_supervisor(user).filter(practice=membership.practice)
    out = io.StringIO()
    write_flags(flags, out, fmt=fmt)
    audit_record(actor=user, action=f"flags.export.{fmt}", practice=membership.practice)
    stamp = timezone.localdate().isoformat()
    response = HttpResponse(
        out.getvalue(),
        content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="flags-{stamp}.{fmt}"'
    return response


# --- Countertransference notes -----------------------------------------------------------


@never_cache
@login_required
def countertransference_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The author writes and rereads their notes about one client; their current supervisor
    reads them. Nobody else opens this page."""
    user = _user(request)
    if request.method == "POST":
        client = get_client_for_countertransference_write(user, pk)
    else:
        client = get_client_for_countertransference(user, pk)
    can_write = client.episodes.filter(clinician=user).exists()
    form = CountertransferenceNoteForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            supervision.countertransference_note_write(
                author=user, client=client, text=form.cleaned_data["text"], now=timezone.now()
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Note saved. Only you and your supervisor can read it.")
            return redirect("countertransference_list", pk=client.pk)
    audit_record(actor=user, action="countertransference.list", obj=client, request=request)
    notes = (
        CountertransferenceNote.objects.readable_by(user)
        .filter(client=client)
        .select_related("author")
    )
    return render(
        request,
        "alliance/supervision/countertransference_list.html",
        {"client": client, "notes": notes, "form": form if can_write else None},
        status=400 if form.is_bound and form.errors else 200,
    )


@never_cache
@login_required
def countertransference_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    note = get_countertransference_note(user, pk)
    audit_record(
        actor=user,
        action="countertransference.view",
        obj=note,
        practice=note.client.practice,
        request=request,
    )
    return render(request, "alliance/supervision/countertransference_detail.html", {"note": note})
