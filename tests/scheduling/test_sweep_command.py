from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from scheduling.models import ReminderDelivery, WorkloadAlert


def test_the_sweep_reports_what_it_did_as_json(db: None) -> None:
    out = StringIO()
    call_command("sweep", at="2026-11-23T07:05:00+01:00", stdout=out)
    report = json.loads(out.getvalue())
    assert report["at"] == "2026-11-23T07:05:00+01:00"
    assert set(report) >= {
        "no_shows", "workload_alerts", "reminders_due", "agendas", "heads_ups", "rupture_flags",
    }  # fmt: skip


@pytest.mark.parametrize("at", ["yesterday", "2026-11-23T07:05:00"])
def test_a_bad_at_is_a_clear_error(db: None, at: str) -> None:
    with pytest.raises(CommandError):
        call_command("sweep", at=at, stdout=StringIO())


def test_on_the_demo_one_sweep_raises_the_overbooking_alerts_and_sends_reminders(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("sweep", stdout=StringIO())
    overbooked = WorkloadAlert.objects.open().filter(clinician__email="clinician4@demo.practice")
    assert overbooked.filter(kind="weekly_hours").exists()
    assert overbooked.filter(kind="rest_day_sessions").exists()
    assert ReminderDelivery.objects.filter(state="sent").exists()
    assert any("Reminder: your appointment" in m.subject for m in mail.outbox)
    # A second sweep at the same moment sends nothing more.
    sent = len(mail.outbox)
    call_command("sweep", at=(timezone.now() + timedelta(seconds=1)).isoformat(), stdout=StringIO())
    assert len([m for m in mail.outbox[sent:] if "Reminder" in m.subject]) == 0
