from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from alliance.models import Instrument, InstrumentItem
from alliance.scoring import score

pytestmark = pytest.mark.django_db


def shipped(code: str) -> Instrument:
    return Instrument.objects.with_scoring_rules().shipped().get(code=code)


@pytest.fixture
def phq9() -> Instrument:
    return shipped("phq-9")


@pytest.fixture
def gad7() -> Instrument:
    return shipped("gad-7")


@pytest.fixture
def feedback() -> Instrument:
    return shipped("session-feedback")


def phq9_answers(*vector: int) -> dict[str, object]:
    assert len(vector) == 9
    return {f"phq9_{n}": value for n, value in enumerate(vector, start=1)}


def gad7_answers(*vector: int) -> dict[str, object]:
    assert len(vector) == 7
    return {f"gad7_{n}": value for n, value in enumerate(vector, start=1)}


def feedback_answers(
    relationship: int, goals: int, approach: int, overall: int, **follow_up: object
) -> dict[str, object]:
    return {
        "relationship": relationship,
        "goals_topics": goals,
        "approach": approach,
        "overall": overall,
        **follow_up,
    }


def messages(error: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return error.value.message_dict


# PHQ-9


def test_phq9_minimum_is_zero_and_minimal(phq9: Instrument) -> None:
    result = score(phq9, phq9_answers(0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert (result.total, result.band, result.safety_items) == (0, "minimal", [])


def test_phq9_maximum_is_27_and_severe(phq9: Instrument) -> None:
    result = score(phq9, phq9_answers(3, 3, 3, 3, 3, 3, 3, 3, 3))
    assert (result.total, result.band) == (27, "severe")


@pytest.mark.parametrize(
    ("vector", "total", "band"),
    [
        ((1, 1, 1, 1, 0, 0, 0, 0, 0), 4, "minimal"),
        ((1, 1, 1, 1, 1, 0, 0, 0, 0), 5, "mild"),
        ((2, 2, 2, 1, 1, 1, 0, 0, 0), 9, "mild"),
        ((2, 2, 2, 2, 1, 1, 0, 0, 0), 10, "moderate"),
        ((3, 3, 2, 2, 2, 1, 1, 0, 0), 14, "moderate"),
        ((3, 3, 3, 2, 2, 1, 1, 0, 0), 15, "moderately severe"),
        ((3, 3, 3, 3, 3, 2, 1, 1, 0), 19, "moderately severe"),
        ((3, 3, 3, 3, 3, 2, 2, 1, 0), 20, "severe"),
    ],
)
def test_phq9_band_edges(phq9: Instrument, vector: tuple[int, ...], total: int, band: str) -> None:
    result = score(phq9, phq9_answers(*vector))
    assert (result.total, result.band) == (total, band)


def test_phq9_item_9_answered_above_zero_raises_the_safety_flag(phq9: Instrument) -> None:
    result = score(phq9, phq9_answers(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert result.safety_items == ["phq9_9"]
    assert result.safety_triggered
    assert result.band == "minimal"


def test_a_high_phq9_total_without_item_9_raises_no_safety_flag(phq9: Instrument) -> None:
    result = score(phq9, phq9_answers(3, 3, 3, 3, 3, 3, 3, 3, 0))
    assert result.total == 24
    assert not result.safety_triggered


def test_scoring_a_prefetched_instrument_runs_no_queries(
    phq9: Instrument, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        score(phq9, phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1))


# GAD-7


def test_gad7_minimum_and_maximum(gad7: Instrument) -> None:
    bottom = score(gad7, gad7_answers(0, 0, 0, 0, 0, 0, 0))
    assert (bottom.total, bottom.band) == (0, "minimal")
    top = score(gad7, gad7_answers(3, 3, 3, 3, 3, 3, 3))
    assert (top.total, top.band) == (21, "severe")


@pytest.mark.parametrize(
    ("vector", "total", "band"),
    [
        ((1, 1, 1, 1, 0, 0, 0), 4, "minimal"),
        ((1, 1, 1, 1, 1, 0, 0), 5, "mild"),
        ((2, 2, 2, 1, 1, 1, 0), 9, "mild"),
        ((2, 2, 2, 2, 1, 1, 0), 10, "moderate"),
        ((3, 3, 2, 2, 2, 1, 1), 14, "moderate"),
        ((3, 3, 3, 2, 2, 1, 1), 15, "severe"),
    ],
)
def test_gad7_band_edges(gad7: Instrument, vector: tuple[int, ...], total: int, band: str) -> None:
    result = score(gad7, gad7_answers(*vector))
    assert (result.total, result.band) == (total, band)


def test_gad7_has_no_safety_item(gad7: Instrument) -> None:
    assert not score(gad7, gad7_answers(3, 3, 3, 3, 3, 3, 3)).safety_triggered


# Session feedback


def test_session_feedback_totals_from_0_to_40(feedback: Instrument) -> None:
    assert score(feedback, feedback_answers(0, 0, 0, 0)).total == 0
    assert score(feedback, feedback_answers(10, 10, 10, 10)).total == 40
    assert score(feedback, feedback_answers(9, 8, 10, 7)).band == ""


@pytest.mark.parametrize(("said", "felt_off"), [(True, True), ("yes", True), ("no", False)])
def test_felt_off_is_recorded_but_not_counted_in_the_total(
    feedback: Instrument, said: object, felt_off: bool
) -> None:
    result = score(
        feedback, feedback_answers(9, 9, 9, 9, felt_off=said, felt_off_text="  Rushed.  ")
    )
    assert result.total == 36
    assert result.answers["felt_off"] is felt_off
    assert result.answers["felt_off_text"] == "Rushed."


def test_the_follow_up_questions_are_optional(feedback: Instrument) -> None:
    result = score(feedback, feedback_answers(10, 10, 10, 10, felt_off_text=""))
    assert result.total == 40
    assert set(result.answers) == {"relationship", "goals_topics", "approach", "overall"}


def test_felt_off_must_be_yes_or_no(feedback: Instrument) -> None:
    with pytest.raises(ValidationError) as error:
        score(feedback, feedback_answers(9, 9, 9, 9, felt_off="maybe"))
    assert messages(error)["felt_off"] == [
        "Please answer yes or no to item 5: "
        "“Did anything in today's session feel off, or that you disagreed with?”."
    ]


# Refusals


def test_a_missing_item_is_refused_by_name_and_nothing_is_scored(phq9: Instrument) -> None:
    answers = phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1)
    del answers["phq9_3"]
    with pytest.raises(ValidationError) as error:
        score(phq9, answers)
    assert messages(error) == {
        "phq9_3": [
            "Please answer item 3: “Trouble falling or staying asleep, or sleeping too much”."
        ]
    }


def test_a_blank_answer_counts_as_missing(phq9: Instrument) -> None:
    answers = phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1) | {"phq9_9": "  "}
    with pytest.raises(ValidationError) as error:
        score(phq9, answers)
    assert list(messages(error)) == ["phq9_9"]


def test_every_problem_is_reported_at_once(phq9: Instrument) -> None:
    with pytest.raises(ValidationError) as error:
        score(phq9, {"phq9_1": 4})
    assert len(messages(error)) == 9


@pytest.mark.parametrize("value", [4, -1])
def test_an_answer_outside_the_phq9_scale_is_refused(phq9: Instrument, value: int) -> None:
    with pytest.raises(ValidationError) as error:
        score(phq9, phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1) | {"phq9_2": value})
    assert messages(error) == {
        "phq9_2": [
            "Please answer item 2: “Feeling down, depressed, or hopeless” with a number "
            f"from 0 to 3; {value} is outside it."
        ]
    }


@pytest.mark.parametrize("value", [11, -1])
def test_an_answer_outside_the_feedback_scale_is_refused(feedback: Instrument, value: int) -> None:
    with pytest.raises(ValidationError) as error:
        score(feedback, feedback_answers(10, 10, 10, value))
    [message] = messages(error)["overall"]
    assert f"from 0 to 10; {value} is outside it" in message


@pytest.mark.parametrize("value", ["two", 2.5, True, "2.0", None])
def test_an_answer_that_is_not_a_whole_number_is_refused(phq9: Instrument, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        score(phq9, phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1) | {"phq9_1": value})
    [message] = messages(error)["phq9_1"]
    assert message.startswith("Please answer item 1: “Little interest or pleasure in doing things”")


def test_a_whole_number_sent_as_text_by_a_form_is_accepted(phq9: Instrument) -> None:
    result = score(phq9, {f"phq9_{n}": "2" for n in range(1, 10)})
    assert result.total == 18
    assert result.answers["phq9_1"] == 2


def test_the_word_two_is_named_in_the_message(phq9: Instrument) -> None:
    with pytest.raises(ValidationError) as error:
        score(phq9, phq9_answers(1, 1, 1, 1, 1, 1, 1, 1, 1) | {"phq9_1": "two"})
    [message] = messages(error)["phq9_1"]
    assert message.endswith("with a whole number from 0 to 3, not “two”.")


def test_an_unknown_key_is_refused(phq9: Instrument) -> None:
    with pytest.raises(ValidationError) as error:
        score(phq9, phq9_answers(0, 0, 0, 0, 0, 0, 0, 0, 0) | {"phq9_10": 1})
    assert messages(error) == {"phq9_10": ["“phq9_10” is not an item of PHQ-9; please remove it."]}


# Custom instruments


def test_a_custom_instrument_sums_each_subscale(practice) -> None:
    custom = Instrument.objects.create(
        practice=practice, code="wai-sr", name="Licensed alliance inventory", kind="alliance"
    )
    for position, (key, subscale) in enumerate(
        [("b1", "bond"), ("g1", "goal"), ("b2", "bond"), ("g2", "goal")], start=1
    ):
        InstrumentItem.objects.create(
            instrument=custom,
            position=position,
            key=key,
            wording=f"Licensed wording {position}",
            scale_min=1,
            scale_max=5,
            subscale=subscale,
        )
    custom = Instrument.objects.with_scoring_rules().get(pk=custom.pk)

    result = score(custom, {"b1": 5, "g1": 2, "b2": 4, "g2": 1})

    assert result.total == 12
    assert result.subscales == {"bond": 9, "goal": 3}
    assert result.band == ""
