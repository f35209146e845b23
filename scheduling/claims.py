"""Send-at-most-once for rows that stand for one outgoing message.

Reminders, measure links and safety alerts share one life: a row is ``pending``; a worker
claims it with a conditional UPDATE (``pending`` → ``sending``), sends, and records the
outcome. Of two workers given the same id, one changes the row and sends, the other changes
nothing and stops. A claim left ``sending`` for ``CLAIM_TIMEOUT`` belongs to a worker that
died mid-send, and is put back. The rows need ``state``, ``claimed_at``, ``attempts`` and
``detail`` fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.db.models import F

from scheduling.sms import SmsError

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
CLAIM_TIMEOUT = timedelta(minutes=5)


def claim(rows: models.QuerySet[Any], pk: int, *, now: datetime) -> bool:
    """Take the row for sending; False if it was not pending (sent, or someone else's)."""
    return bool(
        rows.filter(pk=pk, state=PENDING).update(
            state=SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def stale_claims(rows: models.QuerySet[Any], *, now: datetime) -> models.QuerySet[Any]:
    """Rows whose worker died mid-send."""
    return rows.filter(state=SENDING, claimed_at__lt=now - CLAIM_TIMEOUT)


def release(rows: models.QuerySet[Any], pk: int, detail: str) -> None:
    """Give the claim back, so a retry or the next sweep sends it."""
    rows.filter(pk=pk, state=SENDING).update(state=PENDING, claimed_at=None, detail=detail)


def finish(rows: models.QuerySet[Any], pk: int, state: str, detail: str, **fields: Any) -> str:
    """Record the outcome of our own claim. Returns the state."""
    rows.filter(pk=pk, state=SENDING).update(state=state, detail=detail, **fields)
    return state


def send_claimed(
    rows: models.QuerySet[Any],
    row: Any,
    send: Callable[[], object],
    *,
    max_attempts: int,
    stamp: Callable[[str], dict[str, Any]],
) -> str:
    """Send a claimed row and record sent, failed or (for a retry) pending again.

    An SMS the provider may have taken is failed, never retried: a retry could text the
    client twice. Other errors (SMTP down) release the claim and re-raise for the task's
    retry, until ``max_attempts``. ``stamp(state)`` gives the extra fields to set with a
    final state, e.g. ``{"sent_at": now}``.
    """
    try:
        send()
    except SmsError as exc:
        if exc.may_have_sent or row.attempts >= max_attempts:
            return finish(rows, row.pk, FAILED, str(exc), **stamp(FAILED))
        release(rows, row.pk, str(exc))
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:500]
        if row.attempts >= max_attempts:
            finish(rows, row.pk, FAILED, detail, **stamp(FAILED))
        else:
            release(rows, row.pk, detail)
        raise
    return finish(rows, row.pk, SENT, "", **stamp(SENT))
