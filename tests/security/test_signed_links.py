"""Every kind of link that works without a login refuses a forged, expired, replayed or
misdirected use with a clear page (4xx, never 500), and changes nothing.

Covered elsewhere, not repeated here:
- client links: tampered, garbage, confirm-as-cancel, expired at the start, used once,
  superseded by a reschedule, a cancelled session (tests/scheduling/test_client_links.py);
- measure links, at the service level: tampered, another request's id with this nonce,
  expired, not yet sent, answered twice (tests/alliance/test_measure_requests.py);
- invitations: used once, tampered, expired, resent, revoked (tests/practice/test_invitations.py);
- calendar feeds: unknown token, regenerated, revoked, a clinician who left
  (tests/scheduling/test_calendar_feed.py).

Added here: the same refusals through HTTP for measure links, a link signed with another
key naming another record (what a forger without SECRET_KEY can do), one kind's token
pasted into another kind's address, short links, tampered feed tokens, and a check that
nothing in the database moved after each refusal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import measures
from alliance.measures import measure_link_token
from alliance.models import MeasureRequest, Response
from practice.models import Client, Invitation, Membership, User
from practice.services import INVITATION_SALT, invitation_token
from scheduling import links
from scheduling.ical import ical_uid
from scheduling.links import client_link_token
from scheduling.models import (
    Appointment,
    AppointmentStatusChange,
    RescheduleRequest,
    ShortLink,
    Status,
    UsedClientLink,
)
from tests.alliance.helpers import feedback_answers
from tests.factories import ClientFactory, EpisodeFactory, book
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db

ACCEPT = {
    "first_name": "Nora",
    "last_name": "Neu",
    "password1": "a-long-enough-passphrase-9",
    "password2": "a-long-enough-passphrase-9",
}
# Answers for every kind of client link action (the confirm form ignores them).
ACTION_DATA = {"message": "Thursday would suit me.", "reason": "I am ill."}


@pytest.fixture
def world() -> World:
    return build_world()


def snapshot() -> tuple[Any, ...]:
    """Everything a link could change, as one comparable value."""
    return (
        list(Appointment.objects.order_by("pk").values_list("pk", "status", "link_version")),
        AppointmentStatusChange.objects.count(),
        RescheduleRequest.objects.count(),
        UsedClientLink.objects.count(),
        list(MeasureRequest.objects.order_by("pk").values_list("pk", "state")),
        Response.objects.count(),
        list(Invitation.objects.order_by("pk").values_list("pk", "accepted_at", "revoked_at")),
        User.objects.count(),
        Membership.objects.count(),
        list(Client.objects.order_by("pk").values_list("pk", "user_id")),
    )


def assert_refused(response: Any, *, text: str | None = None) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    if text is not None:
        assert text in response.content.decode()


def refuses_and_changes_nothing(
    method: str, path: str, data: dict[str, Any] | None = None, *, text: str | None = None
) -> None:
    before = snapshot()
    http = HttpClient()
    response = http.post(path, data or {}) if method == "post" else http.get(path)
    assert_refused(response, text=text)
    assert snapshot() == before


def another_appointment(world: World) -> Appointment:
    """Someone else's upcoming session in the same practice."""
    other = ClientFactory.create(practice=world.practice)
    EpisodeFactory.create(client=other, clinician=world.other_clinician)
    return book(
        world.other_clinician,
        other,
        world.upcoming.starts_at + timedelta(hours=2),
        status=Status.SCHEDULED,
    )


# --- Forged: signed with a key that is not ours, naming another record --------------------


def forged_paths(world: World) -> dict[str, tuple[str, dict[str, Any]]]:
    theirs = another_appointment(world)
    key = "an-attackers-guess-at-the-secret-key-0123456789-abcdefghijklmnop"
    forged_client = signing.dumps(
        {"a": theirs.pk, "x": "cancel", "v": theirs.link_version, "n": "x"},
        key=key,
        salt=links.SALT,
        compress=True,
    )
    forged_measure = signing.dumps(
        {"q": world.measure_request.pk, "n": world.measure_request.nonce},
        key=key,
        salt=measures.SALT,
        compress=True,
    )
    forged_invitation = signing.dumps(
        {"i": world.invitation.pk, "n": world.invitation.nonce}, key=key, salt=INVITATION_SALT
    )
    return {
        "client_link": (reverse("client_link", args=["cancel", forged_client]), ACTION_DATA),
        "measure_link": (reverse("measure_link", args=[forged_measure]), feedback_answers(30)),
        "invitation": (reverse("invitation_accept", args=[forged_invitation]), ACCEPT),
    }


