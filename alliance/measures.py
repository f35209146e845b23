"""Measure links: session feedback after each attended session, the outcome measure before
sessions, by email or SMS through the same machinery as reminders.

Life of a MeasureRequest, unique per (appointment, instrument):

1. ``measure_requests_plan`` inserts the rows that fell due, set-based: feedback for
   sessions marked attended within the link's lifetime, outcome measures for sessions
   starting within the practice's lead time whose number in the episode matches the
   episode's plan ("every N sessions"). Clients with no usable channel (no address, or
   opted out) get a skipped row with the reason; their clinician can give it in session.
2. ``measure_requests_due`` puts back rows whose worker died mid-send and lists the pending
   ones (SMS waits out the client's quiet hours).
3. ``measure_request_send`` claims one row with a conditional UPDATE and sends the link.

A link is signed (request id and a random nonce), expires (feedback: the practice's hours
after sending, 72 by default; outcome: when the session begins) and works once: the
response's one-to-one reference to its request is the database's guarantee.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alliance.models import AlliancePolicy, Instrument, MeasureRequest
from scheduling import claims
from scheduling.models import Status as AppointmentStatus
from scheduling.reminders import short_link
from scheduling.sms import SmsMessage, get_sms_backend, is_quiet_time

State = MeasureRequest.State
Purpose = MeasureRequest.Purpose
SALT = "alliance.measure-link"
FEEDBACK_CODE = "session-feedback"
DEFAULT_OUTCOME_CODE = "phq-9"
MAX_ATTEMPTS = 5

# The channel: email when the practice sends email and the client has an address and did
# not opt out, else SMS on the same terms, else none (the row is skipped with the reason).
CHANNEL_SQL = """
    CASE WHEN 'email' = ANY(p.reminder_channels) AND cl.email <> '' AND cl.email_reminders
              THEN 'email'
         WHEN 'sms' = ANY(p.reminder_channels) AND cl.phone <> '' AND cl.sms_reminders
              THEN 'sms'
         ELSE '' END
"""

FEEDBACK_PLAN_SQL = """
INSERT INTO alliance_measurerequest
    (purpose, instrument_id, client_id, episode_id, appointment_id, channel, state, detail,
     nonce, due_at, expires_at, attempts, created_at)
SELECT 'feedback', %(instrument)s, a.client_id, a.episode_id, a.id, ch.channel,
    CASE WHEN ch.channel = '' THEN 'skipped' ELSE 'pending' END,
    CASE WHEN ch.channel = '' THEN 'no usable channel: no address, or the client opted out'
         ELSE '' END,
    replace(gen_random_uuid()::text, '-', ''),
    a.status_changed_at,
    a.status_changed_at + make_interval(hours => COALESCE(ap.feedback_link_hours, 72)),
    0, %(now)s
FROM scheduling_appointment a
JOIN practice_practice p ON p.id = a.practice_id
JOIN practice_client cl ON cl.id = a.client_id
LEFT JOIN alliance_alliancepolicy ap ON ap.practice_id = p.id
LEFT JOIN alliance_measurementplan mp ON mp.episode_id = a.episode_id
CROSS JOIN LATERAL (SELECT __CHANNEL__ AS channel) ch
WHERE a.status = 'attended'
  AND a.status_changed_at <= %(now)s
  AND a.status_changed_at > %(now)s - make_interval(hours => COALESCE(ap.feedback_link_hours, 72))
  AND COALESCE(mp.session_feedback, true)
  -- Given in session already: no link needed.
  AND NOT EXISTS (SELECT 1 FROM alliance_response r
                  WHERE r.appointment_id = a.id AND r.instrument_id = %(instrument)s)
ON CONFLICT (appointment_id, instrument_id) DO NOTHING
""".replace("__CHANNEL__", CHANNEL_SQL)

# Outcome links for sessions starting within the lead time. The session's number in the
# episode is 1 + the sessions attended before it; "every N" sends before sessions 1, 1+N…
OUTCOME_PLAN_SQL = """
INSERT INTO alliance_measurerequest
    (purpose, instrument_id, client_id, episode_id, appointment_id, channel, state, detail,
     nonce, due_at, expires_at, attempts, created_at)
SELECT 'outcome', plan.instrument_id, a.client_id, a.episode_id, a.id, ch.channel,
    CASE WHEN ch.channel = '' THEN 'skipped' ELSE 'pending' END,
    CASE WHEN ch.channel = '' THEN 'no usable channel: no address, or the client opted out'
         ELSE '' END,
    replace(gen_random_uuid()::text, '-', ''),
    %(now)s, a.starts_at, 0, %(now)s
