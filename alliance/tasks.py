"""Thin Celery wrappers: they take ids or a time, call a service, and own their retry policy."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from alliance.sweeps import rupture_sweep


@shared_task(acks_late=True)
def sweep_ruptures(at: str | None = None) -> int:
    return len(rupture_sweep(now=datetime.fromisoformat(at) if at else timezone.now()))
