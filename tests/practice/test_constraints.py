"""Invariants the database itself enforces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from practice.models import Client, Episode, Membership, Practice, SupervisionPairing, User


def test_the_database_refuses_overlapping_supervision_for_one_supervisee(
    practice: Practice, supervisor: User, clinician: User
) -> None:
    other = Membership.objects.get(user=supervisor).user
    with pytest.raises(IntegrityError), transaction.atomic():
        SupervisionPairing.objects.create(
            practice=practice,
            supervisor=other,
            supervisee=clinician,
            started_on=timezone.localdate() + timedelta(days=10),
        )


def test_the_database_refuses_a_second_open_episode(
    client_record: Client, other_clinician: User
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Episode.objects.create(client=client_record, clinician=other_clinician)


def test_the_database_refuses_a_closed_episode_without_a_reason(client_record: Client) -> None:
    episode = client_record.episodes.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Episode.objects.filter(pk=episode.pk).update(stage="closed", closed_on=timezone.localdate())


def test_a_membership_needs_a_role(practice: Practice) -> None:
    from tests.factories import UserFactory

    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=UserFactory.create(), practice=practice)
