"""End to end through Redis and a real Celery worker: measure links from the beat sweep, and
safety alerts sent at once after the response that raised them commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alliance import services
from alliance.measures import measure_link_token
from alliance.models import Instrument, MeasureRequest, SafetyAlert
from alliance.tasks import sweep_measures
from scheduling.models import Status
from tests.factories import (
    ClientFactory,
    EpisodeFactory,
    PairingFactory,
    PracticeFactory,
    book,
    staff,
)
from tests.worker.conftest import WorkerProcess

pytestmark = pytest.mark.worker


def test_beats_measure_sweep_sends_one_feedback_link_per_session(
    celery_worker_process: WorkerProcess, shipped_instruments: None
) -> None:
    practice = PracticeFactory.create()
    clinician = staff(practice, "clinician")
    client = ClientFactory.create(practice=practice, email="fb@example.org")
    EpisodeFactory.create(client=client, clinician=clinician)
    now = timezone.now()
    book(clinician, client, now - timedelta(hours=2), status=Status.ATTENDED, status_changed_at=now)

    sweep_measures.delay()
    sweep_measures.delay()  # beat ticking twice must not send twice

    def sent() -> bool:
        return MeasureRequest.objects.filter(state=MeasureRequest.State.SENT).exists()

    celery_worker_process.wait_for(sent)
    celery_worker_process.wait_for(
        lambda: (
            celery_worker_process.log.read_text().count("sweep_measures") >= 2
            and celery_worker_process.log.read_text().count(" succeeded in ") >= 3
        )
    )
    messages = [p.read_text() for p in celery_worker_process.mail_dir.iterdir()]
    assert len(messages) == 1
    assert "To: fb@example.org" in messages[0]
    assert "/m/" in messages[0]
    assert MeasureRequest.objects.count() == 1


def test_a_safety_answer_is_emailed_to_clinician_and_supervisor_by_the_worker(
    celery_worker_process: WorkerProcess, shipped_instruments: None
) -> None:
    practice = PracticeFactory.create()
    clinician = staff(practice, "clinician", email="clin@example.org")
    supervisor = staff(practice, "supervisor", email="sup@example.org")
    PairingFactory.create(practice=practice, supervisor=supervisor, supervisee=clinician)
    client = ClientFactory.create(practice=practice, email="c@example.org")
    EpisodeFactory.create(client=client, clinician=clinician)
    now = timezone.now()
    session = book(clinician, client, now + timedelta(hours=3))
    request = MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.OUTCOME,
        instrument=Instrument.objects.shipped().get(code="phq-9"),
        client=client,
        episode=session.episode,
        appointment=session,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=now,
        expires_at=session.starts_at,
    )
    answers = {**{f"phq9_{n}": 1 for n in range(1, 9)}, "phq9_9": 2}

    services.measure_link_answer(token=measure_link_token(request), answers=answers, now=now)

    celery_worker_process.wait_for(
        lambda: SafetyAlert.objects.filter(state=SafetyAlert.State.SENT).count() == 2
    )
    messages = [p.read_text() for p in celery_worker_process.mail_dir.iterdir()]
    recipients = sorted(line for m in messages for line in m.splitlines() if line.startswith("To:"))
    assert recipients == ["To: clin@example.org", "To: sup@example.org"]
    for message in messages:
        assert "Safety flag" in message
        assert "phq" not in message.lower() and client.last_name not in message
