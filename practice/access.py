"""One access helper per entity. Every view starts with one of these; no view filters by hand.

Read helpers answer 404 to anyone outside the entity's circle, so that a stranger cannot
even learn that a record exists. Write helpers raise PermissionDenied to people who may
read but not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from practice.models import (
    Client,
    Episode,
    ImportRun,
    Invitation,
    Membership,
    SupervisionPairing,
    User,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def signed_in_user(request: HttpRequest) -> User:
    """The request's user as a User, for views behind @login_required."""
    user = request.user
    assert isinstance(user, User)
    return user


def membership_of(user: User | AnonymousUser) -> Membership | None:
    """The active staff membership of a signed-in user, cached on the user object."""
    if not user.is_authenticated:
        return None
    cached: Membership | bool | None = getattr(user, "_membership_cache", False)
    if cached is False:
        cached = Membership.objects.active().select_related("practice").filter(user=user).first()
        setattr(user, "_membership_cache", cached)  # noqa: B010 - a private per-request cache
    return cached if isinstance(cached, Membership) else None


def require_staff(user: User | AnonymousUser) -> Membership:
    membership = membership_of(user)
    if membership is None:
        raise Http404("No such page.")
    return membership


def require_admin(user: User | AnonymousUser) -> Membership:
    membership = require_staff(user)
    if not membership.is_admin:
        raise Http404("No such page.")
    return membership


def require_clinician(user: User | AnonymousUser) -> Membership:
    membership = require_staff(user)
    if not membership.is_clinician:
        raise Http404("No such page.")
    return membership


def require_supervisor(user: User | AnonymousUser) -> Membership:
    membership = require_staff(user)
    if not membership.is_supervisor:
        raise Http404("No such page.")
    return membership


def client_of(user: User | AnonymousUser) -> Client:
    """The client record of a signed-in portal user."""
    if not user.is_authenticated:
        raise Http404("No such page.")
    return get_object_or_404(Client, user=user)


def get_client_for_user(user: User, pk: int) -> Client:
    return get_object_or_404(Client.objects.visible_to(user).select_related("practice"), pk=pk)


def get_client_for_user_write(user: User, pk: int) -> Client:
    """Only admins change a client's record."""
    client = get_client_for_user(user, pk)
    membership = membership_of(user)
    if membership is None or not membership.is_admin:
        raise PermissionDenied("Only an admin can change a client's record.")
    return client


def get_client_for_invite(user: User, pk: int) -> Client:
    """Admins, and the clinician who has the client in their caseload, invite to the portal."""
    client = get_client_for_user(user, pk)
    membership = membership_of(user)
    if membership is None:
        raise PermissionDenied("Clients cannot invite.")
    if membership.is_admin:
        return client
    if membership.is_clinician and client.episodes.filter(clinician=user).exists():
        return client
    raise PermissionDenied("Only the client's clinician or an admin can invite them.")


def get_episode_for_user(user: User, pk: int) -> Episode:
    visible = Client.objects.visible_to(user)
    return get_object_or_404(
        Episode.objects.select_related("client", "clinician").filter(client__in=visible), pk=pk
    )


def get_episode_for_user_write(user: User, pk: int) -> Episode:
    """The episode's own clinician moves its stage; an admin may too."""
    episode = get_episode_for_user(user, pk)
    membership = membership_of(user)
    if membership is not None and (membership.is_admin or episode.clinician_id == user.pk):
        return episode
    raise PermissionDenied("Only the episode's clinician or an admin can change it.")


def get_membership_for_admin(user: User, pk: int) -> Membership:
    admin = require_admin(user)
    return get_object_or_404(
        Membership.objects.in_practice(admin.practice).select_related("user"), pk=pk
    )


def get_pairing_for_admin(user: User, pk: int) -> SupervisionPairing:
    admin = require_admin(user)
    return get_object_or_404(
        SupervisionPairing.objects.in_practice(admin.practice).select_related(
            "supervisor", "supervisee"
        ),
        pk=pk,
    )


def get_invitation_for_admin(user: User, pk: int) -> Invitation:
    admin = require_admin(user)
    return get_object_or_404(Invitation.objects.in_practice(admin.practice), pk=pk)


def get_client_for_admin(user: User, pk: int) -> Client:
    """A client of the admin's practice, for the operational pages (waitlist, assigning)."""
    admin = require_admin(user)
    return get_object_or_404(
        Client.objects.in_practice(admin.practice).select_related("practice"), pk=pk
    )


def get_episode_for_admin(user: User, pk: int) -> Episode:
    """An episode of the admin's practice, for transfers."""
    admin = require_admin(user)
    return get_object_or_404(
        Episode.objects.in_practice(admin.practice).select_related("client__practice", "clinician"),
        pk=pk,
    )


def get_import_run_for_admin(user: User, pk: int) -> ImportRun:
    """An import of the admin's own practice. The uploaded files (clinical data, and large)
    are not loaded: no page shows them."""
    admin = require_admin(user)
    return get_object_or_404(
        ImportRun.objects.filter(practice=admin.practice)
        .select_related("practice", "started_by")
        .defer("files"),
        pk=pk,
    )
