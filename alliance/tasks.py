"""Thin Celery wrappers: they take ids or a time, call a service, and own their retry policy."""

from __future__ import annotations

from datetime import datetime
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from alliance import measures, safety
from alliance.sweeps import rupture_sweep
from scheduling.sms import SmsError


def _now(at: str | None) -> datetime:
    return datetime.fromisoformat(at) if at else timezone.now()


@shared_task(acks_late=True)
def sweep_ruptures(at: str | None = None) -> int:
    return len(rupture_sweep(now=_now(at)))


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=8
)
def send_safety_alert(alert_id: int) -> str:
    return safety.safety_alert_send(alert_id=alert_id)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError, SmsError),
    retry_backoff=True,
    max_retries=measures.MAX_ATTEMPTS,
)
def send_measure_request(request_id: int) -> str:
    return measures.measure_request_send(request_id=request_id)


@shared_task(acks_late=True)
def sweep_measures(at: str | None = None) -> int:
    """Plan and send measure links, and send any safety alert still pending."""
    now = _now(at)
    due = measures.measure_requests_sweep(now=now)
    for request_id in due:
        send_measure_request.delay(request_id)
    alerts = safety.safety_alerts_due(now=now)
    for alert_id in alerts:
        send_safety_alert.delay(alert_id)
    return len(due) + len(alerts)
