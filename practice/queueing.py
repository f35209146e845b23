"""Enqueue Celery tasks only after the transaction that made their work commits."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task[Any, Any], *args: Any) -> None:
    """Send ``task`` with ``args`` once the current transaction commits.

    A broker outage must not turn a committed write into an error page: the work is already
    recorded in the database, and the periodic sweeps (or a manual resend) pick it up.
    """

    def send() -> None:
        try:
            task.delay(*args)
        except OperationalError:
            logger.warning("Broker unavailable; %s%r left for the next sweep", task.name, args)

    transaction.on_commit(send)
