from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class InviteOnlyAccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """There is no public sign-up: staff and clients arrive through invitations."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False
