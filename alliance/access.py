"""Access to clinical data: the care team reads, the treating clinician writes.

Minimum necessary access (DESIGN.md, Privacy): a clinician sees the clients in their own
caseload, a supervisor sees their current supervisees' clients and the flags about them,
and an admin sees no item answers, scores or clinical notes at all, so every helper here
answers 404 to an admin who is not also on the care team. Writes (logging a rupture, a
repair, outreach, an ending) belong to the episode's own clinician; a supervisor reads, and
triages the flags of their current supervisees. Countertransference notes are narrower
still: their author and the author's current supervisor, nobody else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from alliance.models import (
    AgendaItem,
    CountertransferenceNote,
    FollowUp,
    RepairPlanRequest,
    Response,
    RuptureFlag,
    SupervisionSession,
)
from practice.access import membership_of
from practice.models import Client, Episode, SupervisionPairing
from scheduling.models import Appointment, WorkloadAlert
from scheduling.workload import alerts_visible_to

if TYPE_CHECKING:
    from practice.models import User


def care_team_clients(user: User) -> Q:
    """The clients whose clinical record `user` may read, as a filter on Client."""
    return Q(pk__in=Client.objects.in_care_of(user, membership_of(user)).values("pk"))


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


# --- Supervision ----------------------------------------------------------------------------


def get_flag_for_supervisor(user: User, pk: int) -> RuptureFlag:
    """Triage belongs to the clinician's current supervisor. The rest of the care team (the
    clinician themselves) may read the flag but not triage it."""
    flag = get_flag_for_care_team(user, pk)
    if not RuptureFlag.objects.for_supervisor(user).filter(pk=flag.pk).exists():
        raise PermissionDenied("Only the clinician's current supervisor can triage this flag.")
    return flag


def get_workload_alert_for_supervisor(user: User, pk: int) -> WorkloadAlert:
    alert = get_object_or_404(alerts_visible_to(user).select_related("clinician"), pk=pk)
    supervisees = SupervisionPairing.objects.current().filter(supervisor=user)
    if not supervisees.filter(supervisee_id=alert.clinician_id).exists():
        raise PermissionDenied("Only the clinician's current supervisor can do this.")
    return alert


def get_plan_request_for_clinician(user: User, pk: int) -> RepairPlanRequest:
    """The care team may read a repair-plan request; only the client's clinician answers."""
    plan_request = get_object_or_404(
        RepairPlanRequest.objects.select_related(
            "flag__client", "flag__episode", "requested_by"
        ).filter(flag__client__in=Client.objects.filter(care_team_clients(user))),
        pk=pk,
    )
    if plan_request.flag.episode.clinician_id != user.pk:
        raise PermissionDenied("Only the client's clinician answers a repair-plan request.")
    return plan_request


def get_session_for_participant(user: User, pk: int) -> SupervisionSession:
    """The supervisor and the supervisee of a session read it; nobody else learns of it."""
    membership = membership_of(user)
    if membership is None:
        raise Http404("No such page.")
    return get_object_or_404(
        SupervisionSession.objects.select_related("supervisor", "supervisee", "practice").filter(
            Q(supervisor=user) | Q(supervisee=user), practice_id=membership.practice_id
        ),
        pk=pk,
    )


def get_session_for_supervisor(user: User, pk: int) -> SupervisionSession:
    session = get_session_for_participant(user, pk)
    if session.supervisor_id != user.pk:
        raise PermissionDenied("Only the supervisor records the session.")
    return session


def get_agenda_item_for_supervisor(user: User, pk: int) -> AgendaItem:
    item = get_object_or_404(
        AgendaItem.objects.select_related("session").filter(
            Q(supervisor=user) | Q(supervisee=user), session__isnull=False
        ),
        pk=pk,
    )
    assert item.session is not None
    get_session_for_supervisor(user, item.session.pk)
    return item


def get_follow_up_for_update(user: User, pk: int) -> FollowUp:
    """The supervisor, or the follow-up's owner, marks it done; the other participant reads."""
    follow_up = get_object_or_404(FollowUp.objects.select_related("session"), pk=pk)
    get_session_for_participant(user, follow_up.session.pk)
    if user.pk not in (follow_up.session.supervisor_id, follow_up.owner_id):
        raise PermissionDenied("The supervisor or the follow-up's owner marks it done.")
    return follow_up


def countertransference_readers_clients(user: User) -> Q:
    """Clients whose countertransference page `user` may open: clients they treat (to write
    about themselves), and clients of notes they may read (their current supervisees')."""
    membership = membership_of(user)
    if membership is None:
        return Q(pk__in=[])
    reach = Q(pk__in=CountertransferenceNote.objects.readable_by(user).values("client"))
    if membership.is_clinician:
        reach |= Q(pk__in=Client.objects.in_caseload_of(user).values("pk"))
    return Q(practice_id=membership.practice_id) & reach


def get_client_for_countertransference(user: User, pk: int) -> Client:
    return get_object_or_404(
        Client.objects.filter(countertransference_readers_clients(user)).select_related("practice"),
        pk=pk,
    )


def get_client_for_countertransference_write(user: User, pk: int) -> Client:
    """Only a clinician who treats (or treated) the client writes about their own reactions."""
    client = get_client_for_countertransference(user, pk)
    membership = membership_of(user)
    if membership is None or not membership.is_clinician:
        raise PermissionDenied("Only the client's clinician writes countertransference notes.")
    if not client.episodes.filter(clinician=user).exists():
        raise PermissionDenied("Only the client's clinician writes countertransference notes.")
    return client


def get_countertransference_note(user: User, pk: int) -> CountertransferenceNote:
    """The author, and the author's current supervisor. Nobody else, an admin included."""
    membership = membership_of(user)
    if membership is None:
        raise Http404("No such page.")
    return get_object_or_404(
        CountertransferenceNote.objects.readable_by(user)
        .filter(client__practice_id=membership.practice_id)
        .select_related("author", "client", "episode"),
        pk=pk,
    )
