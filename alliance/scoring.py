"""Scoring a questionnaire from its definition: no instrument is special-cased in code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from alliance.models import Instrument, InstrumentItem

Answer = int | bool | str

YES = ("yes", "true", "y", "1")
NO = ("no", "false", "n", "0")
WHOLE_NUMBER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Score:
    total: int
    subscales: dict[str, int] = field(default_factory=dict)
    band: str = ""
    # Keys of the items answered at or above a safety threshold, in item order.
    safety_items: list[str] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)

    @property
    def safety_triggered(self) -> bool:
        return bool(self.safety_items)


def score(instrument: Instrument, answers: Mapping[str, object]) -> Score:
    """Validate `answers` ({item key: value}) against `instrument` and score them.

    Every scored item must be answered: an incomplete form is refused, never partly scored,
    because a total over fewer items would read as a lower (better) score. Problems are
    collected and raised together as one ValidationError keyed by item key. Reads the
    instrument's items, bands and safety rules; prefetch them with
    `Instrument.objects.with_scoring_rules()` to score many responses without more queries.
    """
    items = sorted(instrument.items.all(), key=lambda item: item.position)
    by_key = {item.key: item for item in items}
    problems: dict[str, list[str]] = {}

    for key in answers:
        if key not in by_key:
            problems.setdefault(key, []).append(
                f"“{key}” is not an item of {instrument.name}; please remove it."
            )

    cleaned: dict[str, Answer] = {}
    for item in items:
        raw = answers.get(item.key)
        try:
            value = _clean(item, raw)
        except ValidationError as error:
            problems.setdefault(item.key, []).extend(error.messages)
            continue
        if value is not None:
            cleaned[item.key] = value

    if problems:
        raise ValidationError(problems)

    total = 0
    subscales: dict[str, int] = {}
    for item in items:
        if not item.scored:
            continue
        value = cleaned[item.key]
        assert isinstance(value, int)
        total += value
        if item.subscale:
            subscales[item.subscale] = subscales.get(item.subscale, 0) + value

    band = ""
    for severity in sorted(instrument.bands.all(), key=lambda b: b.lower):
        if severity.lower <= total:
            band = severity.label

    by_id = {item.pk: item for item in items}
    triggered: set[int] = set()
    for rule in instrument.safety_rules.all():
        rule_item = by_id.get(rule.item_id)
        # A yes/no safety item reads "yes" as 1; an unanswered item never triggers.
        value = cleaned.get(rule_item.key) if rule_item else None
        if value is not None and not isinstance(value, str) and int(value) >= rule.threshold:
            triggered.add(rule.item_id)
    safety_items = [item.key for item in items if item.pk in triggered]

    return Score(
        total=total, subscales=subscales, band=band, safety_items=safety_items, answers=cleaned
    )


def _label(item: InstrumentItem) -> str:
    return f"item {item.position}: “{item.wording}”"


def _clean(item: InstrumentItem, raw: object) -> Answer | None:
    """The answer as a domain value, None when an optional item was left blank."""
    blank = raw is None or (isinstance(raw, str) and not raw.strip())
    if item.kind == InstrumentItem.Kind.TEXT:
        if blank:
            return None
        if not isinstance(raw, str):
            raise ValidationError(f"Please answer {_label(item)} in words.")
        return raw.strip()

    if blank:
        if item.scored:
            raise ValidationError(f"Please answer {_label(item)}.")
        return None

    if item.kind == InstrumentItem.Kind.YES_NO:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in YES + NO:
            return raw.strip().lower() in YES
        raise ValidationError(f"Please answer yes or no to {_label(item)}.")

    # A rating scale: a whole number within the item's own range. bool is an int in
    # Python, but True is not an answer on a 0 to 3 scale.
    number: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and WHOLE_NUMBER.fullmatch(raw.strip()):
        number = int(raw.strip())
    span = f"{item.scale_min} to {item.scale_max}"
    if number is None:
        raise ValidationError(
            f"Please answer {_label(item)} with a whole number from {span}, not “{raw}”."
        )
    if not item.scale_min <= number <= item.scale_max:
        raise ValidationError(
            f"Please answer {_label(item)} with a number from {span}; {number} is outside it."
        )
    return number
