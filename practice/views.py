"""Practice-wide pages: home per role, members, clients, episodes, supervision, audit log."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from practice import services
from practice.access import (
    get_client_for_invite,
    get_client_for_user,
    get_client_for_user_write,
    get_episode_for_user_write,
    get_invitation_for_admin,
    get_membership_for_admin,
    get_pairing_for_admin,
    membership_of,
    require_admin,
    require_staff,
)
from practice.forms import (
    AuditFilterForm,
    ClientForm,
    ClientInviteForm,
    ClinicianProfileForm,
    EpisodeCloseForm,
    EpisodeOpenForm,
    EpisodeStageForm,
    InvitationAcceptForm,
    MembershipForm,
    PairingEndForm,
    PairingForm,
    StaffInviteForm,
)
from practice.models import (
    AuditEvent,
    Client,
    ClinicianProfile,
    Invitation,
    Membership,
    SupervisionPairing,
)


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field if the form has one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def render_form(
    request: HttpRequest, form: forms.BaseForm, *, title: str, submit: str, **context: Any
) -> HttpResponse:
    return render(
        request,
        "practice/form.html",
        {"form": form, "title": title, "submit": submit, **context},
        status=400 if form.is_bound and form.errors else 200,
    )


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@login_required
def mfa_required(request: HttpRequest) -> HttpResponse:
    return render(request, "practice/mfa_required.html")


# --- Members -----------------------------------------------------------------------------


@login_required
def member_list(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    members = (
        Membership.objects.in_practice(admin.practice)
        .select_related("user", "clinician_profile")
        .order_by("-is_active", "user__last_name", "user__first_name")
    )
    invitations = Invitation.objects.pending().in_practice(admin.practice).filter(kind="staff")
    return render(
        request, "practice/member_list.html", {"members": members, "invitations": invitations}
    )


@login_required
def member_invite(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    form = StaffInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.invitation_create(
                practice=admin.practice,
                invited_by=request.user,  # type: ignore[arg-type]
                email=form.cleaned_data["email"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                roles=form.cleaned_data["roles"],
                request=request,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("member_list")
    return render_form(request, form, title="Invite a staff member", submit="Send invitation")


@login_required
def member_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_membership_for_admin(request.user, pk)  # type: ignore[arg-type]
    initial = {"roles": membership.role_names, "is_active": membership.is_active}
    form = MembershipForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_update(
                membership=membership,
                actor=request.user,  # type: ignore[arg-type]
                roles=form.cleaned_data["roles"],
                is_active=form.cleaned_data["is_active"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved {membership.user}.")
            return redirect("member_list")
    return render_form(
        request, form, title=f"Roles of {membership.user}", submit="Save", member=membership
    )


@login_required
def clinician_profile_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_membership_for_admin(request.user, pk)  # type: ignore[arg-type]
    profile, _ = ClinicianProfile.objects.get_or_create(membership=membership)
    form = ClinicianProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        services.clinician_profile_update(
            profile=profile,
            actor=request.user,  # type: ignore[arg-type]
            **{name: form.cleaned_data[name] for name in form.Meta.fields},
        )
        messages.success(request, f"Saved the clinician profile of {membership.user}.")
        return redirect("member_list")
    return render_form(
        request, form, title=f"Clinician profile of {membership.user}", submit="Save"
    )


@login_required
@require_POST
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_invitation_for_admin(request.user, pk)  # type: ignore[arg-type]
    try:
        services.invitation_resend(invitation=invitation, actor=request.user)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"A new invitation link went to {invitation.email}.")
    return redirect("member_list" if invitation.kind == "staff" else "client_list")


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_invitation_for_admin(request.user, pk)  # type: ignore[arg-type]
    services.invitation_revoke(invitation=invitation, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"The invitation for {invitation.email} no longer works.")
    return redirect("member_list" if invitation.kind == "staff" else "client_list")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_from_token(token)
    if invitation is None or not invitation.is_usable():
        return render(request, "practice/invitation_invalid.html", status=410)
    if request.user.is_authenticated:
        messages.info(request, "Sign out first to accept an invitation for another login.")
        return redirect("home")
    form = InvitationAcceptForm(
        request.POST or None,
        email=invitation.email,
        initial={"first_name": invitation.first_name, "last_name": invitation.last_name},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_accept(
                invitation=invitation,
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Your login is ready. Sign in with your email and password.")
            return redirect("account_login")
    return render_form(
        request,
        form,
        title=f"Join {invitation.practice.name}",
        submit="Create my login",
        lead=f"Set a password for {invitation.email}.",
    )


# --- Clients -----------------------------------------------------------------------------


@login_required
def client_list(request: HttpRequest) -> HttpResponse:
    membership = require_staff(request.user)
    clients = Client.objects.visible_to(request.user).prefetch_related(  # type: ignore[arg-type]
        "episodes__clinician"
    )
    query = request.GET.get("q", "").strip()
    if query:
        clients = clients.filter(Q(first_name__icontains=query) | Q(last_name__icontains=query))
    status = request.GET.get("status", "")
    if status in Client.Status.values:
        clients = clients.filter(status=status)
    page = Paginator(clients, 50).get_page(request.GET.get("page"))
    invitations = (
        Invitation.objects.pending().in_practice(membership.practice).filter(kind="client")
        if membership.is_admin
        else Invitation.objects.none()
    )
    return render(
        request,
        "practice/client_list.html",
        {
            "page": page,
            "query": query,
            "status": status,
            "statuses": Client.Status.choices,
            "invitations": invitations,
        },
    )


@login_required
def client_new(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            client = services.client_create(
                practice=admin.practice,
                actor=request.user,  # type: ignore[arg-type]
                **{name: form.cleaned_data[name] for name in form.Meta.fields},
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Added {client}.")
            return redirect("client_detail", pk=client.pk)
    return render_form(request, form, title="Add a client", submit="Add client")


@login_required
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # A staff page: a portal client sees their own appointments in the portal, not this.
    require_staff(request.user)
    client = get_client_for_user(request.user, pk)  # type: ignore[arg-type]
    services.audit_record(actor=request.user, action="client.view", obj=client, request=request)  # type: ignore[arg-type]
    episodes = client.episodes.select_related("clinician")
    membership = membership_of(request.user)
    return render(
        request,
        "practice/client_detail.html",
        {
            "client": client,
            "episodes": episodes,
            "can_edit": membership is not None and membership.is_admin,
            # Clinical pages (the timeline) are for the care team only, never admin-only.
            "on_care_team": membership is not None
            and (
                (
                    membership.is_clinician
                    and any(e.clinician_id == request.user.pk for e in episodes)
                )
                or (
                    membership.is_supervisor
                    and Client.objects.supervised_by(request.user)  # type: ignore[arg-type]
                    .filter(pk=client.pk)
                    .exists()
                )
            ),
            "can_invite": membership is not None
            and client.user_id is None
            and (membership.is_admin or any(e.clinician_id == request.user.pk for e in episodes)),
            "stage_form": EpisodeStageForm(),
        },
    )


@login_required
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_client_for_user_write(request.user, pk)  # type: ignore[arg-type]
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_update(
                client=client,
                actor=request.user,  # type: ignore[arg-type]
                **{name: form.cleaned_data[name] for name in form.Meta.fields},
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved {client}.")
            return redirect("client_detail", pk=client.pk)
    return render_form(request, form, title=f"Edit {client}", submit="Save")


@login_required
def client_invite(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_client_for_invite(request.user, pk)  # type: ignore[arg-type]
    form = ClientInviteForm(request.POST or None, initial={"email": client.email})
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_create(
                practice=client.practice,
                invited_by=request.user,  # type: ignore[arg-type]
                email=form.cleaned_data["email"],
                client=client,
                request=request,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Portal invitation sent to {form.cleaned_data['email']}.")
            return redirect("client_detail", pk=client.pk)
    return render_form(
        request, form, title=f"Invite {client} to the client portal", submit="Send invitation"
    )


# --- Episodes ----------------------------------------------------------------------------


@login_required
def episode_open(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_client_for_user_write(request.user, pk)  # type: ignore[arg-type]
    form = EpisodeOpenForm(request.POST or None, practice=client.practice)
    if request.method == "POST" and form.is_valid():
        try:
            services.episode_open(
                client=client,
                actor=request.user,  # type: ignore[arg-type]
                clinician=form.cleaned_data["clinician"],
                opened_on=form.cleaned_data["opened_on"],
                stage=form.cleaned_data["stage"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Opened an episode for {client}.")
            return redirect("client_detail", pk=client.pk)
    return render_form(request, form, title=f"Open an episode for {client}", submit="Open episode")


@login_required
@require_POST
def episode_stage(request: HttpRequest, pk: int) -> HttpResponse:
    episode = get_episode_for_user_write(request.user, pk)  # type: ignore[arg-type]
    form = EpisodeStageForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a stage from the list.")
    else:
        try:
            services.episode_set_stage(
                episode=episode,
                actor=request.user,  # type: ignore[arg-type]
                stage=form.cleaned_data["stage"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"The episode is now in its {episode.get_stage_display()} stage."
            )
    return redirect("client_detail", pk=episode.client_id)


@login_required
def episode_close(request: HttpRequest, pk: int) -> HttpResponse:
    episode = get_episode_for_user_write(request.user, pk)  # type: ignore[arg-type]
    form = EpisodeCloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.episode_close(
                episode=episode,
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
                on=form.cleaned_data["closed_on"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "The episode is closed.")
            return redirect("client_detail", pk=episode.client_id)
    return render_form(
        request, form, title=f"Close the episode of {episode.client}", submit="Close episode"
    )


# --- Supervision pairings ----------------------------------------------------------------


@login_required
def pairing_list(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    pairings = SupervisionPairing.objects.in_practice(admin.practice).select_related(
        "supervisor", "supervisee"
    )
    return render(request, "practice/pairing_list.html", {"pairings": pairings})


@login_required
def pairing_new(request: HttpRequest) -> HttpResponse:
    admin = require_admin(request.user)
    form = PairingForm(request.POST or None, practice=admin.practice)
    if request.method == "POST" and form.is_valid():
        try:
            services.pairing_create(
                practice=admin.practice,
                actor=request.user,  # type: ignore[arg-type]
                supervisor=form.cleaned_data["supervisor"],
                supervisee=form.cleaned_data["supervisee"],
                started_on=form.cleaned_data["started_on"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Supervision pairing added.")
            return redirect("pairing_list")
    return render_form(request, form, title="Pair a supervisor with a clinician", submit="Add")


@login_required
def pairing_end(request: HttpRequest, pk: int) -> HttpResponse:
    pairing = get_pairing_for_admin(request.user, pk)  # type: ignore[arg-type]
    form = PairingEndForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.pairing_end(
                pairing=pairing,
                actor=request.user,  # type: ignore[arg-type]
                ended_on=form.cleaned_data["ended_on"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Supervision pairing ended.")
            return redirect("pairing_list")
    return render_form(request, form, title=f"End: {pairing}", submit="End pairing")


# --- Audit log ---------------------------------------------------------------------------


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Admins search the log (who read which client's record, and when). They read the log
    itself, not the records it points to: a client's name links to the operational record."""
    admin = require_admin(request.user)
    practice = admin.practice
    form = AuditFilterForm(request.GET or None, practice=practice)
    events = AuditEvent.objects.in_practice(practice).select_related("actor", "client")
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["actor"]:
            events = events.filter(actor=data["actor"])
        if data["action"]:
            events = events.filter(action__startswith=data["action"].strip())
        term = data["client"].strip()
        if term:
            by_name = Q(client__last_name__icontains=term) | Q(client__first_name__icontains=term)
            events = events.filter(by_name | Q(client_id=int(term)) if term.isdigit() else by_name)
        tz = practice.tz
        if data["date_from"]:
            events = events.filter(at__gte=datetime.combine(data["date_from"], time.min, tzinfo=tz))
        if data["date_to"]:
            events = events.filter(
                at__lt=datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=tz)
            )
    elif form.is_bound:
        events = events.none()
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "practice/audit_log.html",
        {"page": page, "form": form, "filters": query.urlencode(), "tz": practice.timezone},
        status=400 if form.is_bound and form.errors else 200,
    )
