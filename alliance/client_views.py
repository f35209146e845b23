"""Client-facing measure pages: the emailed or texted link, and the portal list.

GET shows the questionnaire and changes nothing (mail scanners prefetch links); POST
answers it. A refused link says why and that nothing was stored.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from alliance import services
from alliance.forms import MeasureForm
from alliance.measures import MeasureLinkRefused, measure_link_read, measure_link_token
from alliance.models import Instrument, MeasureRequest, Response
from practice.access import client_of
from practice.views import add_service_errors


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "alliance/client/link_refused.html", {"reason": reason}, status=410)


@never_cache
def measure_link(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    try:
        measure_request = measure_link_read(token, now=now)
    except MeasureLinkRefused as exc:
        return _refused(request, exc.reason)
    instrument = Instrument.objects.with_scoring_rules().get(pk=measure_request.instrument_id)
    form = MeasureForm(request.POST if request.method == "POST" else None, instrument=instrument)
    if request.method == "POST" and form.is_valid():
        own_client = (
            request.user.is_authenticated and measure_request.client.user_id == request.user.pk
        )
        try:
            services.measure_link_answer(
                token=token,
                answers=form.answers,
                now=timezone.now(),
                via=Response.Via.PORTAL if own_client else Response.Via.LINK,
            )
        except MeasureLinkRefused as exc:
            return _refused(request, exc.reason)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return render(
                request, "alliance/client/thanks.html", {"measure_request": measure_request}
            )
    return render(
        request,
        "alliance/client/measure.html",
        {"measure_request": measure_request, "instrument": instrument, "form": form},
        status=400 if form.is_bound and form.errors else 200,
    )


@never_cache
@login_required
def portal_measures(request: HttpRequest) -> HttpResponse:
    client = client_of(request.user)
    waiting = (
        MeasureRequest.objects.for_client(client)
        .awaiting_answer(timezone.now())
        .select_related("appointment")
        .order_by("expires_at")
    )
    return render(
        request,
        "alliance/client/portal_measures.html",
        {"client": client, "waiting": [(r, measure_link_token(r)) for r in waiting]},
    )
