"""Thin Celery wrappers: they take ids, call a service, and own their retry policy."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from scheduling.services import booking_notice_send


@shared_task(
    acks_late=True, autoretry_for=(SMTPException, OSError), retry_backoff=True, max_retries=6
)
def send_booking_notice(appointment_ids: list[int]) -> bool:
    return booking_notice_send(appointment_ids=appointment_ids)
