"""Writes that touch several models or the outside world. Views, forms and tasks call these."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, models, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from practice.models import (
    AuditEvent,
    Client,
    ClinicianProfile,
    Episode,
    Invitation,
    Membership,
    Practice,
    SupervisionPairing,
    User,
)
from practice.queueing import enqueue_on_commit

if TYPE_CHECKING:
    from django.http import HttpRequest

INVITATION_SALT = "practice.invitation"


# --- Audit -------------------------------------------------------------------------------


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: models.Model | None = None,
    practice: Practice | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Write one audit event. Reads of clinical data and every change call this."""
    if practice is None and obj is not None:
        practice = getattr(obj, "practice", None)
    client_id = obj.pk if isinstance(obj, Client) else getattr(obj, "client_id", None)
    return AuditEvent.objects.create(
        practice=practice,
        client_id=client_id,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        ip_address=request.META.get("REMOTE_ADDR") if request is not None else None,
    )


# --- Invitations -------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt=INVITATION_SALT)


def invitation_link(invitation: Invitation) -> str:
    path = reverse("invitation_accept", args=[invitation_token(invitation)])
    return f"{settings.SITE_URL}{path}"


def invitation_from_token(token: str) -> Invitation | None:
    """The invitation a link points to, or None for a tampered or superseded link."""
    try:
        payload = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int):
        return None
    invitations = Invitation.objects.select_related("practice", "client")
    found = invitations.filter(pk=payload["i"]).first()
    if found is None or found.nonce != payload.get("n"):
        return None
    return found


