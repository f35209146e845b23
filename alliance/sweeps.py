"""The rupture sweep: runs every detection rule over the episodes that can still change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Q

from alliance.flags import findings_for_episodes, flags_raise, prefetch_history
from practice.models import Episode

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
        prefetch_history(batch)
        yield batch


def rupture_sweep(*, now: datetime) -> list[int]:
    """Raise a flag for every new finding; return the ids of the flags raised by this run.

    Idempotent: flags are unique per (rule, trigger_key); a finding raised before, by an
    earlier sweep, a concurrent one, or a response submitted a moment ago, is skipped by the
    database and not reported again.
    """
    new_ids: list[int] = []
    for batch in _episode_batches(now):
        new_ids.extend(flags_raise(findings_for_episodes(batch, now=now), now=now))
    return new_ids
