"""End to end through Redis: a committed invitation is emailed by a real Celery worker."""

from __future__ import annotations

import pytest

from practice.models import Invitation
from practice.services import invitation_create
from tests.factories import PracticeFactory, staff
from tests.worker.conftest import WorkerProcess

pytestmark = pytest.mark.worker


def test_a_real_worker_sends_the_invitation_once(celery_worker_process: WorkerProcess) -> None:
    practice = PracticeFactory.create()
    admin = staff(practice, "admin")

    invitation = invitation_create(
        practice=practice, invited_by=admin, email="worker@example.org", roles=("clinician",)
    )

    def sent() -> bool:
        return Invitation.objects.filter(pk=invitation.pk, sent_at__isnull=False).exists() and any(
            celery_worker_process.mail_dir.iterdir()
        )

    celery_worker_process.wait_for(sent)
    messages = [path.read_text() for path in celery_worker_process.mail_dir.iterdir()]
    assert len(messages) == 1
    assert "To: worker@example.org" in messages[0]
    assert "/invite/" in messages[0]

    # A duplicate delivery of the same task (as after a redelivery) sends nothing more.
    from practice.tasks import send_invitation

    send_invitation.delay(invitation.pk)
    celery_worker_process.wait_for(
        lambda: celery_worker_process.log.read_text().count(" succeeded in ") >= 2
    )
    assert celery_worker_process.log.read_text().rstrip().endswith(": False")
    assert len(list(celery_worker_process.mail_dir.iterdir())) == 1
