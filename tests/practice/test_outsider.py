"""Every practice page answers 404 to a stranger from another practice, whatever their roles."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import Client, Invitation, Membership, SupervisionPairing, User
from practice.services import invitation_create

# (url name, needs a pk of, method)
PAGES = [
    ("member_edit", "membership", "get"),
    ("clinician_profile_edit", "membership", "get"),
    ("invitation_resend", "invitation", "post"),
    ("invitation_revoke", "invitation", "post"),
    ("client_detail", "client", "get"),
    ("client_edit", "client", "get"),
    ("client_invite", "client", "get"),
    ("episode_open", "client", "get"),
    ("episode_stage", "episode", "post"),
    ("episode_close", "episode", "get"),
    ("pairing_end", "pairing", "get"),
]


@pytest.fixture
def targets(
    admin: User, clinician: User, supervisor: User, client_record: Client
) -> dict[str, int]:
    other = Client.objects.create(
        practice=client_record.practice, first_name="Ivy", last_name="Nguyen", email="i@x.org"
    )
    invitation = invitation_create(
        practice=client_record.practice, invited_by=admin, email="new@x.org", client=other
    )
    return {
        "membership": Membership.objects.get(user=clinician).pk,
        "invitation": Invitation.objects.get(pk=invitation.pk).pk,
        "client": client_record.pk,
        "episode": client_record.episodes.get().pk,
        "pairing": SupervisionPairing.objects.get(supervisee=clinician).pk,
    }


@pytest.mark.parametrize(("name", "kind", "method"), PAGES)
def test_outsider_gets_404(
    as_outsider: HttpClient, targets: dict[str, int], name: str, kind: str, method: str
) -> None:
    url = reverse(name, args=[targets[kind]])
    response = getattr(as_outsider, method)(url)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "name",
    ["member_list", "member_invite", "client_new", "pairing_list", "pairing_new", "audit_log"],
)
def test_admin_pages_are_404_for_an_outsider_and_for_non_admins(
    as_outsider: HttpClient, as_clinician: HttpClient, as_client: HttpClient, name: str
) -> None:
    # The outsider is an admin, but of another practice: these pages show only their own.
    assert as_outsider.get(reverse(name)).status_code == 200
    assert as_clinician.get(reverse(name)).status_code == 404
    assert as_client.get(reverse(name)).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(db: None) -> None:
    response = HttpClient().get(reverse("client_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("pk", ["0", "99999999999999999999999999"])
def test_absurd_ids_are_404_not_500(as_admin: HttpClient, pk: str) -> None:
    assert as_admin.get(f"/clients/{pk}/").status_code == 404
    assert as_admin.post(f"/episodes/{pk}/stage/", {"stage": "middle"}).status_code == 404


def test_a_garbage_invitation_link_gets_the_friendly_page(db: None) -> None:
    response = HttpClient().get("/invite/%00%ff..garbage/")
    assert response.status_code == 410
