"""Minimum necessary access to client records, through Client.objects.visible_to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from practice.access import get_client_for_invite, get_client_for_user, get_client_for_user_write
from practice.models import Client, Practice, SupervisionPairing, User
from tests.factories import ClientFactory, EpisodeFactory, staff


def test_a_clinician_reaches_clients_of_their_active_and_past_episodes(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    past = ClientFactory.create(practice=practice, status=Client.Status.DISCHARGED)
    episode = EpisodeFactory.create(client=past, clinician=clinician)
    episode.close(reason="completed", on=timezone.localdate())
    stranger = ClientFactory.create(practice=practice)

    visible = set(Client.objects.visible_to(clinician))

    assert visible == {client_record, past}
    assert stranger not in visible


def test_another_clinician_in_the_same_practice_gets_404(
    other_clinician: User, client_record: Client
) -> None:
    with pytest.raises(Http404):
        get_client_for_user(other_clinician, client_record.pk)


def test_a_supervisor_reaches_current_supervisees_open_cases_only(
    practice: Practice, supervisor: User, clinician: User, client_record: Client
) -> None:
    closed = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=closed, clinician=clinician).close(
        reason="completed", on=timezone.localdate()
    )
    assert set(Client.objects.visible_to(supervisor)) == {client_record}

    # When the pairing ends, so does the access.
    SupervisionPairing.objects.filter(supervisor=supervisor).update(ended_on=timezone.localdate())
    assert not Client.objects.visible_to(supervisor).exists()


def test_an_admin_reaches_every_client_of_their_practice_only(
    admin: User, client_record: Client, other_practice: Practice
) -> None:
    elsewhere = ClientFactory.create(practice=other_practice)
    assert get_client_for_user(admin, client_record.pk) == client_record
    with pytest.raises(Http404):
        get_client_for_user(admin, elsewhere.pk)


def test_a_client_reaches_only_themselves(
    client_user: User, client_record: Client, practice: Practice
) -> None:
    sibling = ClientFactory.create(practice=practice)
    assert list(Client.objects.visible_to(client_user)) == [client_record]
    with pytest.raises(Http404):
        get_client_for_user(client_user, sibling.pk)


def test_an_inactive_member_reaches_nothing(practice: Practice, client_record: Client) -> None:
    former = staff(practice, "admin")
    former.membership.is_active = False
    former.membership.save()
    assert not Client.objects.visible_to(former).exists()


def test_only_admins_write_client_records(
    clinician: User, admin: User, client_record: Client
) -> None:
    assert get_client_for_user_write(admin, client_record.pk) == client_record
    with pytest.raises(PermissionDenied):
        get_client_for_user_write(clinician, client_record.pk)


def test_the_clients_clinician_and_admins_may_invite_but_a_supervisor_may_not(
    clinician: User, admin: User, supervisor: User, client_record: Client
) -> None:
    assert get_client_for_invite(clinician, client_record.pk) == client_record
    assert get_client_for_invite(admin, client_record.pk) == client_record
    with pytest.raises(PermissionDenied):
        get_client_for_invite(supervisor, client_record.pk)


def test_a_future_pairing_grants_nothing_yet(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    later = staff(practice, "supervisor")
    SupervisionPairing.objects.filter(supervisee=clinician).delete()
    SupervisionPairing.objects.create(
        practice=practice,
        supervisor=later,
        supervisee=clinician,
        started_on=timezone.localdate() + timedelta(days=3),
    )
    assert not Client.objects.visible_to(later).exists()
