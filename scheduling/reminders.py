"""Client reminders: planned by a set-based sweep, sent at most once per row by workers.

Life of a reminder row (ReminderDelivery), unique per (appointment, offset, channel, start):

1. ``reminders_plan`` inserts a row when its offset falls due (``starts_at - offset <= now``)
   for a scheduled or confirmed session still ahead. A session that was cancelled, attended,
   or moved past the offset never gets a row; a move gives rows for the new start. Rows the
   client opted out of, or that have no address, are inserted as skipped with the reason.
2. ``reminders_skip`` marks pending rows skipped when their session was cancelled, moved or
   has begun, and puts rows whose worker died mid-send back to pending.
3. ``reminders_due`` lists pending rows to send now (SMS waits out the client's quiet hours).
4. ``reminder_send`` claims one row with a conditional UPDATE, sends, and records the outcome.

A sweep that missed ticks (workers or Redis down) catches up on the next one: planning
only looks at ``now``, so nothing depends on an earlier task still being queued.
"""

from __future__ import annotations

import logging
import secrets
import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from scheduling import claims
from scheduling.ical import ical_for
from scheduling.links import client_link_urls
from scheduling.models import Appointment, ReminderDelivery, ShortLink
from scheduling.sms import SmsMessage, get_sms_backend

logger = logging.getLogger(__name__)

State = ReminderDelivery.State
# A row left in "sending" this long belongs to a worker that died: send it again.
CLAIM_TIMEOUT = claims.CLAIM_TIMEOUT
# How far back a missed reminder is still recorded (as skipped) rather than ignored.
LOOKBACK = timedelta(days=2)
MAX_ATTEMPTS = 5
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"

PLAN_SQL = """
INSERT INTO scheduling_reminderdelivery
    (appointment_id, "offset", channel, session_start, due_at, state, attempts, detail)
SELECT a.id, o.off, c.ch, a.starts_at, a.starts_at - o.off,
    CASE
        WHEN a.starts_at <= %(now)s THEN 'skipped'
        WHEN c.ch = 'email' AND NOT cl.email_reminders THEN 'skipped'
        WHEN c.ch = 'email' AND cl.email = '' THEN 'skipped'
        WHEN c.ch = 'sms' AND NOT cl.sms_reminders THEN 'skipped'
        WHEN c.ch = 'sms' AND cl.phone = '' THEN 'skipped'
        ELSE 'pending'
    END,
    0,
    CASE
        WHEN a.starts_at <= %(now)s THEN 'the session began before the reminder could be sent'
        WHEN c.ch = 'email' AND NOT cl.email_reminders THEN 'client opted out of email reminders'
        WHEN c.ch = 'email' AND cl.email = '' THEN 'no email address'
        WHEN c.ch = 'sms' AND NOT cl.sms_reminders THEN 'client opted out of SMS reminders'
        WHEN c.ch = 'sms' AND cl.phone = '' THEN 'no phone number'
        ELSE ''
    END
FROM scheduling_appointment a
JOIN practice_practice p ON p.id = a.practice_id
JOIN practice_client cl ON cl.id = a.client_id
CROSS JOIN LATERAL unnest(p.reminder_offsets) AS o(off)
CROSS JOIN LATERAL unnest(p.reminder_channels) AS c(ch)
WHERE a.status IN ('scheduled', 'confirmed')
  AND a.starts_at - o.off <= %(now)s
  AND a.starts_at > %(since)s
  -- Only offsets that fell due after the booking: a session booked for tomorrow gets no
  -- "48 hours before" reminder (the booking notice already went out).
  AND a.starts_at - o.off >= a.created_at
ON CONFLICT (appointment_id, "offset", channel, session_start) DO NOTHING
"""

SKIP_SQL = """
UPDATE scheduling_reminderdelivery r
SET state = 'skipped', finished_at = %(now)s,
    detail = CASE
        WHEN a.status NOT IN ('scheduled', 'confirmed')
            THEN 'the session is ' || replace(a.status, '_', ' ')
        WHEN a.starts_at <> r.session_start THEN 'the session was moved'
        ELSE 'the session began before the reminder could be sent'
    END
FROM scheduling_appointment a
WHERE a.id = r.appointment_id AND r.state = 'pending'
  AND (a.status NOT IN ('scheduled', 'confirmed')
       OR a.starts_at <> r.session_start
       OR a.starts_at <= %(now)s)
"""

# Pending rows to send now. SMS waits while it is quiet time in the client's zone.
DUE_SQL = """
SELECT r.id
FROM scheduling_reminderdelivery r
JOIN scheduling_appointment a ON a.id = r.appointment_id
JOIN practice_practice p ON p.id = a.practice_id
JOIN practice_client cl ON cl.id = a.client_id
WHERE r.state = 'pending' AND r.due_at <= %(now)s AND a.starts_at > %(now)s
  AND (r.channel <> 'sms' OR NOT (
        CASE WHEN p.sms_quiet_starts > p.sms_quiet_ends
             THEN (%(now)s AT TIME ZONE COALESCE(NULLIF(cl.timezone, ''), p.timezone))::time
                      >= p.sms_quiet_starts
                  OR (%(now)s AT TIME ZONE COALESCE(NULLIF(cl.timezone, ''), p.timezone))::time
                      < p.sms_quiet_ends
             ELSE (%(now)s AT TIME ZONE COALESCE(NULLIF(cl.timezone, ''), p.timezone))::time
                      >= p.sms_quiet_starts
                  AND (%(now)s AT TIME ZONE COALESCE(NULLIF(cl.timezone, ''), p.timezone))::time
                      < p.sms_quiet_ends
        END))
ORDER BY r.due_at, r.id
"""


