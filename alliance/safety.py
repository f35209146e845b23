"""Safety alerts: when a safety item is answered, the clinician and their supervisor hear at
once by email, and the flag tops every queue.

One SafetyAlert row per (flag, recipient), inserted in the same transaction as the flag.
The task is enqueued after commit; the sweep sends anything still pending (Redis was down,
a worker died), so an alert is never lost to a broker outage. A worker claims the row by a
conditional UPDATE before sending, so a duplicated task does not send twice.

The email says only that a safety flag needs review and links to it: no client name, no
answer, nothing clinical. The details are behind sign-in and MFA.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alliance.models import RuptureFlag, SafetyAlert
from practice.models import SupervisionPairing
from practice.queueing import enqueue_on_commit
from scheduling import claims

State = SafetyAlert.State
MAX_ATTEMPTS = 8
# An alert is for something answered lately. A safety answer found in imported history (or
# after a long outage) is raised as a flag and tops every queue, but emailing "at once" about
# an answer from last year would only alarm: the queue is where it is seen.
ALERT_WINDOW = timedelta(days=7)


def safety_alerts_plan(*, flag_ids: list[int], now: datetime) -> list[int]:
    """Create the alert rows for the safety flags among `flag_ids`; enqueue them on commit."""
    flags = [
        flag
        for flag in RuptureFlag.objects.filter(
            pk__in=flag_ids, rule=RuptureFlag.Rule.SAFETY
        ).select_related("clinician", "practice")
        if _answered_lately(flag, now)
    ]
    if not flags:
        return []
    # "Current" on each practice's calendar day: a pairing that starts or ends today must
    # not miss the alert because UTC is already tomorrow.
    supervisors: dict[int, int] = {}
    for practice in {flag.practice for flag in flags}:
        today = timezone.localdate(now, practice.tz)
        supervisors.update(
            SupervisionPairing.objects.current(on=today)
            .filter(supervisee_id__in={f.clinician_id for f in flags if f.practice == practice})
            .values_list("supervisee_id", "supervisor_id")
        )
    rows = []
    for flag in flags:
        rows.append(SafetyAlert(flag=flag, recipient_id=flag.clinician_id, role="clinician"))
        supervisor = supervisors.get(flag.clinician_id)
        if supervisor is not None:
            rows.append(SafetyAlert(flag=flag, recipient_id=supervisor, role="supervisor"))
    SafetyAlert.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        SafetyAlert.objects.filter(flag__in=flags, state=State.PENDING).values_list("pk", flat=True)
    )
    from alliance.tasks import send_safety_alert

    for pk in ids:
        enqueue_on_commit(send_safety_alert, pk)
    return ids


def _answered_lately(flag: RuptureFlag, now: datetime) -> bool:
    completed = flag.evidence.get("completed_at")
    try:
        answered = datetime.fromisoformat(completed) if isinstance(completed, str) else None
    except ValueError:
        answered = None
    return answered is None or now - answered <= ALERT_WINDOW


def safety_alerts_due(*, now: datetime) -> list[int]:
    """Pending alerts, after putting back the ones whose worker died mid-send."""
    claims.stale_claims(SafetyAlert.objects.all(), now=now).update(
        state=State.PENDING, claimed_at=None
    )
    return list(
        SafetyAlert.objects.filter(state=State.PENDING)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


def safety_alert_message_id(alert: SafetyAlert) -> str:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<safety-{alert.pk}@{host}>"


def safety_alert_send(*, alert_id: int, now: datetime | None = None) -> str:
    """Send one alert at most once. Returns the row's final state."""
    now = now or timezone.now()
    if not claims.claim(SafetyAlert.objects.all(), alert_id, now=now):
        return "not-claimed"
    alert = SafetyAlert.objects.select_related("recipient", "flag").get(pk=alert_id)
    context: dict[str, Any] = {
        "recipient": alert.recipient,
        "role": alert.role,
        "url": f"{settings.SITE_URL}{reverse('flag_detail', args=[alert.flag_id])}",
        "raised_at": alert.flag.raised_at,
    }
    message = EmailMultiAlternatives(
        subject="Safety flag: please review today",
        body=render_to_string("emails/safety_alert.txt", context),
        to=[alert.recipient.email],
        headers={"Message-ID": safety_alert_message_id(alert)},
    )
    message.attach_alternative(render_to_string("emails/safety_alert.html", context), "text/html")
    return claims.send_claimed(
        SafetyAlert.objects.all(),
        alert,
        message.send,
        max_attempts=MAX_ATTEMPTS,
        stamp=lambda state: {"sent_at": timezone.now()} if state == State.SENT else {},
    )
