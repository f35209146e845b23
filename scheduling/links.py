"""Signed links for clients: confirm, cancel, ask to reschedule. No login needed.

A link carries the appointment id, the action, the appointment's link_version and a random
nonce, signed with SECRET_KEY. It expires when the appointment starts, stops working when the
appointment is rescheduled (link_version changes), and works once (UsedClientLink).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Appointment, UsedClientLink

SALT = "scheduling.client-link"
ACTIONS = ("confirm", "cancel", "reschedule")


class LinkRefused(Exception):
    """A link that must not act: tampered, expired, superseded or used. Carries the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientLink:
    appointment: Appointment
    action: str
    digest: str


def client_link_token(appointment: Appointment, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown client link action {action!r}")
    payload = {"a": appointment.pk, "x": action, "v": appointment.link_version}
    payload["n"] = secrets.token_urlsafe(8)
    return signing.dumps(payload, salt=SALT, compress=True)


def client_link_url(appointment: Appointment, action: str) -> str:
    path = reverse("client_link", args=[action, client_link_token(appointment, action)])
    return f"{settings.SITE_URL}{path}"


def client_link_urls(appointment: Appointment) -> dict[str, str]:
    return {action: client_link_url(appointment, action) for action in ACTIONS}


def client_link_read(token: str, action: str) -> ClientLink:
    """Check a link without using it up. Raises LinkRefused with a reason a client can read."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise LinkRefused("This link is not valid. It may have been copied incompletely.") from exc
    if not isinstance(payload, dict) or payload.get("x") != action or action not in ACTIONS:
        raise LinkRefused("This link is not valid. It may have been copied incompletely.")
    pk = payload.get("a")
    appointment = (
        Appointment.objects.select_related("clinician", "client", "practice").filter(pk=pk).first()
        if isinstance(pk, int)
        else None
    )
    if appointment is None:
        raise LinkRefused("This appointment no longer exists.")
    if payload.get("v") != appointment.link_version:
        raise LinkRefused("This appointment was moved since this link was sent; use the newer one.")
    if appointment.starts_at <= timezone.now():
        raise LinkRefused("This link expired when the appointment began.")
    if not appointment.is_open:
        raise LinkRefused("This appointment was already cancelled or has taken place.")
    digest = hashlib.sha256(token.encode()).hexdigest()
    if UsedClientLink.objects.filter(digest=digest).exists():
        raise LinkRefused("This link was already used. Each link works once.")
    return ClientLink(appointment=appointment, action=action, digest=digest)