FROM scheduling_appointment a
JOIN practice_episode e ON e.id = a.episode_id
JOIN practice_practice p ON p.id = a.practice_id
JOIN practice_client cl ON cl.id = a.client_id
LEFT JOIN alliance_alliancepolicy ap ON ap.practice_id = p.id
LEFT JOIN alliance_measurementplan mp ON mp.episode_id = a.episode_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN mp.id IS NULL THEN %(default_instrument)s
                ELSE mp.outcome_instrument_id END AS instrument_id,
           COALESCE(mp.outcome_every_n_sessions, 1) AS every_n
) plan
CROSS JOIN LATERAL (SELECT __CHANNEL__ AS channel) ch
WHERE a.status IN ('scheduled', 'confirmed')
  AND e.closed_on IS NULL
  AND plan.instrument_id IS NOT NULL
  AND a.starts_at > %(now)s
  AND a.starts_at - make_interval(hours => COALESCE(ap.outcome_lead_hours, 24)) <= %(now)s
  AND (SELECT count(*) FROM scheduling_appointment prior
       WHERE prior.episode_id = a.episode_id AND prior.status = 'attended'
         AND prior.starts_at < a.starts_at) %% plan.every_n = 0
ON CONFLICT (appointment_id, instrument_id) DO NOTHING
""".replace("__CHANNEL__", CHANNEL_SQL)

# Outcome links whose session was cancelled or moved before the link went out.
SKIP_SQL = """
UPDATE alliance_measurerequest m
SET state = 'skipped', detail = 'the session was cancelled, moved or began before sending'
FROM scheduling_appointment a
WHERE a.id = m.appointment_id AND m.state = 'pending' AND m.purpose = 'outcome'
  AND (a.status NOT IN ('scheduled', 'confirmed') OR a.starts_at <> m.expires_at
       OR a.starts_at <= %(now)s)
"""

# A session moved while still ahead: an unsent outcome link is dropped, so the plan below
# makes a new one for the new time; a sent, unanswered one keeps working until the new start.
MOVED_DROP_SQL = """
DELETE FROM alliance_measurerequest m
USING scheduling_appointment a
WHERE a.id = m.appointment_id AND m.purpose = 'outcome' AND m.state = 'pending'
  AND a.status IN ('scheduled', 'confirmed') AND a.starts_at > %(now)s
  AND a.starts_at <> m.expires_at
"""
MOVED_EXTEND_SQL = """
UPDATE alliance_measurerequest m
SET expires_at = a.starts_at
FROM scheduling_appointment a
WHERE a.id = m.appointment_id AND m.purpose = 'outcome' AND m.state = 'sent'
  AND a.status IN ('scheduled', 'confirmed') AND a.starts_at > %(now)s
  AND a.starts_at <> m.expires_at
  AND NOT EXISTS (SELECT 1 FROM alliance_response r WHERE r.request_id = m.id)
"""

# Feedback links whose session was corrected from attended (to a no-show, say) before the
# link went out: "how was your session?" must not reach a client who did not come.
SKIP_FEEDBACK_SQL = """
UPDATE alliance_measurerequest m
SET state = 'skipped', detail = 'the session is no longer marked attended'
FROM scheduling_appointment a
WHERE a.id = m.appointment_id AND m.state = 'pending' AND m.purpose = 'feedback'
  AND a.status <> 'attended'
"""


def _instrument_id(code: str) -> int | None:
    instrument = (
        Instrument.objects.shipped().active().filter(code=code).order_by("-version").first()
    )
    return instrument.pk if instrument else None


def measure_requests_plan(*, now: datetime) -> int:
    planned = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(MOVED_DROP_SQL, {"now": now})
        cursor.execute(MOVED_EXTEND_SQL, {"now": now})
        feedback = _instrument_id(FEEDBACK_CODE)
        if feedback is not None:
            cursor.execute(FEEDBACK_PLAN_SQL, {"instrument": feedback, "now": now})
            planned += int(cursor.rowcount)
        cursor.execute(
            OUTCOME_PLAN_SQL,
            {"default_instrument": _instrument_id(DEFAULT_OUTCOME_CODE), "now": now},
        )
        planned += int(cursor.rowcount)
        cursor.execute(SKIP_SQL, {"now": now})
        cursor.execute(SKIP_FEEDBACK_SQL)
    return planned


def measure_requests_due(*, now: datetime) -> list[int]:
    """Pending links to send now, after putting back rows whose worker died mid-send."""
    claims.stale_claims(MeasureRequest.objects.all(), now=now).update(
        state=State.PENDING, claimed_at=None
    )
    due = []
    for request in (
        MeasureRequest.objects.filter(state=State.PENDING, due_at__lte=now)
        .select_related("client__practice")
        .order_by("due_at", "pk")
    ):
        if request.channel == "sms" and _quiet(request, now):
            continue
        due.append(request.pk)
    return due


def _quiet(request: MeasureRequest, now: datetime) -> bool:
    practice = request.client.practice
    local = now.astimezone(zoneinfo.ZoneInfo(request.client.effective_timezone)).time()
    return is_quiet_time(
        local=local, starts=practice.sms_quiet_starts, ends=practice.sms_quiet_ends
    )


def measure_requests_sweep(*, now: datetime) -> list[int]:
    measure_requests_plan(now=now)
    return measure_requests_due(now=now)


# Links


def measure_link_token(request: MeasureRequest) -> str:
    return signing.dumps({"q": request.pk, "n": request.nonce}, salt=SALT, compress=True)


def measure_link_url(request: MeasureRequest) -> str:
    return f"{settings.SITE_URL}{reverse('measure_link', args=[measure_link_token(request)])}"


class MeasureLinkRefused(ValidationError):
    """A link that must not be answered; carries a reason a client can read.

    A ValidationError, so that a caller refusing bad input in general (a second answer to
    the same link, an expired one) refuses this too and shows the reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="link_refused")
        self.reason = reason