def reminders_plan(*, now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(PLAN_SQL, {"now": now, "since": now - LOOKBACK})
        return int(cursor.rowcount)


def reminders_skip(*, now: datetime) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(SKIP_SQL, {"now": now})
        skipped = int(cursor.rowcount)
        _recover_stale_claims(now)
    return skipped


def _recover_stale_claims(now: datetime) -> None:
    """A worker killed after claiming a row never finished it. Ask the mail transport, where
    it can answer, whether the message left before the kill; otherwise send it again (with
    the same Message-ID, which mail systems use to collapse duplicates)."""
    stale = claims.stale_claims(ReminderDelivery.objects.all(), now=now)
    delivered = _already_delivered(
        {reminder_message_id(row): row.pk for row in stale if row.channel == "email"}
    )
    if delivered:
        ReminderDelivery.objects.filter(pk__in=delivered, state=State.SENDING).update(
            state=State.SENT, finished_at=now, detail="sent before its worker died"
        )
    stale.exclude(pk__in=delivered).update(state=State.PENDING, claimed_at=None)


def _already_delivered(ids_by_message_id: dict[str, int]) -> list[int]:
    """Rows whose message the transport already holds. Only the file backend can tell; for
    SMTP the answer is "unknown" and the message is sent again."""
    if not ids_by_message_id or settings.EMAIL_BACKEND != FILE_BACKEND:
        return []
    folder = Path(getattr(settings, "EMAIL_FILE_PATH", ""))
    found: list[int] = []
    for path in folder.glob("*.log") if folder.is_dir() else []:
        text = path.read_text(errors="replace")
        found += [pk for mid, pk in ids_by_message_id.items() if f"Message-ID: {mid}" in text]
    return found


def reminders_due(*, now: datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(DUE_SQL, {"now": now})
        return [row[0] for row in cursor.fetchall()]


def reminder_message_id(delivery: ReminderDelivery) -> str:
    """Deterministic, so that a resend after a crash is recognisable as the same message."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<reminder-{delivery.pk}@{host}>"


def short_link(target: str, *, expires_at: datetime) -> str:
    link = ShortLink.objects.create(
        code=secrets.token_urlsafe(6), target=target, expires_at=expires_at
    )
    return f"{settings.SITE_URL}{reverse('short_link', args=[link.code])}"


def _email(delivery: ReminderDelivery, appointment: Appointment) -> None:
    client = appointment.client
    tz = client.effective_timezone
    context: dict[str, Any] = {
        "appointment": appointment,
        "local": appointment.starts_at.astimezone(zoneinfo.ZoneInfo(tz)),
        "tz": tz,
        "client": client,
        "clinician": appointment.clinician,
        "practice": appointment.practice,
        "links": client_link_urls(appointment),
    }
    message = EmailMultiAlternatives(
        subject=f"Reminder: your appointment at {appointment.practice.name}",
        body=render_to_string("emails/reminder.txt", context),
        to=[client.email],
        headers={"Message-ID": reminder_message_id(delivery)},
    )
    message.attach_alternative(render_to_string("emails/reminder.html", context), "text/html")
    message.attach(
        "appointment.ics",
        ical_for(
            [appointment],
            name=appointment.practice.name,
            summary=lambda a: f"Appointment with {a.clinician.get_full_name()}",
        ),
        "text/calendar",
    )
    message.send()


def sms_text(appointment: Appointment, link: str) -> str:
    """One SMS segment: when, and the short link. The practice name gives way if needed."""
    tz = zoneinfo.ZoneInfo(appointment.client.effective_timezone)
    when = appointment.starts_at.astimezone(tz)
    rest = f": appointment {when:%a %d %b %H:%M}. Confirm/cancel: {link}"
    name = appointment.practice.name[: max(0, 160 - len(rest))]
    return f"{name}{rest}"


def _sms(appointment: Appointment) -> None:
    # The short link opens the confirm page, which links to cancel and reschedule too.
    link = short_link(client_link_urls(appointment)["confirm"], expires_at=appointment.starts_at)
    get_sms_backend().send(
        SmsMessage(to=appointment.client.phone, body=sms_text(appointment, link))
    )


def reminder_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Send one reminder at most once. Returns the row's final state.

    The conditional UPDATE is the claim: of two workers given the same id, one changes the
    row and sends; the other changes nothing and stops.
    """
    now = now or timezone.now()
    rows = ReminderDelivery.objects.all()
    if not claims.claim(rows, delivery_id, now=now):
        return "not-claimed"
    delivery = ReminderDelivery.objects.get(pk=delivery_id)
    appointment = Appointment.objects.select_related(
        "client__practice", "clinician", "practice"
    ).get(pk=delivery.appointment_id)
    if not appointment.is_open or appointment.starts_at != delivery.session_start:
        return _finish(delivery, State.SKIPPED, "the session changed before sending")
    if appointment.starts_at <= now:
        return _finish(delivery, State.SKIPPED, "the session began before sending")

    def send() -> None:
        if delivery.channel == ReminderDelivery.Channel.EMAIL:
            _email(delivery, appointment)
        else:
            _sms(appointment)

    return claims.send_claimed(rows, delivery, send, max_attempts=MAX_ATTEMPTS, stamp=_finished_at)


def _finished_at(state: str) -> dict[str, Any]:
    return {"finished_at": timezone.now()}


def _finish(delivery: ReminderDelivery, state: str, detail: str) -> str:
    return claims.finish(
        ReminderDelivery.objects.all(), delivery.pk, state, detail, **_finished_at(state)
    )


def reminders_sweep(*, now: datetime) -> list[int]:
    """Plan, tidy, and return the ids due now (the caller sends or enqueues them)."""
    reminders_plan(now=now)
    reminders_skip(now=now)
    return reminders_due(now=now)
