"""A fixed clock and row makers shared by the caseload tests (board, assign, transfer, export)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from alliance.models import RuptureFlag
from practice.models import ClinicianProfile, Episode, Practice, User
from scheduling.models import WorkloadAlert

BERLIN = ZoneInfo("Europe/Berlin")
# Wednesday 3 June 2026, 12:00 in Berlin. This week runs Monday 1 to Sunday 7 June.
NOW = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
THIS_MONDAY = date(2026, 6, 1)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def set_capacity(clinician: User, capacity: int) -> None:
    ClinicianProfile.objects.filter(membership__user=clinician).update(caseload_capacity=capacity)


def flag(
    episode: Episode,
    *,
    rule: str = RuptureFlag.Rule.LOW_ALLIANCE,
    key: str = "",
    summary: str = "Session feedback 18 of 40 after the third session.",
    resolved: bool = False,
) -> RuptureFlag:
    return RuptureFlag.objects.create(
        practice=episode.client.practice,
        episode=episode,
        client=episode.client,
        clinician=episode.clinician,
        rule=rule,
        severity=RuptureFlag.SEVERITY[rule],
        trigger_key=key or f"test:{episode.pk}:{rule}:{RuptureFlag.objects.count()}",
        evidence={"summary": summary},
        raised_at=NOW,
        status=RuptureFlag.Status.CLOSED if resolved else RuptureFlag.Status.OPEN,
        resolved_at=NOW if resolved else None,
    )


def alert(
    practice: Practice,
    clinician: User,
    *,
    week_start: date = THIS_MONDAY,
    kind: str = WorkloadAlert.Kind.WEEKLY_HOURS,
    resolved: bool = False,
) -> WorkloadAlert:
    return WorkloadAlert.objects.create(
        practice=practice,
        clinician=clinician,
        week_start=week_start,
        kind=kind,
        measured=Decimal("32"),
        limit=Decimal("30"),
        resolved_at=NOW if resolved else None,
    )
