"""The clinician's review of automatic no-shows: confirm each one, or correct it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from practice.access import require_clinician
from practice.models import User
from scheduling.access import get_appointment_for_user_write
from scheduling.noshows import noshow_review, noshows_awaiting_review
from scheduling.services import clinician_timezone


@login_required
def noshow_review_list(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    require_clinician(user)
    return render(
        request,
        "scheduling/noshow_review_list.html",
        {"appointments": noshows_awaiting_review(user), "tz": clinician_timezone(user)},
    )


@login_required
@require_POST
def noshow_review_action(request: HttpRequest, pk: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    appointment = get_appointment_for_user_write(user, pk)
    answer = request.POST.get("attended")
    if answer not in ("yes", "no"):
        messages.error(request, "Choose “Confirm no-show” or “They attended”.")
        return redirect("noshow_review_list")
    try:
        noshow_review(appointment=appointment, actor=user, attended=answer == "yes")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            "Corrected: the client attended." if answer == "yes" else "No-show confirmed.",
        )
    return redirect("noshow_review_list")
