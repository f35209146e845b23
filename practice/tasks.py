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


# No autoretry: a run that fails records why on its row, and the admin uploads again. A worker
# that dies mid-import has its message redelivered (acks_late, reject_on_worker_lost), and the
# run is taken up again; its transaction had written nothing.
@shared_task(acks_late=True)
def run_import(import_run_id: int) -> str:
    # practice.imports is a top-layer module (it composes scheduling and alliance). Loading it
    # only when the task runs keeps practice's own modules from importing the higher apps.
    from practice.imports import import_run_process

    return import_run_process(import_run_id=import_run_id)
