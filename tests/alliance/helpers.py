"""Answer sheets and a fixed clock shared by the alliance service tests."""

from __future__ import annotations

from datetime import UTC, datetime

from alliance.models import Instrument

# Monday 16 November 2026, 12:00 in Berlin (the practice's time zone).
NOW = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)


def instrument(code: str) -> Instrument:
    return Instrument.objects.with_scoring_rules().shipped().get(code=code)


def phq9_answers(total: int = 0, item9: int = 0) -> dict[str, object]:
    """A complete PHQ-9 adding up to `total`, with item 9 (the safety item) as given."""
    rest = total - item9
    parts = [min(3, max(0, rest - 3 * n)) for n in range(8)]
    return {f"phq9_{n}": v for n, v in enumerate([*parts, item9], start=1)}


def feedback_answers(total: int = 40, **follow_up: object) -> dict[str, object]:
    """Session feedback adding up to `total` of 40."""
    parts = [min(10, max(0, total - 10 * n)) for n in range(4)]
    keys = ["relationship", "goals_topics", "approach", "overall"]
    return {**dict(zip(keys, parts, strict=True)), **follow_up}
