"""Staff and client invitations: single-use links to set a password."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from practice.models import AuditEvent, Client, Invitation, Membership, Practice, User
from practice.services import invitation_create, invitation_link, invitation_token
from tests.factories import ClientFactory

NEW_PASSWORD = "a-long-and-unusual-passphrase-7"


pytestmark = pytest.mark.usefixtures("run_on_commit")


def link_path(message: mail.EmailMessage) -> str:
    line = next(line for line in message.body.splitlines() if "/invite/" in line)
    return line.strip().removeprefix("http://testserver")


def accept(path: str, **overrides: str) -> tuple[HttpClient, Any]:
    http = HttpClient()
    data = {
        "first_name": "Frank",
        "last_name": "Lutz",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        **overrides,
    }
    return http, http.post(path, data)


def test_an_admin_invites_a_clinician_who_accepts_and_signs_in(
    as_admin: HttpClient, practice: Practice
) -> None:
    response = as_admin.post(
        reverse("member_invite"),
        {
            "email": "Frank@Example.org",
            "first_name": "Frank",
            "last_name": "Lutz",
            "roles": ["clinician"],
        },
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["frank@example.org"]
    assert Invitation.objects.get().sent_at is not None

    http, response = accept(link_path(message))
    assert response.status_code == 302
    user = User.objects.get(email="frank@example.org")
    membership = Membership.objects.get(user=user)
    assert membership.practice == practice
    assert membership.is_clinician and not membership.is_admin
    assert membership.clinician_profile is not None
    assert http.login(email="frank@example.org", password=NEW_PASSWORD)


def test_the_link_works_once(as_admin: HttpClient) -> None:
    as_admin.post(
        reverse("member_invite"),
        {"email": "f@example.org", "first_name": "F", "last_name": "L", "roles": ["supervisor"]},
    )
    path = link_path(mail.outbox[0])
    accept(path)
    _, replay = accept(
        path, password1="another-long-passphrase-8", password2="another-long-passphrase-8"
    )
    assert replay.status_code == 410
    assert b"does not work any more" in replay.content
    assert User.objects.filter(email="f@example.org").count() == 1


def test_a_tampered_link_is_refused_and_changes_nothing(admin: User, practice: Practice) -> None:
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="t@example.org", roles=("clinician",)
    )
    token = invitation_token(invitation)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    _, response = accept(reverse("invitation_accept", args=[tampered]))
    assert response.status_code == 410
    assert not User.objects.filter(email="t@example.org").exists()


def test_an_expired_link_is_refused(admin: User, practice: Practice) -> None:
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="x@example.org", roles=("clinician",)
    )
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        _, response = accept(reverse("invitation_accept", args=[invitation_token(invitation)]))
    assert response.status_code == 410
    assert not User.objects.filter(email="x@example.org").exists()


def test_a_resend_replaces_the_old_link(
    as_admin: HttpClient, admin: User, practice: Practice
) -> None:
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="r@example.org", roles=("clinician",)
    )
    old = invitation_link(invitation)
    as_admin.post(reverse("invitation_resend", args=[invitation.pk]))
    assert len(mail.outbox) == 2
    assert link_path(mail.outbox[1]) != old.removeprefix("http://testserver")
    _, response = accept(old.removeprefix("http://testserver"))
    assert response.status_code == 410
    _, response = accept(link_path(mail.outbox[1]))
    assert response.status_code == 302


def test_a_revoked_invitation_no_longer_works(
    as_admin: HttpClient, admin: User, practice: Practice
) -> None:
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="v@example.org", roles=("clinician",)
    )
    as_admin.post(reverse("invitation_revoke", args=[invitation.pk]))
    _, response = accept(link_path(mail.outbox[0]))
    assert response.status_code == 410


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password2": "something-else-entirely-9"}, b"The two passwords differ"),
        ({"password1": "short", "password2": "short"}, b"too short"),
        ({"password1": "password123", "password2": "password123"}, b"too common"),
        ({"first_name": ""}, b"This field is required"),
    ],
)
def test_bad_input_on_accept_gives_a_clear_error_and_creates_nothing(
    admin: User, practice: Practice, overrides: dict[str, str], message: bytes
) -> None:
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="b@example.org", roles=("clinician",)
    )
    _, response = accept(
        reverse("invitation_accept", args=[invitation_token(invitation)]), **overrides
    )
    assert response.status_code == 400
    assert message in response.content
    assert not User.objects.filter(email="b@example.org").exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_inviting_an_existing_login_is_refused(as_admin: HttpClient, clinician: User) -> None:
    response = as_admin.post(
        reverse("member_invite"),
        {
            "email": clinician.email.upper(),
            "first_name": "B",
            "last_name": "C",
            "roles": ["clinician"],
        },
    )
    assert response.status_code == 400
    assert b"already has a login" in response.content
    assert not Invitation.objects.exists()


def test_an_invite_needs_a_role(as_admin: HttpClient) -> None:
    response = as_admin.post(
        reverse("member_invite"), {"email": "n@example.org", "first_name": "N", "last_name": "R"}
    )
    assert response.status_code == 400
    assert b"Choose at least one role" in response.content


def test_a_clinician_invites_their_client_to_the_portal(
    as_clinician: HttpClient, practice: Practice, clinician: User
) -> None:
    from tests.factories import EpisodeFactory

    record = ClientFactory.create(practice=practice, email="gina@example.org")
    EpisodeFactory.create(client=record, clinician=clinician)
    response = as_clinician.post(
        reverse("client_invite", args=[record.pk]), {"email": "gina@example.org"}
    )
    assert response.status_code == 302
    # The invitation email carries no clinical content: no clinician name, no diagnosis.
    body = mail.outbox[0].body
    assert clinician.last_name not in body
    _, response = accept(link_path(mail.outbox[0]))
    record.refresh_from_db()
    assert record.user is not None and record.user.email == "gina@example.org"
    assert not Membership.objects.filter(user=record.user).exists()
    assert AuditEvent.objects.filter(action="invitation.accept").count() == 1


def test_another_clinician_cannot_invite_someone_elses_client(
    as_other_clinician: HttpClient, client_record: Client
) -> None:
    client_record.user = None
    client_record.save()
    response = as_other_clinician.post(
        reverse("client_invite", args=[client_record.pk]), {"email": "z@example.org"}
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()
