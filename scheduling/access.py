"""Access helpers for scheduling. Read helpers answer 404; write helpers raise 403."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from practice.access import client_of, membership_of
from practice.models import Membership, SupervisionPairing, User
from scheduling.models import Appointment, AppointmentQuerySet


def appointments_visible_to(user: User) -> AppointmentQuerySet:
    """Admins see the practice's appointments (operational data); clinicians their own;
    supervisors their current supervisees'; a portal client their own."""
    base = Appointment.objects.select_related("client", "clinician", "practice", "series")
    membership = membership_of(user)
    if membership is None:
        if not user.is_authenticated:
            return base.none()
        return base.filter(client__user=user)
    scope = base.filter(practice_id=membership.practice_id)
    if membership.is_admin:
        return scope
    reach = Q(pk__in=[])
    if membership.is_clinician:
        reach |= Q(clinician=user)
    if membership.is_supervisor:
        supervisees = SupervisionPairing.objects.current().filter(supervisor=user)
        reach |= Q(clinician__in=supervisees.values("supervisee"))
    return scope.filter(reach)


def get_appointment_for_user(user: User, pk: int) -> Appointment:
    return get_object_or_404(appointments_visible_to(user), pk=pk)


def get_appointment_for_user_write(user: User, pk: int) -> Appointment:
    """The session's own clinician, or an admin of the practice, changes it."""
    appointment = get_appointment_for_user(user, pk)
    membership = membership_of(user)
    if membership is not None and (membership.is_admin or appointment.clinician_id == user.pk):
        return appointment
    raise PermissionDenied("Only the session's clinician or an admin can change it.")


def get_appointment_for_client(user: User, pk: int) -> Appointment:
    """A portal client acts on their own appointments only."""
    client = client_of(user)
    return get_object_or_404(
        Appointment.objects.select_related("clinician", "practice", "client"), pk=pk, client=client
    )


def get_calendar_owner(user: User, clinician_id: int | None) -> User:
    """Whose calendar to show: a clinician's own; an admin may open any clinician's."""
    membership = membership_of(user)
    if membership is None:
        raise Http404("No such page.")
    if clinician_id is None or clinician_id == user.pk:
        if not membership.is_clinician:
            if membership.is_admin:
                first = (
                    Membership.objects.active()
                    .in_practice(membership.practice)
                    .clinicians()
                    .select_related("user")
                    .order_by("user__last_name")
                    .first()
                )
                if first is not None:
                    return first.user
            raise Http404("No calendar here.")
        return user
    if not membership.is_admin:
        raise Http404("No such calendar.")
    target = (
        Membership.objects.active()
        .in_practice(membership.practice)
        .clinicians()
        .filter(user_id=clinician_id)
        .select_related("user")
        .first()
    )
    if target is None:
        raise Http404("No such calendar.")
    return target.user