@transaction.atomic
def invitation_create(
    *,
    practice: Practice,
    invited_by: User,
    email: str,
    first_name: str = "",
    last_name: str = "",
    roles: tuple[str, ...] = (),
    client: Client | None = None,
    request: HttpRequest | None = None,
) -> Invitation:
    """Invite a staff member (with roles) or a client (to the portal), and email the link."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "Someone with this email address already has a login."})
    if client is not None:
        if client.user_id is not None:
            raise ValidationError("This client already has a portal login.")
        first_name, last_name = client.first_name, client.last_name
    elif not roles:
        raise ValidationError("Choose at least one role.")
    # A fresh invitation supersedes any earlier pending one for the same person.
    Invitation.objects.pending().in_practice(practice).filter(email__iexact=email).update(
        revoked_at=timezone.now()
    )
    invitation = Invitation.objects.create(
        practice=practice,
        kind=Invitation.Kind.CLIENT if client is not None else Invitation.Kind.STAFF,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_admin="admin" in roles,
        is_clinician="clinician" in roles,
        is_supervisor="supervisor" in roles,
        client=client,
        invited_by=invited_by,
        expires_at=timezone.now() + settings.INVITATION_TTL,
    )
    audit_record(actor=invited_by, action="invitation.create", obj=invitation, request=request)
    from practice.tasks import send_invitation

    enqueue_on_commit(send_invitation, invitation.pk)
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User) -> Invitation:
    """A new link (the old one stops working) with a new expiry."""
    if invitation.accepted_at is not None:
        raise ValidationError("This invitation was already accepted.")
    invitation.nonce = Invitation._meta.get_field("nonce").get_default()
    invitation.expires_at = timezone.now() + settings.INVITATION_TTL
    invitation.sent_at = None
    invitation.revoked_at = None
    invitation.save(update_fields=["nonce", "expires_at", "sent_at", "revoked_at"])
    audit_record(actor=actor, action="invitation.resend", obj=invitation)
    from practice.tasks import send_invitation

    enqueue_on_commit(send_invitation, invitation.pk)
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    with transaction.atomic():
        changed = (
            Invitation.objects.pending().filter(pk=invitation.pk).update(revoked_at=timezone.now())
        )
        if changed:
            audit_record(actor=actor, action="invitation.revoke", obj=invitation)


def invitation_send(*, invitation_id: int) -> bool:
    """Email the invitation link, at most once per issued link.

    The row is claimed with a conditional update before sending, so a retried or duplicated
    task sends nothing. If sending fails, the claim is released so the retry can try again.
    """
    now = timezone.now()
    claimed = (
        Invitation.objects.pending()
        .filter(pk=invitation_id, sent_at__isnull=True, expires_at__gt=now)
        .update(sent_at=now)
    )
    if not claimed:
        return False
    invitation = Invitation.objects.select_related("practice", "invited_by").get(pk=invitation_id)
    context = {
        "invitation": invitation,
        "link": invitation_link(invitation),
        "practice": invitation.practice,
    }
    message = EmailMultiAlternatives(
        subject=f"Your invitation to {invitation.practice.name}",
        body=render_to_string("emails/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", context), "text/html")
    try:
        message.send()
    except Exception:
        Invitation.objects.filter(pk=invitation_id, sent_at=now).update(sent_at=None)
        raise
    return True


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, password: str, first_name: str, last_name: str
) -> User:
    """Turn an invitation into a login: a staff membership, or a client's portal access."""
    # Lock the row: two clicks on the same link race here, and only one may win.
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_usable():
        raise ValidationError("This invitation link has expired or was already used.")
    if User.objects.filter(email__iexact=locked.email).exists():
        raise ValidationError("Someone with this email address already has a login.")
    user = User.objects.create_user(
        locked.email, password, first_name=first_name, last_name=last_name
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    if locked.kind == Invitation.Kind.STAFF:
        membership = Membership.objects.create(
            user=user,
            practice=locked.practice,
            is_admin=locked.is_admin,
            is_clinician=locked.is_clinician,
            is_supervisor=locked.is_supervisor,
        )
        if membership.is_clinician:
            ClinicianProfile.objects.create(membership=membership)
    else:
        assert locked.client is not None
        updated = Client.objects.filter(pk=locked.client.pk, user__isnull=True).update(user=user)
        if not updated:
            raise ValidationError("This client already has a portal login.")
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    audit_record(actor=user, action="invitation.accept", obj=locked)
    return user


# --- Members -----------------------------------------------------------------------------


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: User, roles: tuple[str, ...], is_active: bool
) -> Membership:
    if not roles:
        raise ValidationError("A member needs at least one role.")
    if membership.user_id == actor.pk and ("admin" not in roles or not is_active):
        raise ValidationError("You cannot remove your own admin role or deactivate yourself.")
    dropping_clinician = "clinician" not in roles and membership.is_clinician
    if dropping_clinician and Episode.objects.active().for_clinician(membership.user).exists():
        raise ValidationError(
            "This clinician still has open episodes. Transfer or close them first."
        )
    membership.is_admin = "admin" in roles
    membership.is_clinician = "clinician" in roles
    membership.is_supervisor = "supervisor" in roles
    membership.is_active = is_active
    membership.save(update_fields=["is_admin", "is_clinician", "is_supervisor", "is_active"])
    if membership.is_clinician:
        ClinicianProfile.objects.get_or_create(membership=membership)
    audit_record(actor=actor, action="membership.update", obj=membership)
    return membership


def clinician_profile_update(
    *, profile: ClinicianProfile, actor: User, **fields: Any
) -> ClinicianProfile:
    with transaction.atomic():
        for name, value in fields.items():
            setattr(profile, name, value)
        profile.full_clean()
        profile.save(update_fields=list(fields))
        audit_record(actor=actor, action="clinician_profile.update", obj=profile.membership)
    return profile


# --- Clients and episodes ----------------------------------------------------------------


def client_create(*, practice: Practice, actor: User, **fields: Any) -> Client:
    with transaction.atomic():
        client = Client(practice=practice, **fields)
        client.full_clean()
        client.save()
        audit_record(actor=actor, action="client.create", obj=client)
    return client