@pytest.mark.parametrize("kind", ["client_link", "measure_link", "invitation"])
def test_a_link_signed_with_another_key_is_refused(world: World, kind: str) -> None:
    path, data = forged_paths(world)[kind]
    refuses_and_changes_nothing("get", path)
    refuses_and_changes_nothing("post", path, data)


# --- One kind's token in another kind's address -------------------------------------------


def tokens(world: World) -> dict[str, str]:
    return {
        "client_link": client_link_token(world.upcoming, "confirm"),
        "measure_link": measure_link_token(world.measure_request),
        "invitation": invitation_token(world.invitation),
    }


def address(kind: str, token: str) -> str:
    if kind == "client_link":
        return reverse("client_link", args=["confirm", token])
    if kind == "measure_link":
        return reverse("measure_link", args=[token])
    return reverse("invitation_accept", args=[token])


@pytest.mark.parametrize(
    ("token_kind", "used_as"),
    [
        (a, b)
        for a in ("client_link", "measure_link", "invitation")
        for b in ("client_link", "measure_link", "invitation")
        if a != b
    ],
)
def test_a_token_of_one_kind_does_not_work_as_another(
    world: World, token_kind: str, used_as: str
) -> None:
    path = address(used_as, tokens(world)[token_kind])
    forms: dict[str, dict[str, Any]] = {
        "client_link": ACTION_DATA,
        "measure_link": feedback_answers(30),
        "invitation": ACCEPT,
    }
    data = forms[used_as]
    refuses_and_changes_nothing("get", path)
    refuses_and_changes_nothing("post", path, data)


# --- Measure links through HTTP ------------------------------------------------------------


def test_a_tampered_measure_link_is_refused_with_a_clear_page(world: World) -> None:
    token = measure_link_token(world.measure_request)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    path = reverse("measure_link", args=[tampered])
    refuses_and_changes_nothing("get", path, text="not valid")
    refuses_and_changes_nothing("post", path, feedback_answers(30), text="not valid")


def test_a_measure_link_naming_another_request_is_refused(world: World) -> None:
    # Our own signature (as if leaked from another message) around another request's id.
    other = MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.FEEDBACK,
        instrument=world.feedback,
        client=world.client,
        episode=world.episode,
        appointment=world.upcoming,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=timezone.now(),
        expires_at=timezone.now() + timedelta(days=1),
        sent_at=timezone.now(),
    )
    forged = signing.dumps(
        {"q": other.pk, "n": world.measure_request.nonce}, salt=measures.SALT, compress=True
    )
    path = reverse("measure_link", args=[forged])
    refuses_and_changes_nothing("post", path, feedback_answers(30), text="not valid")


def test_an_expired_measure_link_is_refused_with_a_clear_page(world: World) -> None:
    path = reverse("measure_link", args=[measure_link_token(world.measure_request)])
    with time_machine.travel(world.measure_request.expires_at + timedelta(seconds=1)):
        refuses_and_changes_nothing("get", path, text="expired")
        refuses_and_changes_nothing("post", path, feedback_answers(30), text="expired")


def test_a_measure_link_answers_once(world: World) -> None:
    path = reverse("measure_link", args=[measure_link_token(world.measure_request)])
    first = HttpClient().post(path, feedback_answers(30))
    assert first.status_code == 200
    assert Response.objects.filter(request=world.measure_request).count() == 1

    refuses_and_changes_nothing("get", path, text="already answered")
    refuses_and_changes_nothing("post", path, feedback_answers(5), text="already answered")
    assert Response.objects.get(request=world.measure_request).total == 30


def test_a_measure_link_answered_by_another_signed_in_client_is_still_only_the_links(
    world: World,
) -> None:
    """Whoever holds the link answers for the link's client, and is not recorded as that
    client's portal use; the signed-in client's own record is untouched."""
    stranger = ClientFactory.create(practice=world.practice, user=None)
    user = User.objects.create_user(email="someone@example.org", password="x" * 12)
    stranger.user = user
    stranger.save(update_fields=["user"])
    http = HttpClient()
    http.force_login(user)
    path = reverse("measure_link", args=[measure_link_token(world.measure_request)])

    assert http.post(path, feedback_answers(30)).status_code == 200

    response = Response.objects.get(request=world.measure_request)
    assert response.client == world.client
    assert response.collected_via == Response.Via.LINK
    assert not Response.objects.filter(client=stranger).exists()


