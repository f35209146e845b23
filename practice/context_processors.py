from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from practice.access import membership_of


def membership(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    current = membership_of(user)
    return {
        "membership": current,
        "is_portal_client": user.is_authenticated and current is None,
    }
