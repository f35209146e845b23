"""Thin Celery wrappers: they take ids, call a service, and own their retry policy."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from practice.services import invitation_send


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    max_retries=6,
)
def send_invitation(invitation_id: int) -> bool:
    return invitation_send(invitation_id=invitation_id)
