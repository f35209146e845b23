"""The workload alerts page: the clinician's own, a supervisor's supervisees', an admin's all."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from practice.access import require_staff
from practice.models import User
from scheduling.workload import WEEKS_BACK, alerts_visible_to


@login_required
def workload_alerts(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    membership = require_staff(user)
    today = timezone.now().astimezone(membership.practice.tz).date()
    # The weeks the sweep keeps current. Older open alerts are frozen, not news.
    since = today - timedelta(days=today.weekday(), weeks=WEEKS_BACK)
    alerts = (
        alerts_visible_to(user)
        .open()
        .filter(week_start__gte=since)
        .select_related("clinician")
        .order_by("week_start", "clinician__last_name", "clinician__first_name", "kind")
    )
    return render(request, "scheduling/workload_alerts.html", {"alerts": alerts, "since": since})
