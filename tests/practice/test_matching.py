"""Matching is a pure function: ranking and reasons on constructed cases, no database."""

from __future__ import annotations

from datetime import time

from practice.matching import (
    FREE_PLACE,
    GENDER,
    LANGUAGE,
    NEED,
    NEEDS_AT_MOST,
    NO_FREE_PLACE,
    TIME_OF_DAY,
    ClientWishes,
    ClinicianFacts,
    Suggestion,
    periods_worked,
    rank,
    score,
)


def clinician(pk: int, name: str, *, capacity: int = 20, active: int = 10, **facts: object):
    return ClinicianFacts(
        clinician_id=pk,
        name=name,
        capacity=capacity,
        active_episodes=active,
        **facts,  # type: ignore[arg-type]
    )


def names(suggestions: list[Suggestion]) -> list[str]:
    return [s.clinician.name for s in suggestions]


def test_a_shared_language_ranks_first_and_says_so() -> None:
    client = ClientWishes(preferred_language="German")
    ranked = rank(
        client,
        [
            clinician(1, "Ana", languages=("English",)),
            clinician(2, "Ben", languages=("english", "german")),
        ],
    )
    assert names(ranked) == ["Ben", "Ana"]
    assert "Speaks German" in ranked[0].reasons
    assert "Does not list German as a language" in ranked[1].mismatches
    assert ranked[0].score - ranked[1].score == LANGUAGE


def test_each_need_met_counts_and_the_unmet_ones_are_named() -> None:
    client = ClientWishes(needs=("anxiety", "grief", "trauma"))
    ranked = rank(
        client,
        [
            clinician(1, "Ana", specialties=("Anxiety",)),
            clinician(2, "Ben", specialties=("anxiety", "grief")),
            clinician(3, "Cem"),
        ],
    )
    assert names(ranked) == ["Ben", "Ana", "Cem"]
    assert ranked[0].reasons[0] == "Specialises in anxiety, grief"
    assert "No listed specialty for trauma" in ranked[0].mismatches
    assert "No listed specialty for anxiety, grief, trauma" in ranked[2].mismatches
    assert ranked[0].score - ranked[2].score == 2 * NEED


def test_needs_count_up_to_a_ceiling() -> None:
    client = ClientWishes(needs=("a", "b", "c", "d", "e"))
    everything = clinician(1, "Ana", specialties=("a", "b", "c", "d", "e"))
    nothing = clinician(2, "Ben")
    assert score(client, everything).score - score(client, nothing).score == NEEDS_AT_MOST


def test_preferences_count_only_when_the_client_gave_them() -> None:
    unstated = ClientWishes()
    man = clinician(1, "Ana", gender="man", backgrounds=("Turkish",))
    blank = clinician(2, "Ben")
    for suggestion in (score(unstated, man), score(unstated, blank)):
        assert suggestion.mismatches == ()
        assert suggestion.reasons == ("10 free places (10 of 20 places taken)",)
    assert score(unstated, man).score == score(unstated, blank).score


def test_gender_and_backgrounds_match_when_given_whatever_the_case() -> None:
    client = ClientWishes(
        preferred_clinician_gender="Woman",
        cultural_background="turkish",
        faith_background="Muslim",
    )
    ranked = rank(
        client,
        [
            clinician(1, "Ana", gender="man", backgrounds=("Turkish",)),
            clinician(2, "Ben", gender="woman", backgrounds=("  turkish ", "muslim")),
            clinician(3, "Cem"),
        ],
    )
    assert names(ranked) == ["Ben", "Ana", "Cem"]
    best, middle, last = ranked
    assert "Gender as the client asked (woman)" in best.reasons
    assert "Shares the client's cultural background (turkish)" in best.reasons
    assert "Shares the client's faith background (Muslim)" in best.reasons
    assert "Gender is not the one the client asked for (Woman)" in middle.mismatches
    assert "Does not list the client's faith background (Muslim)" in middle.mismatches
    assert "Has not given a gender (the client asked for one)" in last.mismatches
    assert best.score - last.score == GENDER + 10 + 10


def test_periods_of_the_day_come_from_working_hours() -> None:
    assert periods_worked(time(9), time(17)) == {"morning", "afternoon"}
    assert periods_worked(time(12), time(20)) == {"afternoon", "evening"}
    assert periods_worked(time(7), time(21)) == {"morning", "afternoon", "evening"}
    # Half an hour of afternoon is not an afternoon session.
    assert periods_worked(time(16, 30), time(21)) == {"evening"}
    assert periods_worked(time(8), time(12, 30)) == {"morning"}


