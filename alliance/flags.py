"""Raising flags: one INSERT per batch that reports exactly the rows it created.

Both the periodic sweep and a submitted response (for safety, at once) raise flags through
here. ``ON CONFLICT DO NOTHING RETURNING id`` makes a concurrent second raise of the same
(rule, trigger) a no-op that reports nothing, so history rows and safety alerts follow only
the flags this call really created.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Prefetch, prefetch_related_objects

from alliance.models import AlliancePolicy, FlagEvent, Response, RuptureFlag
from alliance.rules import Finding, findings_for
from alliance.safety import safety_alerts_plan
from practice.models import Episode
from scheduling.models import Appointment

INSERT_SQL = """
INSERT INTO alliance_ruptureflag
    (practice_id, episode_id, client_id, clinician_id, rule, severity, trigger_key, evidence,
     raised_at, status, kind, marker, note)
SELECT * FROM unnest(
    %(practice)s::bigint[], %(episode)s::bigint[], %(client)s::bigint[], %(clinician)s::bigint[],
    %(rule)s::varchar[], %(severity)s::int[], %(trigger)s::varchar[], %(evidence)s::jsonb[],
    %(raised_at)s::timestamptz[], %(status)s::varchar[], %(blank)s::varchar[],
    %(blank)s::varchar[], %(blank)s::text[]
)
ON CONFLICT (rule, trigger_key) DO NOTHING
RETURNING id
"""


def prefetch_history(episodes: list[Episode]) -> None:
    """Everything the rules read, in a fixed number of queries for the whole list."""
    prefetch_related_objects(
        episodes,
        Prefetch(
            "responses",
            queryset=Response.objects.select_related("instrument").prefetch_related(
                "instrument__safety_rules__item"
            ),
        ),
        Prefetch("appointments", queryset=Appointment.objects.all()),
    )


def policies_by_practice(practice_ids: Iterable[int]) -> dict[int, AlliancePolicy]:
    return {p.practice_id: p for p in AlliancePolicy.objects.filter(practice_id__in=practice_ids)}


def findings_for_episodes(
    episodes: list[Episode], *, now: datetime
) -> list[tuple[Episode, Finding]]:
    """Run every rule over episodes whose client and history are loaded."""
    policies = policies_by_practice({e.client.practice_id for e in episodes})
    return [
        (episode, finding)
        for episode in episodes
        for finding in findings_for(
            episode, now=now, policy=policies.get(episode.client.practice_id)
        )
    ]


@transaction.atomic
def flags_raise(found: list[tuple[Episode, Finding]], *, now: datetime) -> list[int]:
    """Insert a flag per finding not raised before; return the ids this call created."""
    if not found:
        return []
    params: dict[str, Any] = {
        "practice": [e.client.practice_id for e, _ in found],
        "episode": [e.pk for e, _ in found],
        "client": [e.client_id for e, _ in found],
        "clinician": [e.clinician_id for e, _ in found],
        "rule": [f.rule for _, f in found],
        "severity": [f.severity for _, f in found],
        "trigger": [f.trigger_key for _, f in found],
        "evidence": [json.dumps(f.evidence) for _, f in found],
        "raised_at": [now for _ in found],
        "status": [RuptureFlag.Status.OPEN for _ in found],
        "blank": ["" for _ in found],
    }
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, params)
        new_ids = [row[0] for row in cursor.fetchall()]
    if new_ids:
        FlagEvent.objects.bulk_create(
            FlagEvent(flag_id=pk, at=now, action=FlagEvent.Action.RAISED, to_status="open")
            for pk in new_ids
        )
        safety_alerts_plan(flag_ids=new_ids, now=now)
    return sorted(new_ids)


def flags_raise_for_episode(episode_id: int, *, now: datetime) -> list[int]:
    """Run the rules over one episode now, e.g. right after a response came in."""
    episode = Episode.objects.select_related("client__practice").get(pk=episode_id)
    prefetch_history([episode])
    return flags_raise(findings_for_episodes([episode], now=now), now=now)
