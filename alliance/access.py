"""Access to clinical data: the care team reads, the treating clinician writes.

Minimum necessary access (DESIGN.md, Privacy): a clinician sees the clients in their own
caseload, a supervisor sees their current supervisees' clients and the flags about them,
and an admin sees no item answers, scores or clinical notes at all, so every helper here
answers 404 to an admin who is not also on the care team. Writes (logging a rupture, a
repair, outreach, an ending) belong to the episode's own clinician; a supervisor reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404

from alliance.models import Response, RuptureFlag
from practice.access import membership_of
from practice.models import Client, Episode
from scheduling.models import Appointment

if TYPE_CHECKING:
    from practice.models import User


def care_team_clients(user: User) -> Q:
    """The clients whose clinical record `user` may read, as a filter on Client."""
    membership = membership_of(user)
    if membership is None:
        return Q(pk__in=[])
    reach = Q(pk__in=[])
    if membership.is_clinician:
        reach |= Q(pk__in=Client.objects.in_caseload_of(user).values("pk"))
    if membership.is_supervisor:
        reach |= Q(pk__in=Client.objects.supervised_by(user).values("pk"))
    return Q(practice_id=membership.practice_id) & reach


def is_care_team(user: User, client: Client) -> bool:
    return Client.objects.filter(care_team_clients(user), pk=client.pk).exists()


def get_client_for_care_team(user: User, pk: int) -> Client:
    return get_object_or_404(
        Client.objects.filter(care_team_clients(user)).select_related("practice"), pk=pk
    )


def get_episode_for_care_team(user: User, pk: int) -> Episode:
    return get_object_or_404(
        Episode.objects.select_related("client__practice", "clinician").filter(
            client__in=Client.objects.filter(care_team_clients(user))
        ),
        pk=pk,
    )


def get_episode_for_clinician(user: User, pk: int) -> Episode:
    """The episode's own clinician acts on it; others on the care team may only read."""
    episode = get_episode_for_care_team(user, pk)
    if episode.clinician_id != user.pk:
        raise PermissionDenied("Only the client's clinician can do this.")
    return episode


def get_flag_for_care_team(user: User, pk: int) -> RuptureFlag:
    return get_object_or_404(
        RuptureFlag.objects.select_related("client__practice", "episode", "clinician").filter(
            client__in=Client.objects.filter(care_team_clients(user))
        ),
        pk=pk,
    )


def get_flag_for_clinician(user: User, pk: int) -> RuptureFlag:
    flag = get_flag_for_care_team(user, pk)
    if flag.episode.clinician_id != user.pk:
        raise PermissionDenied("Only the client's clinician can change this flag.")
    return flag


def get_response_for_care_team(user: User, pk: int) -> Response:
    return get_object_or_404(
        Response.objects.select_related("instrument", "client", "episode", "appointment").filter(
            client__in=Client.objects.filter(care_team_clients(user))
        ),
        pk=pk,
    )


def get_appointment_for_in_session(user: User, pk: int) -> Appointment:
    """Only the session's own clinician hands their screen to the client."""
    return get_object_or_404(
        Appointment.objects.select_related("client__practice", "episode", "clinician").filter(
            clinician=user
        ),
        pk=pk,
    )
