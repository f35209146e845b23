"""The benchmark's baseline view, mounted only when settings.BENCH_TRIVIAL_VIEW is on.

bench/pages.py divides each page's requests per second by this view's, served by the same
gunicorn, through the same middleware (session, auth, MFA check, CSP...) and the same session,
so the ratio shows what the page itself costs.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
