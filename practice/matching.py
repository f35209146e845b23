"""Matching a waitlisted client to clinicians: a pure ranking, with the reasons for it.

Part of the admin's caseload pages, a top-layer page module (with practice/caseload.py and
practice/caseload_views.py). The practice core (models, services, access, views) never
imports scheduling or alliance; this module imports nothing from the database at all. It
takes plain facts and returns plain suggestions, so the ranking is unit-tested on
constructed cases without a single row (tests/practice/test_matching.py).

How a clinician scores for a client (points add up; higher ranks first):

=====================  ======  ===============================================================
criterion              points  when
=====================  ======  ===============================================================
shared language          +40   the client's preferred language is one the clinician lists
specialty                +10   per client need among the clinician's specialties (at most +30)
gender                   +15   the client asked for a clinician gender, and it matches
cultural background      +10   the client gave one, and the clinician lists it in backgrounds
faith background         +10   the client gave one, and the clinician lists it in backgrounds
time of day            0..+15  15 x the share of the client's preferred times the clinician
                               works in (morning < 12:00, afternoon 12-17, evening >= 17:00;
                               a period counts with at least an hour of working time in it)
free capacity          0..+10  +1 per free place, counted up to 10 places
no free place            -25   full or over capacity: assigning would need a written reason
=====================  ======  ===============================================================

Why these weights: therapy happens in words, so a shared language outweighs anything else
(it is the one criterion a client rarely can do without): a full clinician who speaks the
client's language (40 - 25) still ranks above a free one who does not (at most 10). Specialty
comes next: the client's needs are why they came. Preferences (gender, background, times)
count only when the client chose to give them; a client who gave none is never penalised
for it, and no clinician is ranked down for a preference the client did not state.
Capacity separates otherwise equal matches and moves full clinicians down without hiding
them: an admin may still assign over capacity, with a reason.

Ties rank by more free places, then by name, so the order is stable. Every suggestion lists
what matched (`reasons`) and what did not (`mismatches`), in plain words for the admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time

LANGUAGE = 40
NEED = 10
NEEDS_AT_MOST = 30
GENDER = 15
CULTURAL_BACKGROUND = 10
FAITH_BACKGROUND = 10
TIME_OF_DAY = 15
FREE_PLACE = 1
FREE_PLACES_COUNTED = 10
NO_FREE_PLACE = -25

# Minutes since midnight: [start, end) of each part of the day the client may prefer.
PERIODS: dict[str, tuple[int, int]] = {
    "morning": (0, 12 * 60),
    "afternoon": (12 * 60, 17 * 60),
    "evening": (17 * 60, 24 * 60),
}
# A period counts as worked when at least a session's worth of working time falls in it:
# a clinician who stops at 17:15 does not offer evening sessions.
MIN_MINUTES_IN_PERIOD = 60


@dataclass(frozen=True)
class ClientWishes:
    """What the client asked for. Empty strings and lists mean "not given"."""

    preferred_language: str = ""
    needs: tuple[str, ...] = ()
    preferred_clinician_gender: str = ""
    cultural_background: str = ""
    faith_background: str = ""
    preferred_times: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClinicianFacts:
    """What matching knows about one clinician."""

    clinician_id: int
    name: str
    capacity: int
    active_episodes: int
    languages: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    gender: str = ""
    backgrounds: tuple[str, ...] = ()
    work_starts: time = time(9, 0)
    work_ends: time = time(17, 0)

    @property
    def free_places(self) -> int:
        return self.capacity - self.active_episodes


@dataclass(frozen=True)
class Suggestion:
    clinician: ClinicianFacts
    score: int
    reasons: tuple[str, ...] = field(default=())
    mismatches: tuple[str, ...] = field(default=())

    @property
    def needs_reason(self) -> bool:
        """Assigning would take the clinician past capacity, which needs a written reason."""
        return self.clinician.free_places <= 0


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def periods_worked(work_starts: time, work_ends: time) -> frozenset[str]:
    """The parts of the day with at least MIN_MINUTES_IN_PERIOD of working time."""
    starts, ends = _minutes(work_starts), _minutes(work_ends)
    return frozenset(
        name
        for name, (lower, upper) in PERIODS.items()
        if min(ends, upper) - max(starts, lower) >= MIN_MINUTES_IN_PERIOD
    )


def _listing(values: Iterable[str]) -> str:
    return ", ".join(values)


def score(client: ClientWishes, clinician: ClinicianFacts) -> Suggestion:
    """Score one clinician for one client, with what matched and what did not."""
    points = 0
    reasons: list[str] = []
    mismatches: list[str] = []

    language = _norm(client.preferred_language)
    if language:
        if language in {_norm(v) for v in clinician.languages}:
            points += LANGUAGE
            reasons.append(f"Speaks {client.preferred_language.strip()}")
        else:
            mismatches.append(f"Does not list {client.preferred_language.strip()} as a language")

    specialties = {_norm(v) for v in clinician.specialties}
    needs = [need.strip() for need in client.needs if need.strip()]
    met = [need for need in needs if _norm(need) in specialties]
    unmet = [need for need in needs if _norm(need) not in specialties]
    if met:
        points += min(NEED * len(met), NEEDS_AT_MOST)
        reasons.append(f"Specialises in {_listing(met)}")
    if unmet:
        mismatches.append(f"No listed specialty for {_listing(unmet)}")

    wanted_gender = _norm(client.preferred_clinician_gender)
    if wanted_gender:
        if wanted_gender == _norm(clinician.gender):
            points += GENDER
            reasons.append(f"Gender as the client asked ({clinician.gender.strip()})")
        elif not clinician.gender.strip():
            mismatches.append("Has not given a gender (the client asked for one)")
        else:
            mismatches.append(
                f"Gender is not the one the client asked for "
                f"({client.preferred_clinician_gender.strip()})"
            )

    backgrounds = {_norm(v) for v in clinician.backgrounds}
    for given, weight, kind in (
        (client.cultural_background, CULTURAL_BACKGROUND, "cultural"),
        (client.faith_background, FAITH_BACKGROUND, "faith"),
    ):
        if not _norm(given):
            continue
        if _norm(given) in backgrounds:
            points += weight
            reasons.append(f"Shares the client's {kind} background ({given.strip()})")
        else:
            mismatches.append(f"Does not list the client's {kind} background ({given.strip()})")

    preferred = [t for t in PERIODS if t in set(client.preferred_times)]
    if preferred:
        worked = periods_worked(clinician.work_starts, clinician.work_ends)
        covered = [t for t in preferred if t in worked]
        points += round(TIME_OF_DAY * len(covered) / len(preferred))
        hours = f"{clinician.work_starts:%H:%M}–{clinician.work_ends:%H:%M}"
        if covered:
            reasons.append(f"Works in the client's preferred {_listing(covered)} ({hours})")
        missing = [t for t in preferred if t not in worked]
        if missing:
            mismatches.append(f"Does not work in the {_listing(missing)} ({hours})")

    free = clinician.free_places
    taken = f"{clinician.active_episodes} of {clinician.capacity} places taken"
    if free > 0:
        points += FREE_PLACE * min(free, FREE_PLACES_COUNTED)
        reasons.append(f"{free} free place{'s' if free != 1 else ''} ({taken})")
    else:
        points += NO_FREE_PLACE
        mismatches.append(
            f"{'Full' if free == 0 else 'Over capacity'}: {taken}; assigning needs a reason"
        )

    return Suggestion(
        clinician=clinician,
        score=points,
        reasons=tuple(reasons),
        mismatches=tuple(mismatches),
    )


def rank(client: ClientWishes, clinicians: Iterable[ClinicianFacts]) -> list[Suggestion]:
    """Every clinician scored for the client, best first; ties by free places, then name."""
    suggestions = [score(client, clinician) for clinician in clinicians]
    return sorted(
        suggestions,
        key=lambda s: (
            -s.score,
            -s.clinician.free_places,
            s.clinician.name.casefold(),
            s.clinician.clinician_id,
        ),
    )