def measure_link_read(token: str, *, now: datetime, for_update: bool = False) -> MeasureRequest:
    """The request a link stands for, if it may still be answered. Raises MeasureLinkRefused."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise MeasureLinkRefused(
            "This link is not valid. It may have been copied incompletely."
        ) from exc
    pk = payload.get("q") if isinstance(payload, dict) else None
    rows = MeasureRequest.objects.select_related(
        "instrument", "client__practice", "episode", "appointment__clinician"
    )
    if for_update:
        rows = rows.select_for_update(of=("self",))
    request = rows.filter(pk=pk).first() if isinstance(pk, int) else None
    if request is None or payload.get("n") != request.nonce:
        raise MeasureLinkRefused("This link is not valid. It may have been copied incompletely.")
    if MeasureRequest.objects.filter(pk=request.pk, response__isnull=False).exists():
        raise MeasureLinkRefused("This questionnaire was already answered. Each link works once.")
    if request.state != State.SENT:
        raise MeasureLinkRefused("This link is not active.")
    if request.expires_at <= now:
        raise MeasureLinkRefused(
            "This link has expired. Your clinician can give you the questionnaire in session."
        )
    return request


# Sending


def measure_request_message_id(request: MeasureRequest) -> str:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<measure-{request.pk}@{host}>"


def _email(request: MeasureRequest, link: str, hours: int) -> None:
    context: dict[str, Any] = {
        "client": request.client,
        "clinician": request.appointment.clinician,
        "practice": request.client.practice,
        "purpose": request.purpose,
        "link": link,
        "hours": hours,
    }
    subject = (
        "How was your session?"
        if request.purpose == Purpose.FEEDBACK
        else "A short questionnaire before your session"
    )
    message = EmailMultiAlternatives(
        subject=f"{subject} ({request.client.practice.name})",
        body=render_to_string("emails/measure_request.txt", context),
        to=[request.client.email],
        headers={"Message-ID": measure_request_message_id(request)},
    )
    message.attach_alternative(
        render_to_string("emails/measure_request.html", context), "text/html"
    )
    message.send()


def sms_text(request: MeasureRequest, link: str) -> str:
    """One segment, nothing clinical: who asks, and the link."""
    ask = "How was your session?" if request.purpose == Purpose.FEEDBACK else "Before your session:"
    rest = f": {ask} {link}"
    name = request.client.practice.name[: max(0, 160 - len(rest))]
    return f"{name}{rest}"


def measure_request_send(*, request_id: int, now: datetime | None = None) -> str:
    """Send one link at most once. Returns the row's final state."""
    now = now or timezone.now()
    if not claims.claim(MeasureRequest.objects.all(), request_id, now=now):
        return "not-claimed"
    request = MeasureRequest.objects.select_related(
        "client__practice", "appointment__clinician"
    ).get(pk=request_id)
    policy = AlliancePolicy.for_practice(request.client.practice)
    if request.purpose == Purpose.FEEDBACK:
        if request.appointment.status != AppointmentStatus.ATTENDED:
            return _finish(request, State.SKIPPED, "the session is no longer marked attended")
        # The 72 hours run from when the client can first see the link.
        expires_at = now + timedelta(hours=policy.feedback_link_hours)
    else:
        appointment = request.appointment
        if not appointment.is_open or appointment.starts_at <= now:
            return _finish(request, State.SKIPPED, "the session was cancelled or began")
        expires_at = appointment.starts_at
    # The link works only once the row says sent, so its expiry can be set before sending.
    MeasureRequest.objects.filter(pk=request.pk).update(expires_at=expires_at)
    request.expires_at = expires_at
    link = measure_link_url(request)

    def send() -> None:
        if request.channel == "email":
            _email(request, link, policy.feedback_link_hours)
        else:
            code = short_link(link, expires_at=expires_at)
            get_sms_backend().send(
                SmsMessage(to=request.client.phone, body=sms_text(request, code))
            )

    return claims.send_claimed(
        MeasureRequest.objects.all(), request, send, max_attempts=MAX_ATTEMPTS, stamp=_sent_at
    )


def _sent_at(state: str) -> dict[str, Any]:
    return {"sent_at": timezone.now()} if state == State.SENT else {}


def _finish(request: MeasureRequest, state: str, detail: str) -> str:
    return claims.finish(MeasureRequest.objects.all(), request.pk, state, detail)