def client_update(*, client: Client, actor: User, **fields: Any) -> Client:
    with transaction.atomic():
        for name, value in fields.items():
            setattr(client, name, value)
        client.full_clean()
        client.save(update_fields=list(fields))
        audit_record(actor=actor, action="client.update", obj=client)
    return client


def _ensure_clinician(practice: Practice, clinician: User) -> None:
    if (
        not Membership.objects.active()
        .in_practice(practice)
        .clinicians()
        .filter(user=clinician)
        .exists()
    ):
        raise ValidationError({"clinician": "Choose an active clinician of this practice."})


def episode_open(
    *, client: Client, clinician: User, actor: User, opened_on: date, stage: str
) -> Episode:
    """Open an episode of care; the client becomes active."""
    _ensure_clinician(client.practice, clinician)
    if stage == Episode.Stage.CLOSED:
        raise ValidationError({"stage": "A new episode cannot start closed."})
    try:
        with transaction.atomic():
            episode = Episode.objects.create(
                client=client, clinician=clinician, opened_on=opened_on, stage=stage
            )
            Client.objects.filter(pk=client.pk).update(status=Client.Status.ACTIVE)
            audit_record(actor=actor, action="episode.open", obj=episode, practice=client.practice)
    except IntegrityError as exc:
        if "episode_one_open_per_client" in str(exc):
            raise ValidationError("This client already has an open episode.") from exc
        raise
    client.status = Client.Status.ACTIVE
    return episode


@transaction.atomic
def episode_set_stage(*, episode: Episode, actor: User, stage: str) -> Episode:
    if not episode.is_open:
        raise ValidationError("This episode is closed.")
    episode.move_to_stage(stage)
    audit_record(actor=actor, action="episode.stage", obj=episode, practice=episode.client.practice)
    return episode


@transaction.atomic
def episode_close(*, episode: Episode, actor: User, reason: str, on: date) -> Episode:
    if not episode.is_open:
        raise ValidationError("This episode is already closed.")
    if on < episode.opened_on:
        raise ValidationError({"closed_on": "An episode cannot close before it opened."})
    episode.close(reason=reason, on=on)
    # A transfer opens a new episode elsewhere; every other ending discharges the client.
    if reason != Episode.CloseReason.TRANSFERRED:
        Client.objects.filter(pk=episode.client_id).update(status=Client.Status.DISCHARGED)
    audit_record(actor=actor, action="episode.close", obj=episode, practice=episode.client.practice)
    return episode


# --- Supervision -------------------------------------------------------------------------


def pairing_create(
    *, practice: Practice, actor: User, supervisor: User, supervisee: User, started_on: date
) -> SupervisionPairing:
    staff = Membership.objects.active().in_practice(practice)
    if not staff.supervisors().filter(user=supervisor).exists():
        raise ValidationError({"supervisor": "Choose an active supervisor of this practice."})
    if not staff.clinicians().filter(user=supervisee).exists():
        raise ValidationError({"supervisee": "Choose an active clinician of this practice."})
    pairing = SupervisionPairing(
        practice=practice, supervisor=supervisor, supervisee=supervisee, started_on=started_on
    )
    # full_clean runs the exclusion constraint too, and names the conflict in plain words.
    pairing.full_clean()
    with transaction.atomic():
        try:
            pairing.save()
        except IntegrityError as exc:
            raise ValidationError(
                "This clinician already has a supervisor for those dates."
            ) from exc
        audit_record(actor=actor, action="pairing.create", obj=pairing)
    return pairing


@transaction.atomic
def pairing_end(*, pairing: SupervisionPairing, actor: User, ended_on: date) -> SupervisionPairing:
    if pairing.ended_on is not None:
        raise ValidationError("This pairing has already ended.")
    if ended_on <= pairing.started_on:
        raise ValidationError({"ended_on": "A pairing must end after the day it started."})
    pairing.ended_on = ended_on
    pairing.save(update_fields=["ended_on"])
    audit_record(actor=actor, action="pairing.end", obj=pairing)
    return pairing
