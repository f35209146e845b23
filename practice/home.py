"""The home page of each role. A top-layer page module: it may compose scheduling and
alliance (open flags, repair-plan requests) through their QuerySet methods, which the
practice core (models, services, access, views) never does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance.models import RepairPlanRequest
from practice.access import client_of, membership_of
from practice.models import Client, Episode, Invitation, Membership, SupervisionPairing, User


@login_required
def home(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request.user)
    if membership is None:
        client = client_of(request.user)
        return render(request, "practice/home_client.html", {"client": client})
    user: User = request.user  # type: ignore[assignment]
    context: dict[str, Any] = {}
    if membership.is_clinician:
        context["caseload"] = (
            Episode.objects.active().for_clinician(user).select_related("client").order_by("client")
        )
        # A supervisor's request for a repair plan waits here until the clinician answers it.
        context["repair_plan_requests"] = (
            RepairPlanRequest.objects.outstanding()
            .for_clinician(user)
            .select_related("flag__client", "requested_by")
            .order_by("requested_at", "pk")
        )
    if membership.is_supervisor:
        context["supervisees"] = (
            SupervisionPairing.objects.current()
            .filter(supervisor=user)
            .select_related("supervisee")
            .annotate(
                open_episodes=Count(
                    "supervisee__episodes", filter=Q(supervisee__episodes__closed_on__isnull=True)
                )
            )
        )
    if membership.is_admin:
        clients = Client.objects.in_practice(membership.practice)
        context["client_counts"] = {
            row["status"]: row["n"] for row in clients.values("status").annotate(n=Count("pk"))
        }
        context["staff_count"] = (
            Membership.objects.active().in_practice(membership.practice).count()
        )
        context["open_episodes"] = Episode.objects.active().in_practice(membership.practice).count()
        context["pending_invitations"] = (
            Invitation.objects.pending().in_practice(membership.practice).count()
        )
    return render(request, "practice/home_staff.html", context)
