"""Reminders through a real worker and Redis: a SIGKILL mid-batch, and Redis down."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from practice.celery import app as celery_app
from practice.models import Client, Episode, Practice
from scheduling import reminders
from scheduling.models import Appointment, ReminderDelivery
from scheduling.services import Slot, appointment_book
from scheduling.tasks import send_reminder, sweep_reminders
from tests.factories import PracticeFactory, staff
from tests.worker.conftest import RedisServer, WorkerProcess, use_broker

pytestmark = pytest.mark.worker
BATCH = 300


def message_ids(folder: Path) -> list[str]:
    """Every message the file backend wrote (it may put several messages in one file)."""
    found = []
    for path in folder.iterdir():
        found += re.findall(r"^Message-ID: (\S+)$", path.read_text(), re.MULTILINE)
    return found


def email_only(practice: Practice, offset: timedelta) -> None:
    practice.reminder_offsets = [offset]
    practice.reminder_channels = ["email"]
    practice.save()


def test_a_sigkilled_worker_loses_and_duplicates_no_reminder(
    celery_worker_process: WorkerProcess,
) -> None:
    practice = PracticeFactory.create()
    email_only(practice, timedelta(hours=2))
    clinician = staff(practice, "clinician")
    now = timezone.now()
    clients = Client.objects.bulk_create(
        Client(practice=practice, first_name="C", last_name=str(n), email=f"c{n}@example.org")
        for n in range(BATCH)
    )
    episodes = Episode.objects.bulk_create(Episode(client=c, clinician=clinician) for c in clients)
    start = now + timedelta(hours=1)
    Appointment.objects.bulk_create(
        Appointment(
            practice=practice,
            clinician=clinician,
            client=client,
            episode=episode,
            # Short, back-to-back slots: all start within the hour, so all are due now.
            starts_at=start + timedelta(seconds=10 * n),
            ends_at=start + timedelta(seconds=10 * (n + 1)),
        )
        for n, (client, episode) in enumerate(zip(clients, episodes, strict=True))
    )
    Appointment.objects.update(created_at=now - timedelta(days=1))

    due = reminders.reminders_sweep(now=now)
    assert len(due) == BATCH
    for delivery_id in due:
        send_reminder.delay(delivery_id)
    mail = celery_worker_process.mail_dir
    celery_worker_process.wait_for(lambda: len(message_ids(mail)) >= BATCH // 5)
    celery_worker_process.kill()
    killed_at = len(message_ids(mail))
    assert killed_at < BATCH, "the worker finished before it could be killed"

    celery_worker_process.start()
    # What heals is the sweep, not the queue. Beat's sweep runs in a worker, as here, a few
    # minutes on, when the dead worker's claims are stale.
    later = now + reminders.CLAIM_TIMEOUT + timedelta(minutes=1)
    sweep_reminders.delay(later.isoformat())
    celery_worker_process.wait_for(
        lambda: ReminderDelivery.objects.filter(state="sent").count() == BATCH, timeout=120
    )
    ids = message_ids(mail)
    assert len(set(ids)) == BATCH, "a reminder was lost"
    assert len(ids) == BATCH, "a reminder was sent twice"


def test_booking_works_while_redis_is_down_and_reminders_follow_on_the_next_sweep(
    transactional_db: None, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path)
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous = (
        celery_app.conf.broker_url,
        celery_app.conf.task_always_eager,
        celery_app.conf.task_default_queue,
    )
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    use_broker(redis.url)  # not started: Redis is down
    worker = WorkerProcess(queue, mail_dir, tmp_path / "worker.log", redis_url=redis.url)
    try:
        practice = PracticeFactory.create()
        email_only(practice, timedelta(minutes=30))
        clinician = staff(practice, "clinician")
        client = Client.objects.create(
            practice=practice, first_name="Rae", last_name="Down", email="rae@example.org"
        )
        Episode.objects.create(client=client, clinician=clinician)
        start = timezone.now() + timedelta(hours=1)
        appointment = appointment_book(
            clinician=clinician,
            client=client,
            slot=Slot(starts_at=start, ends_at=start + timedelta(minutes=50)),
            actor=clinician,
        )
        assert Appointment.objects.filter(pk=appointment.pk).exists()

        redis.start()
        worker.start()
        due = reminders.reminders_sweep(now=start - timedelta(minutes=29))
        assert len(due) == 1
        for delivery_id in due:
            send_reminder.delay(delivery_id)
        worker.wait_for(lambda: ReminderDelivery.objects.filter(state="sent").count() == 1)
        assert len(message_ids(mail_dir)) == 1
    finally:
        worker.stop()
        redis.stop()
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous[1:]
        use_broker(previous[0])