def test_time_of_day_counts_the_share_of_preferred_times_worked() -> None:
    client = ClientWishes(preferred_times=("evening", "morning"))
    days = clinician(1, "Ana", work_starts=time(9), work_ends=time(17))
    late = clinician(2, "Ben", work_starts=time(12), work_ends=time(20))
    both = clinician(3, "Cem", work_starts=time(8), work_ends=time(19))
    ranked = rank(client, [days, late, both])
    assert ranked[0].clinician.name == "Cem"
    assert ranked[0].reasons[0] == "Works in the client's preferred morning, evening (08:00–19:00)"
    by_name = {s.clinician.name: s for s in ranked}
    assert "Does not work in the evening (09:00–17:00)" in by_name["Ana"].mismatches
    assert "Does not work in the morning (12:00–20:00)" in by_name["Ben"].mismatches
    assert by_name["Cem"].score - by_name["Ana"].score == TIME_OF_DAY - round(TIME_OF_DAY / 2)


def test_full_clinicians_rank_below_free_ones_and_stay_listed_with_the_reason() -> None:
    ranked = rank(
        ClientWishes(),
        [
            clinician(1, "Ana", capacity=10, active=10),
            clinician(2, "Ben", capacity=10, active=12),
            clinician(3, "Cem", capacity=10, active=9),
        ],
    )
    assert names(ranked) == ["Cem", "Ana", "Ben"]
    assert ranked[0].reasons == ("1 free place (9 of 10 places taken)",)
    assert not ranked[0].needs_reason
    assert ranked[1].mismatches == ("Full: 10 of 10 places taken; assigning needs a reason",)
    assert ranked[2].mismatches == (
        "Over capacity: 12 of 10 places taken; assigning needs a reason",
    )
    assert ranked[1].needs_reason and ranked[2].needs_reason
    assert ranked[1].score == NO_FREE_PLACE


def test_a_full_clinician_who_speaks_the_language_beats_a_free_one_who_does_not() -> None:
    client = ClientWishes(preferred_language="Farsi")
    ranked = rank(
        client,
        [
            clinician(1, "Ana", capacity=25, active=0, languages=("English",)),
            clinician(2, "Ben", capacity=10, active=10, languages=("Farsi",)),
        ],
    )
    assert names(ranked) == ["Ben", "Ana"]
    assert ranked[0].needs_reason


def test_more_free_places_count_up_to_ten() -> None:
    client = ClientWishes()
    assert score(client, clinician(1, "Ana", capacity=30, active=0)).score == 10 * FREE_PLACE
    assert score(client, clinician(2, "Ben", capacity=30, active=27)).score == 3 * FREE_PLACE


def test_ties_break_by_free_places_then_by_name() -> None:
    client = ClientWishes(preferred_language="English")
    ranked = rank(
        client,
        [
            clinician(1, "zoë", capacity=40, active=20, languages=("English",)),
            clinician(2, "Adam", capacity=40, active=20, languages=("English",)),
            clinician(3, "Mia", capacity=40, active=30, languages=("English",)),
        ],
    )
    # All three score the same (10 free places each are counted); more room first, then A-Z.
    assert len({s.score for s in ranked}) == 1
    assert names(ranked) == ["Adam", "zoë", "Mia"]


def test_a_realistic_case_ranks_the_best_overall_fit_first() -> None:
    client = ClientWishes(
        preferred_language="Turkish",
        needs=("grief", "anxiety"),
        preferred_clinician_gender="woman",
        cultural_background="Kurdish",
        preferred_times=("evening",),
    )
    ranked = rank(
        client,
        [
            # Speaks Turkish and has room, but a man, no grief work, and days only.
            clinician(
                1, "Deniz", languages=("Turkish",), gender="man", specialties=("anxiety",),
            ),
            # A woman who shares the background and specialties, but only in German.
            clinician(
                2, "Hanna", languages=("German",), gender="woman", backgrounds=("Kurdish",),
                specialties=("grief", "anxiety"),
            ),
            # Speaks Turkish, a woman, grief and anxiety, Kurdish, evenings: full, though.
            clinician(
                3, "Leyla", languages=("Turkish", "German"), gender="woman",
                backgrounds=("Kurdish",), specialties=("grief", "anxiety"),
                work_starts=time(13), work_ends=time(21), capacity=12, active=12,
            ),
        ],
    )  # fmt: skip
    assert names(ranked) == ["Leyla", "Deniz", "Hanna"]
    leyla = ranked[0]
    assert leyla.needs_reason
    assert leyla.reasons == (
        "Speaks Turkish",
        "Specialises in grief, anxiety",
        "Gender as the client asked (woman)",
        "Shares the client's cultural background (Kurdish)",
        "Works in the client's preferred evening (13:00–21:00)",
    )
    assert leyla.mismatches == ("Full: 12 of 12 places taken; assigning needs a reason",)
    deniz = ranked[1]
    assert deniz.mismatches == (
        "No listed specialty for grief",
        "Gender is not the one the client asked for (woman)",
        "Does not list the client's cultural background (Kurdish)",
        "Does not work in the evening (09:00–17:00)",
    )
