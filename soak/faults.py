"""Reminders through real workers while they are SIGKILLed every few seconds and Redis is
restarted once; then every reminder row is matched with the mail the workers wrote.

Beat is simulated by publishing the sweep task every few seconds, as beat would. Its clock
is the one question: a claim counts as stale after CLAIM_TIMEOUT (5 minutes), and the soak
cannot wait 5 minutes per kill. So each sweep is given a time of (start of the oldest worker
still alive) + CLAIM_TIMEOUT. Every claim older than that oldest start belongs to a worker
that has been killed, which is what a real sweep 5 minutes on would find stale; no live
worker's claim can look stale, which is what the 5 minutes are there to guarantee.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from practice.celery import app as celery_app
from practice.models import Client, Episode, Membership, Practice, User
from scheduling import reminders
from scheduling.models import Appointment, ReminderDelivery
from scheduling.tasks import send_reminder, sweep_reminders
from soak.procs import Process, RedisServer, celery_worker, database_url

PER_CLINICIAN = 200  # 15-second sessions: 200 of them fit in 50 minutes
MESSAGE_ID = re.compile(r"^Message-ID: <reminder-(\d+)@[^>]*>$", re.MULTILINE)


def say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def mail_message_ids(folder: Path) -> list[int]:
    """The reminder row id of every message the file backend wrote, repeats included."""
    found: list[int] = []
    for path in folder.iterdir():
        found += [int(pk) for pk in MESSAGE_ID.findall(path.read_text(errors="replace"))]
    return found


def _use_broker(url: str, queue: str) -> None:
    celery_app.conf.broker_url = url  # type: ignore[misc]
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    celery_app._after_fork()  # type: ignore[attr-defined]  # drops cached connection pools


def _seed(count: int, now: datetime) -> None:
    practice = Practice.objects.create(
        name="Fault practice",
        slug="faults",
        timezone="Europe/Berlin",
        reminder_offsets=[timedelta(hours=2)],
        reminder_channels=["email"],
    )
    start = now + timedelta(hours=1)
    for n in range(math.ceil(count / PER_CLINICIAN)):
        clinician = User.objects.create(email=f"faults{n}@soak.example")
        Membership.objects.create(user=clinician, practice=practice, is_clinician=True)
        size = min(PER_CLINICIAN, count - n * PER_CLINICIAN)
        clients = Client.objects.bulk_create(
            Client(
                practice=practice, first_name="F", last_name=f"{n}-{c}", email=f"f{n}-{c}@x.example"
            )
            for c in range(size)
        )
        episodes = Episode.objects.bulk_create(
            Episode(client=c, clinician=clinician) for c in clients
        )
        Appointment.objects.bulk_create(
            Appointment(
                practice=practice,
                clinician=clinician,
                client=client,
                episode=episode,
                # Back-to-back and all within the hour: the 2-hour reminder is due for all.
                starts_at=start + timedelta(seconds=15 * c),
                ends_at=start + timedelta(seconds=15 * (c + 1)),
            )
            for c, (client, episode) in enumerate(zip(clients, episodes, strict=True))
        )
    # Booked yesterday, so that the reminder fell due after the booking.
    Appointment.objects.update(created_at=now - timedelta(days=1))


def _states() -> dict[str, int]:
    rows = ReminderDelivery.objects.values("state").annotate(n=Count("pk")).order_by()
    return {row["state"]: row["n"] for row in rows}


def run_faults(
    *,
    count: int,
    workers: int,
    kill_every: float,
    sweep_every: float,
    time_limit: float,
    folder: Path,
) -> dict[str, Any]:
    mail = folder / "mail"
    mail.mkdir()
    (folder / "redis").mkdir()
    redis = RedisServer(folder / "redis", folder / "redis.log")
    redis.start()
    queue = f"soak-{uuid.uuid4().hex[:10]}"
    previous = (
        celery_app.conf.broker_url,
        celery_app.conf.task_always_eager,
        celery_app.conf.task_default_queue,
    )
    _use_broker(redis.url, queue)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "practice.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": redis.url,
        "EMAIL_URL": f"filemail://{mail}",
        "CONN_MAX_AGE": "60",  # stopped before the database is dropped
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # the sweep's sends stay on this queue
        "SITE_URL": settings.SITE_URL,
    }
    pool = [
        celery_worker(
            name=f"soak-fault{n}-{queue}", queue=queue, env=env,
            log=folder / f"worker{n}.log", loglevel="WARNING",
        )
        for n in range(workers)
    ]  # fmt: skip
    events: Counter[str] = Counter()
    progress: dict[str, Any] = {}
    try:
        now = timezone.now()
        began = time.monotonic()
        _seed(count, now)
        due = reminders.reminders_sweep(now=now)
        for worker in pool:
            worker.start()
        with celery_app.producer_or_acquire() as producer:
            for delivery_id in due:
                send_reminder.apply_async((delivery_id,), producer=producer)
        enqueued_in = time.monotonic() - began
        _fault_loop(
            pool, redis, count, kill_every, sweep_every, began + time_limit, events, progress
        )
        elapsed = time.monotonic() - began
    finally:
        for worker in pool:
            worker.stop()
        redis.stop()
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous[1:]
        _use_broker(str(previous[0]), str(previous[2]))
    states = _states()
    sent_ids = mail_message_ids(mail)
    rows = set(ReminderDelivery.objects.values_list("pk", flat=True))
    counted = Counter(sent_ids)
    return {
        "reminders": count,
        "planned_rows": len(rows),
        "due_at_start": len(due),
        "workers": workers,
        "seconds": round(elapsed, 1),
        "seed_and_enqueue_seconds": round(enqueued_in, 1),
        "worker_kills": events["kill"],
        "worker_unexpected_exits": events["unexpected_exit"],
        "redis_restarts": events["redis_restart"],
        "warm_restarts_after_kills": events["warm_restart"],
        **progress,
        "sweeps_published": events["sweep"],
        "sweep_publish_failures": events["sweep_failed"],
        "row_states": states,
        "messages_written": len(sent_ids),
        "duplicates": sum(n - 1 for n in counted.values() if n > 1),
        "lost": len(rows - counted.keys()),
        "messages_without_row": len(counted.keys() - rows),
        "worker_log_tail": "" if states.get("sent") == count else pool[0].tail(1500),
    }


def _fault_loop(
    pool: list[Process],
    redis: RedisServer,
    count: int,
    kill_every: float,
    sweep_every: float,
    deadline: float,
    events: Counter[str],
    progress: dict[str, Any],
) -> None:
    """Kill a worker every `kill_every` seconds (round robin, restarted at once), restart
    Redis once when half the reminders are out, and sweep every `sweep_every` seconds, until
    every row is sent. Killing stops at the deadline; the sweeps then get two minutes more.

    When the killing stops, workers that have run since before the last SIGKILL are stopped
    warmly (they finish their task) and started again, as a deploy would. Without it the
    simulated clock (see the module docstring) could never pass a claim the last killed
    worker left behind, which real time, five minutes on, would.
    """
    began = time.monotonic()
    next_kill = began + kill_every
    next_sweep = began + sweep_every
    next_poll = next_say = 0.0
    victim = 0
    sent = 0
    last_kill = 0.0
    heal_until = deadline + 120
    killing = True
    while sent < count and time.monotonic() < heal_until:
        now = time.monotonic()
        for worker in pool:
            if not worker.running:
                events["unexpected_exit"] += 1
                worker.start()
        if killing and now >= deadline:
            killing = False
            progress["sent_when_kills_stopped"] = sent
            progress["kill_phase_seconds"] = round(now - began, 1)
            for worker in pool:
                if worker.started_at <= last_kill:
                    worker.stop()
                    worker.start()
                    events["warm_restart"] += 1
        if killing and now >= next_kill:
            pool[victim].kill()
            last_kill = time.time()
            events["kill"] += 1
            pool[victim].start()
            victim = (victim + 1) % len(pool)
            next_kill = now + kill_every
        if now >= next_poll:
            sent = _states().get("sent", 0)
            next_poll = now + 1
            if not events["redis_restart"] and sent >= count // 2:
                redis.stop(timeout=10)
                time.sleep(1)  # Redis is down for a moment; publishing fails meanwhile
                redis.start()
                events["redis_restart"] += 1
        if now >= next_say:
            say(f"faults: {sent}/{count} sent, {events['kill']} kills, {now - began:.0f} s")
            next_say = now + 15
        if now >= next_sweep:
            oldest = min(worker.started_at for worker in pool)
            at = datetime.fromtimestamp(oldest, tz=UTC) + reminders.CLAIM_TIMEOUT
            try:
                sweep_reminders.delay(at.isoformat())
                events["sweep"] += 1
            except Exception:  # broker down: beat would miss this tick too
                events["sweep_failed"] += 1
            next_sweep = now + sweep_every
        time.sleep(0.1)
    progress["all_sent_after_seconds"] = (
        round(time.monotonic() - began, 1) if sent == count else None
    )
    progress.setdefault("sent_when_kills_stopped", sent)
