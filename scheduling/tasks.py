"""Thin Celery wrappers: they take ids, call a service, and own their retry policy.

Periodic sweeps (scheduled by beat, see CELERY_BEAT_SCHEDULE) find due work with one query
and enqueue one task per row; each task claims its row in the database before acting.
"""

from __future__ import annotations

from datetime import datetime
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from scheduling import agendas, noshows, reminders
from scheduling.services import booking_notice_send
from scheduling.sms import SmsError
from scheduling.workload import workload_sweep


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_booking_notice(appointment_ids: list[int]) -> bool:
    return booking_notice_send(appointment_ids=appointment_ids)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError, SmsError),
    retry_backoff=True,
    max_retries=reminders.MAX_ATTEMPTS,
)
def send_reminder(delivery_id: int) -> str:
    return reminders.reminder_send(delivery_id=delivery_id)


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_agenda(notice_id: int) -> bool:
    return agendas.agenda_send(notice_id=notice_id)


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_heads_up(notice_id: int) -> bool:
    return agendas.heads_up_send(notice_id=notice_id)


def _now(at: str | None) -> datetime:
    return datetime.fromisoformat(at) if at else timezone.now()


@shared_task(acks_late=True)
def sweep_reminders(at: str | None = None) -> int:
    due = reminders.reminders_sweep(now=_now(at))
    for delivery_id in due:
        send_reminder.delay(delivery_id)
    return len(due)


@shared_task(acks_late=True)
def sweep_agendas(at: str | None = None) -> int:
    now = _now(at)
    agenda_ids = agendas.agenda_sweep(now=now)
    for notice_id in agenda_ids:
        send_agenda.delay(notice_id)
    heads_up_ids = agendas.heads_up_sweep(now=now)
    for notice_id in heads_up_ids:
        send_heads_up.delay(notice_id)
    return len(agenda_ids) + len(heads_up_ids)


@shared_task(acks_late=True)
def sweep_no_shows(at: str | None = None) -> int:
    return len(noshows.noshow_sweep(now=_now(at)))


@shared_task(acks_late=True)
def sweep_workload(at: str | None = None) -> int:
    opened, _resolved = workload_sweep(now=_now(at))
    return int(opened)
