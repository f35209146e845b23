"""Flags, workload alerts and supervisees for the supervision tests, straight into the
database (no rules, no sweep), so each test states exactly what the queue holds."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from alliance.models import FlagEvent, RuptureFlag
from practice.models import Client, Episode, Practice, SupervisionPairing, User
from scheduling.models import WorkloadAlert
from tests.factories import ClientFactory, EpisodeFactory, PairingFactory, staff


def make_flag(
    episode: Episode,
    rule: str = RuptureFlag.Rule.LOW_ALLIANCE,
    *,
    raised_at: datetime | None = None,
    summary: str | None = None,
    **fields: object,
) -> RuptureFlag:
    if rule == RuptureFlag.Rule.LOGGED:
        fields.setdefault("kind", RuptureFlag.Kind.WITHDRAWAL)
        fields.setdefault("marker", RuptureFlag.Marker.DENIAL)
    label = RuptureFlag.Rule(rule).label
    flag = RuptureFlag.objects.create(
        practice=episode.client.practice,
        episode=episode,
        client=episode.client,
        clinician=episode.clinician,
        rule=rule,
        severity=RuptureFlag.SEVERITY[rule],
        trigger_key=f"test:{uuid.uuid4().hex}",
        evidence={"summary": summary or f"{label}: what the rule saw.", "total": 24},
        raised_at=raised_at or timezone.now(),
        **fields,
    )
    FlagEvent.objects.create(
        flag=flag, at=flag.raised_at, action=FlagEvent.Action.RAISED, to_status="open"
    )
    return flag


def this_monday(practice: Practice) -> date:
    today = timezone.now().astimezone(practice.tz).date()
    return today - timedelta(days=today.weekday())


def make_alert(
    clinician: User,
    kind: str = WorkloadAlert.Kind.WEEKLY_HOURS,
    *,
    opened_at: datetime | None = None,
    week_start: date | None = None,
) -> WorkloadAlert:
    practice = clinician.membership.practice
    return WorkloadAlert.objects.create(
        practice=practice,
        clinician=clinician,
        week_start=week_start or this_monday(practice),
        kind=kind,
        measured=Decimal("34"),
        limit=Decimal("30"),
        opened_at=opened_at or timezone.now(),
    )


def supervisee_with_client(
    practice: Practice, supervisor: User, *, email: str | None = None
) -> tuple[User, Client, Episode]:
    """A new clinician, paired with `supervisor`, with one client in an open episode."""
    clinician = staff(practice, "clinician", email=email) if email else staff(practice, "clinician")
    PairingFactory.create(practice=practice, supervisor=supervisor, supervisee=clinician)
    client = ClientFactory.create(practice=practice)
    episode = EpisodeFactory.create(client=client, clinician=clinician)
    return clinician, client, episode


def end_pairing(supervisor: User, supervisee: User) -> None:
    """The pairing ends today: `ended_on` is the first day without."""
    SupervisionPairing.objects.filter(supervisor=supervisor, supervisee=supervisee).update(
        ended_on=timezone.localdate()
    )
