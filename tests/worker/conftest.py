"""A real Celery worker, in its own process, on the test database and a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from practice.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, queue: str, mail_dir: Path, log: Path) -> None:
        self.queue = queue
        self.mail_dir = mail_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": (
                f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
                f"{db['PORT'] or 5432}/{db['NAME']}"
            ),
            "REDIS_URL": settings.REDIS_URL,
            "EMAIL_URL": f"filemail://{self.mail_dir}",
            "CONN_MAX_AGE": "0",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "practice", "worker",
                "--pool", "solo", "--loglevel", "INFO", "-Q", self.queue,
                "--hostname", f"test-{self.queue}@%h", "--without-heartbeat",
                "--without-mingle", "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_for(self, condition: Callable[[], bool], *, timeout: float = 60) -> None:
        """Poll the database or the mail folder until the worker has done its part."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(
            f"worker did not finish in {timeout}s:\n{self.log.read_text()[-3000:]}"
        )


@pytest.fixture
def celery_worker_process(tmp_path: Path, transactional_db: None) -> Iterator[WorkerProcess]:
    """Tasks sent during the test go to a queue of their own, served by a real worker."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    worker = WorkerProcess(queue, mail_dir, tmp_path / "worker.log")
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
