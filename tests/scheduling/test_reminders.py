"""Reminders: planned when due, sent at most once per row, skipped with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client as HttpClient

from practice.models import Client, Practice, User
from scheduling import reminders
from scheduling.models import Appointment, ReminderDelivery, Status
from scheduling.services import appointment_cancel, appointment_reschedule
from scheduling.sms import outbox as sms_outbox
from tests.factories import book

BERLIN = ZoneInfo("Europe/Berlin")
State = ReminderDelivery.State
SESSION = datetime(2026, 3, 12, 10, 0, tzinfo=BERLIN)  # a Thursday


@pytest.fixture(autouse=True)
def _sms_outbox(settings: Any) -> None:
    settings.SMS_BACKEND = "scheduling.sms.LocmemSmsBackend"
    sms_outbox.clear()


@pytest.fixture
def session(clinician: User, client_record: Client) -> Appointment:
    with time_machine.travel(SESSION - timedelta(days=7), tick=False):
        return book(clinician, client_record, SESSION, location="in_person")


def sweep_and_send(now: datetime) -> list[str]:
    with time_machine.travel(now, tick=False):
        return [
            reminders.reminder_send(delivery_id=pk, now=now)
            for pk in reminders.reminders_sweep(now=now)
        ]


def test_nothing_is_planned_before_an_offset_falls_due(session: Appointment) -> None:
    assert sweep_and_send(SESSION - timedelta(hours=49)) == []
    assert not ReminderDelivery.objects.exists()


def test_the_48h_reminder_goes_by_email_and_sms_exactly_once(
    session: Appointment, client_record: Client
) -> None:
    now = SESSION - timedelta(hours=47)
    assert sweep_and_send(now) == ["sent", "sent"]
    assert sweep_and_send(now + timedelta(minutes=1)) == []
    assert len(mail.outbox) == 1 and len(sms_outbox) == 1
    rows = ReminderDelivery.objects.all()
    assert {(r.channel, r.offset, r.state) for r in rows} == {
        ("email", timedelta(hours=48), State.SENT),
        ("sms", timedelta(hours=48), State.SENT),
    }
    # A duplicated task for the same row sends nothing.
    assert reminders.reminder_send(delivery_id=rows[0].pk, now=now) == "not-claimed"
    assert len(mail.outbox) == 1


def test_the_email_has_links_an_ics_and_no_clinical_content(
    session: Appointment, clinician: User
) -> None:
    sweep_and_send(SESSION - timedelta(hours=47))
    message = mail.outbox[0]
    body = message.body
    assert "Thursday 12 March 2026, 10:00" in body
    for action in ("confirm", "cancel", "reschedule"):
        assert f"/c/{action}/" in body
    assert clinician.get_full_name() in body
    for clinical in ("episode", "stage", "middle", "rupture", "PHQ", "diagnos"):
        assert clinical.lower() not in body.lower()
    name, content, mimetype = message.attachments[0]
    assert name == "appointment.ics" and mimetype.startswith("text/calendar")
    text = content.decode() if isinstance(content, bytes) else content
    assert "BEGIN:VEVENT" in text and "DTSTART:20260312T090000Z" in text
    assert message.extra_headers["Message-ID"].startswith("<reminder-")
    assert message.alternatives[0][1] == "text/html"  # type: ignore[union-attr]


def test_the_sms_fits_one_segment_and_its_short_link_leads_to_the_confirm_page(
    session: Appointment,
) -> None:
    sweep_and_send(SESSION - timedelta(hours=47))
    text = sms_outbox[0].body
    assert len(text) <= 160
    short = text.rsplit(" ", 1)[1].removeprefix("http://testserver")
    with time_machine.travel(SESSION - timedelta(hours=47), tick=False):
        response = HttpClient().get(short)
    assert response.status_code == 302
    assert "/c/confirm/" in response["Location"]


def test_sms_waits_out_the_clients_quiet_hours(session: Appointment, client_record: Client) -> None:
    # 2 h before a 07:30 session is 05:30 local: quiet. Email goes, SMS waits.
    early = book(
        session.clinician,
        client_record,
        datetime(2026, 3, 13, 7, 30, tzinfo=BERLIN),
    )
    ReminderDelivery.objects.all().delete()
    early.created_at = datetime(2026, 3, 1, tzinfo=UTC)
    early.save(update_fields=["created_at"])
    now = datetime(2026, 3, 13, 5, 31, tzinfo=BERLIN)
    sweep_and_send(now)
    sms_rows = ReminderDelivery.objects.filter(appointment=early, channel="sms")
    assert {r.state for r in sms_rows} == {State.PENDING}
    sweep_and_send(datetime(2026, 3, 13, 8, 0, tzinfo=BERLIN) - timedelta(minutes=31))
    assert {r.state for r in sms_rows.all()} == {State.PENDING}
    # The session starts before the quiet hours end: the SMS is skipped, with the reason.
    sweep_and_send(datetime(2026, 3, 13, 7, 31, tzinfo=BERLIN))
    assert {r.state for r in sms_rows.all()} == {State.SKIPPED}
    assert "began" in sms_rows.first().detail  # type: ignore[union-attr]


def test_a_cancelled_session_gets_no_reminder(session: Appointment, clinician: User) -> None:
    with time_machine.travel(SESSION - timedelta(days=3), tick=False):
        appointment_cancel(appointment=session, by_client=False, actor=clinician, via="staff")
    assert sweep_and_send(SESSION - timedelta(hours=47)) == []
    assert not ReminderDelivery.objects.exists()


def test_a_pending_reminder_of_a_session_cancelled_since_is_skipped_with_the_reason(
    session: Appointment, clinician: User
) -> None:
    now = SESSION - timedelta(hours=47)
    with time_machine.travel(now, tick=False):
        reminders.reminders_plan(now=now)
        appointment_cancel(appointment=session, by_client=False, actor=clinician, via="staff")
    sweep_and_send(now)
    assert set(ReminderDelivery.objects.values_list("state", "detail")) == {
        (State.SKIPPED, "the session is cancelled clinician")
    }
    assert not mail.outbox


def test_rescheduling_brings_fresh_reminders_for_the_new_time(
    session: Appointment, clinician: User
) -> None:
    sweep_and_send(SESSION - timedelta(hours=47))
    assert len(mail.outbox) == 1
    later = SESSION + timedelta(days=7)
    with time_machine.travel(SESSION - timedelta(hours=46), tick=False):
        appointment_reschedule(
            appointment=session,
            starts_at=later,
            ends_at=later + timedelta(minutes=50),
            actor=clinician,
        )
    mail.outbox.clear()
    # The old 2 h reminder never goes: the session is not there any more.
    assert sweep_and_send(SESSION - timedelta(hours=1)) == []
    assert sweep_and_send(later - timedelta(hours=47)) == ["sent", "sent"]
    assert "Thursday 19 March 2026, 10:00" in mail.outbox[0].body


def test_after_an_outage_due_reminders_go_out_if_the_session_is_still_ahead(
    session: Appointment,
) -> None:
    # Nothing ran for two days; both offsets are due now, 1 h before the session.
    assert sorted(sweep_and_send(SESSION - timedelta(hours=1))) == ["sent"] * 4
    assert len(mail.outbox) == 2


def test_after_an_outage_past_the_start_the_rows_are_skipped_with_the_reason(
    session: Appointment,
) -> None:
    sweep_and_send(SESSION + timedelta(minutes=5))
    rows = ReminderDelivery.objects.all()
    assert rows.count() == 4
    assert {r.state for r in rows} == {State.SKIPPED}
    assert {r.detail for r in rows} == {"the session began before the reminder could be sent"}
    assert not mail.outbox


def test_an_attended_session_gets_no_reminder(session: Appointment) -> None:
    session.status = Status.ATTENDED
    session.save()
    assert sweep_and_send(SESSION - timedelta(hours=1)) == []


def test_per_channel_opt_out(session: Appointment, client_record: Client) -> None:
    client_record.sms_reminders = False
    client_record.save()
    assert sweep_and_send(SESSION - timedelta(hours=47)) == ["sent"]
    sms_row = ReminderDelivery.objects.get(channel="sms")
    assert (sms_row.state, sms_row.detail) == (State.SKIPPED, "client opted out of SMS reminders")
    assert not sms_outbox


def test_a_worker_that_died_mid_send_is_recovered_by_the_sweep(session: Appointment) -> None:
    now = SESSION - timedelta(hours=47)
    with time_machine.travel(now, tick=False):
        ids = reminders.reminders_sweep(now=now)
    ReminderDelivery.objects.filter(pk__in=ids).update(state=State.SENDING, claimed_at=now)
    assert sweep_and_send(now + timedelta(minutes=1)) == []  # still within the claim timeout
    assert sorted(sweep_and_send(now + timedelta(minutes=6))) == ["sent", "sent"]


def test_the_practice_policy_decides_offsets_and_channels(
    session: Appointment, practice: Practice
) -> None:
    practice.reminder_offsets = [timedelta(hours=24)]
    practice.reminder_channels = ["email"]
    practice.save()
    assert sweep_and_send(SESSION - timedelta(hours=23)) == ["sent"]
    assert ReminderDelivery.objects.get().offset == timedelta(hours=24)
