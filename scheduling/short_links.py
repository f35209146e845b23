"""Short links for SMS: /s/<code>/ redirects to the signed client link it stands for."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from scheduling.models import ShortLink


def short_link(request: HttpRequest, code: str) -> HttpResponse:
    link = ShortLink.objects.filter(code=code, expires_at__gt=timezone.now()).first()
    if link is None or not link.target.startswith(("http://", "https://", "/")):
        return render(
            request,
            "scheduling/client/link_refused.html",
            {"reason": "This link has expired or is not valid."},
            status=410,
        )
    return redirect(link.target)
