from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError

from alliance.models import Instrument

pytestmark = pytest.mark.django_db


def test_the_shipped_instruments_exist_after_migrations_with_their_items() -> None:
    counts = {
        instrument.code: instrument.items.count() for instrument in Instrument.objects.shipped()
    }
    assert counts == {"phq-9": 9, "gad-7": 7, "session-feedback": 6}


def test_phq9_ships_with_its_bands_reliable_change_and_safety_item() -> None:
    phq9 = Instrument.objects.shipped().get(code="phq-9")
    assert phq9.kind == Instrument.Kind.OUTCOME
    assert phq9.reliable_change == Decimal(6)
    assert "Pfizer" in phq9.licence_note
    assert [band.lower for band in phq9.bands.all()] == [0, 5, 10, 15, 20]
    rule = phq9.safety_rules.get()
    assert (rule.item.position, rule.threshold) == (9, 1)


def test_gad7_ships_with_its_bands_and_reliable_change() -> None:
    gad7 = Instrument.objects.shipped().get(code="gad-7")
    assert gad7.reliable_change == Decimal(4)
    assert [band.label for band in gad7.bands.all()] == ["minimal", "mild", "moderate", "severe"]


def test_session_feedback_is_four_scored_items_and_an_unscored_follow_up() -> None:
    feedback = Instrument.objects.shipped().get(code="session-feedback")
    assert feedback.kind == Instrument.Kind.ALLIANCE
    assert feedback.reliable_change is None
    scored = [(item.scale_min, item.scale_max) for item in feedback.items.filter(scored=True)]
    assert scored == [(0, 10)] * 4
    assert list(feedback.items.filter(scored=False).values_list("key", "kind")) == [
        ("felt_off", "yes_no"),
        ("felt_off_text", "text"),
    ]


def test_a_second_shipped_copy_of_the_same_version_is_refused() -> None:
    with pytest.raises(IntegrityError):
        Instrument.objects.create(code="phq-9", name="PHQ-9 again", version=1, kind="outcome")


def test_a_practice_may_define_its_own_instrument_with_a_shipped_code(practice) -> None:
    Instrument.objects.create(practice=practice, code="phq-9", name="Ours", kind="outcome")
    assert Instrument.objects.available_to(practice).filter(code="phq-9").count() == 2
