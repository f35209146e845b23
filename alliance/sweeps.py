"""The rupture sweep: runs every detection rule over the episodes that can still change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Prefetch, Q, prefetch_related_objects

from alliance.models import Response, RuptureFlag
from alliance.rules import findings_for
from practice.models import Episode
from scheduling.models import Appointment

BATCH_SIZE = 200
# A closed episode can still receive late data (a feedback form answered after the
# ending); keep sweeping it for a while.
CLOSED_GRACE = timedelta(days=30)


def _episode_batches(now: datetime) -> Iterator[list[Episode]]:
    recently = (now - CLOSED_GRACE).date()
    ids = list(
        Episode.objects.filter(Q(closed_on__isnull=True) | Q(closed_on__gte=recently))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(ids), BATCH_SIZE):
        batch = list(
            Episode.objects.filter(pk__in=ids[start : start + BATCH_SIZE])
            .select_related("client__practice")
            .order_by("pk")
        )
        # A fixed number of queries per batch, whatever the rules read.
        prefetch_related_objects(
            batch,
            Prefetch(
                "responses",
                queryset=Response.objects.select_related("instrument").prefetch_related(
                    "instrument__safety_rules__item"
                ),
            ),
            Prefetch("appointments", queryset=Appointment.objects.all()),
        )
        yield batch


def rupture_sweep(*, now: datetime) -> list[int]:
    """Raise a flag for every new finding; return the ids of the flags raised by this run.

    Idempotent: flags are unique per (rule, trigger_key), existing ones are skipped, and a
    concurrent sweep's insert is ignored by the database instead of failing.
    """
    new_ids: list[int] = []
    for batch in _episode_batches(now):
        candidates: list[RuptureFlag] = []
        for episode in batch:
            for finding in findings_for(episode, now=now):
                candidates.append(
                    RuptureFlag(
                        practice=episode.client.practice,
                        episode=episode,
                        client=episode.client,
                        clinician_id=episode.clinician_id,
                        rule=finding.rule,
                        severity=finding.severity,
                        trigger_key=finding.trigger_key,
                        evidence=finding.evidence,
                        raised_at=now,
                    )
                )
        if not candidates:
            continue
        existing = set(
            RuptureFlag.objects.filter(episode__in=batch).values_list("rule", "trigger_key")
        )
        fresh = [flag for flag in candidates if (flag.rule, flag.trigger_key) not in existing]
        if not fresh:
            continue
        # ignore_conflicts leaves pk unset on PostgreSQL: read the new ids back by key.
        RuptureFlag.objects.bulk_create(fresh, ignore_conflicts=True)
        keys = Q()
        for flag in fresh:
            keys |= Q(rule=flag.rule, trigger_key=flag.trigger_key)
        new_ids.extend(RuptureFlag.objects.filter(keys, raised_at=now).values_list("pk", flat=True))
    return new_ids
