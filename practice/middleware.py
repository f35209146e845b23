from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from practice.access import membership_of

# Pages a staff member without MFA may still reach: signing in and out, enrolling MFA itself,
# accepting an invitation, and static files.
EXEMPT_PREFIXES = (
    "/accounts/",
    "/static/",
    "/invite/",
    "/c/",
    "/m/",
    "/s/",
    "/mfa-required/",
    "/healthz",
)


class StaffMFARequiredMiddleware:
    """Staff reach no practice page until they have enrolled TOTP (unless MFA_REQUIRED=false)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.MFA_REQUIRED
            and request.user.is_authenticated
            and not request.path.startswith(EXEMPT_PREFIXES)
            and membership_of(request.user) is not None
            and not Authenticator.objects.filter(
                user=request.user, type=Authenticator.Type.TOTP
            ).exists()
        ):
            return redirect("mfa_required")
        return self.get_response(request)
