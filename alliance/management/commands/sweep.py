from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from alliance import measures, safety
from alliance.sweeps import rupture_sweep
from scheduling.sweeps import run_all, send_now


class Command(BaseCommand):
    """Lives in alliance, the top layer, because it runs every app's periodic jobs."""

    help = "Run every periodic job once, synchronously, as if the time were --at (default: now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="ISO-8601 time, e.g. 2026-11-23T07:05:00+01:00")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        if options["at"]:
            try:
                now = datetime.fromisoformat(options["at"])
            except ValueError as exc:
                raise CommandError(f"--at: not an ISO-8601 time: {options['at']!r}") from exc
            if timezone.is_naive(now):
                raise CommandError("--at needs a UTC offset, e.g. 2026-11-23T07:05:00+01:00")
        # Scheduling's sweeps first: the rupture rules read the no-shows they record.
        report = run_all(now=now, send=send_now)
        report["rupture_flags"] = len(rupture_sweep(now=now))
        links = measures.measure_requests_sweep(now=now)
        for request_id in links:
            measures.measure_request_send(request_id=request_id, now=now)
        report["measure_links"] = len(links)
        alerts = safety.safety_alerts_due(now=now)
        for alert_id in alerts:
            safety.safety_alert_send(alert_id=alert_id, now=now)
        report["safety_alerts"] = len(alerts)
        self.stdout.write(json.dumps({"at": now.isoformat(), **report}))