# --- Invitations -----------------------------------------------------------------------------


def test_an_invitation_naming_another_invitation_is_refused(world: World) -> None:
    other = Invitation.objects.create(
        practice=world.practice,
        kind=world.invitation.kind,
        email="someone-else@example.org",
        is_clinician=True,
        invited_by=world.admin,
        expires_at=timezone.now() + timedelta(days=7),
    )
    forged = signing.dumps({"i": other.pk, "n": world.invitation.nonce}, salt=INVITATION_SALT)
    refuses_and_changes_nothing("post", reverse("invitation_accept", args=[forged]), ACCEPT)


# --- Short links -----------------------------------------------------------------------------


def test_a_short_link_leads_to_its_client_link(world: World) -> None:
    response = HttpClient().get(reverse("short_link", args=[world.short_link.code]))
    assert response.status_code == 302
    assert response["Location"] == world.short_link.target


def test_an_expired_short_link_is_gone(world: World) -> None:
    path = reverse("short_link", args=[world.short_link.code])
    with time_machine.travel(world.short_link.expires_at + timedelta(seconds=1)):
        refuses_and_changes_nothing("get", path, text="expired")


@pytest.mark.parametrize("code", ["abc124", "ABC123", "abc12", "x" * 200])
def test_an_unknown_or_altered_short_code_is_gone(world: World, code: str) -> None:
    refuses_and_changes_nothing("get", f"/s/{code}/", text="not valid")


@pytest.mark.parametrize("code", ["abc123%00", "abc%2F123", "abc123%20", "%C3%A9t%C3%A9"])
def test_a_short_code_that_cannot_be_one_is_404_not_500(world: World, code: str) -> None:
    refuses_and_changes_nothing("get", f"/s/{code}/")


@pytest.mark.parametrize("target", ["javascript:alert(1)", "data:text/html,hi", "mailto:a@b"])
def test_a_short_link_never_redirects_to_a_non_web_address(world: World, target: str) -> None:
    ShortLink.objects.filter(pk=world.short_link.pk).update(target=target)
    refuses_and_changes_nothing("get", f"/s/{world.short_link.code}/")


def test_a_replayed_short_link_reaches_a_refusal(world: World) -> None:
    """The short link only forwards; the signed link it forwards to works once."""
    http = HttpClient()
    target = http.get(reverse("short_link", args=[world.short_link.code]))["Location"]
    assert http.post(target).status_code == 200
    forwarded = http.get(reverse("short_link", args=[world.short_link.code]))["Location"]
    refuses_and_changes_nothing("post", forwarded, text="already used")


# --- Calendar feed tokens -----------------------------------------------------------------


def _altered(token: str) -> list[str]:
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, token[:-1], token + "x", token.upper() if token != token.upper() else "a"]


def test_an_altered_feed_token_is_404(world: World) -> None:
    for token in _altered(world.feed.token):
        refuses_and_changes_nothing("get", reverse("calendar_feed_ics", args=[token]))
    for raw in ("%00", world.feed.token + "%00", "a%20b"):
        refuses_and_changes_nothing("get", f"/calendar/feed/{raw}.ics")


def test_a_feed_token_shows_only_its_own_clinicians_sessions(world: World) -> None:
    theirs = another_appointment(world)
    body = HttpClient().get(reverse("calendar_feed_ics", args=[world.feed.token])).content
    assert ical_uid(world.upcoming).encode() in body
    assert ical_uid(theirs).encode() not in body


# --- Client links: what the other files leave out -------------------------------------------


@pytest.mark.parametrize("action", ["confirm", "cancel", "reschedule"])
def test_every_client_link_action_works_once_and_expires(world: World, action: str) -> None:
    path = reverse("client_link", args=[action, client_link_token(world.upcoming, action)])
    with time_machine.travel(world.upcoming.starts_at + timedelta(seconds=1)):
        refuses_and_changes_nothing("post", path, ACTION_DATA, text="expired")
    assert HttpClient().post(path, ACTION_DATA).status_code == 200
    refuses_and_changes_nothing("post", path, ACTION_DATA)
