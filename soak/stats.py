"""Latency and outcome counts per request kind, and the readable table."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

# What an answer counts as. "expected" is a 4xx the mix provokes on purpose (a taken slot, a
# link already used, a flag already acknowledged); "unexpected" is any other 4xx, or a
# redirect to the login or MFA page, which means the harness is not measuring what it says.
OK, EXPECTED, SERVER_ERROR, CONNECTION_ERROR, UNEXPECTED = (
    "ok",
    "expected_4xx",
    "errors_5xx",
    "connection_errors",
    "unexpected",
)
OUTCOMES = (OK, EXPECTED, SERVER_ERROR, CONNECTION_ERROR, UNEXPECTED)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    )
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, outcome: str, seconds: float | None, note: str = "") -> None:
        with self.lock:
            self.outcomes[kind][outcome] += 1
            if seconds is not None:
                self.latencies[kind].append(seconds)
            if outcome not in (OK, EXPECTED) and len(self.samples[kind]) < 5:
                self.samples[kind].append(note)

    def summary(self, elapsed: float) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        everything: list[float] = []
        totals = dict.fromkeys(OUTCOMES, 0)
        for kind in sorted(self.outcomes):
            ordered = sorted(self.latencies[kind])
            everything += ordered
            kinds[kind] = _row(ordered, self.outcomes[kind])
            if self.samples[kind]:
                kinds[kind]["error_samples"] = self.samples[kind]
            for outcome, n in self.outcomes[kind].items():
                totals[outcome] += n
        overall = _row(sorted(everything), totals)
        overall["requests_per_second"] = round(overall["requests"] / elapsed, 1) if elapsed else 0
        return {"kinds": kinds, "overall": overall}


def _row(ordered: list[float], outcomes: dict[str, int]) -> dict[str, Any]:
    return {
        "requests": sum(outcomes.values()),
        **outcomes,
        "p50_ms": round(percentile(ordered, 50) * 1000, 1),
        "p95_ms": round(percentile(ordered, 95) * 1000, 1),
        "p99_ms": round(percentile(ordered, 99) * 1000, 1),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 1),
    }


def table(summary: dict[str, Any]) -> str:
    head = (
        f"{'kind':<18}{'requests':>9}{'ok':>8}{'4xx exp':>8}{'5xx':>6}{'conn':>6}{'unexp':>6}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    lines = [head, "-" * len(head)]
    rows = [*summary["kinds"].items(), ("ALL", summary["overall"])]
    for kind, row in rows:
        lines.append(
            f"{kind:<18}{row['requests']:>9}{row[OK]:>8}{row[EXPECTED]:>8}"
            f"{row[SERVER_ERROR]:>6}{row[CONNECTION_ERROR]:>6}{row[UNEXPECTED]:>6}"
            f"{row['p50_ms']:>9}{row['p95_ms']:>9}{row['p99_ms']:>9}{row['max_ms']:>9}"
        )
    return "\n".join(lines)
