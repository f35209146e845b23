"""Safety alerts: a safety answer reaches the clinician and supervisor at once, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from smtplib import SMTPException
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from kombu.exceptions import OperationalError

from alliance import measures, safety, tasks
from alliance.measures import measure_link_token
from alliance.models import FlagEvent, MeasureRequest, Response, RuptureFlag, SafetyAlert
from alliance.services import measure_link_answer, response_record
from alliance.sweeps import rupture_sweep
from practice.models import Client, Episode, Practice, User
from scheduling.models import Status
from tests.alliance.helpers import NOW, instrument, phq9_answers
from tests.alliance.test_rules import respond
from tests.factories import PairingFactory, book, staff

pytestmark = pytest.mark.django_db

State = SafetyAlert.State


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def episode(client_record: Client, clinician: User) -> Episode:
    Client.objects.filter(pk=client_record.pk).update(first_name="Zelinde", last_name="Wormwald")
    # Booked ahead, so the dropout rule stays quiet and only safety speaks.
    book(clinician, client_record, NOW + timedelta(days=6), status=Status.SCHEDULED)
    return client_record.episodes.get()


def answer_phq9(episode: Episode, item9: int, total: int = 14) -> Response:
    """A PHQ-9 answered through the client portal."""
    return response_record(
        instrument=instrument("phq-9"),
        answers=phq9_answers(total, item9=item9),
        episode=episode,
        appointment=None,
        via=Response.Via.PORTAL,
        now=NOW,
    )


def alerts() -> set[tuple[int, str, str]]:
    return {(a.recipient_id, a.role, a.state) for a in SafetyAlert.objects.all()}


@pytest.mark.usefixtures("run_on_commit")
def test_a_safety_answer_through_a_link_alerts_the_clinician_and_supervisor_at_once(
    clinician: User, supervisor: User, client_record: Client, episode: Episode
) -> None:
    starts_at = NOW + timedelta(hours=20)
    appointment = book(clinician, client_record, starts_at, status=Status.SCHEDULED)
    measures.measure_requests_plan(now=NOW)
    request = MeasureRequest.objects.get(appointment=appointment)
    measures.measure_request_send(request_id=request.pk, now=NOW)
    mail.outbox.clear()

    response = measure_link_answer(
        token=measure_link_token(request), answers=phq9_answers(14, item9=1), now=NOW
    )

    # No sweep has run: the flag was raised by the answer itself.
    flag = RuptureFlag.objects.safety().get()
    assert flag.trigger_key == f"response:{response.pk}"
    assert (flag.episode, flag.clinician, flag.status) == (episode, clinician, "open")
    assert flag.raised_at == NOW
    assert flag.evidence["safety_items"] == [
        {"item": "phq9_9", "position": 9, "answer": 1, "threshold": 1}
    ]
    assert list(flag.events.values_list("action", flat=True)) == [FlagEvent.Action.RAISED]
    assert alerts() == {
        (clinician.pk, "clinician", State.SENT),
        (supervisor.pk, "supervisor", State.SENT),
    }
    assert sorted(m.to[0] for m in mail.outbox) == sorted([clinician.email, supervisor.email])


@pytest.mark.usefixtures("run_on_commit")
def test_a_safety_answer_recorded_without_a_link_alerts_at_once_too(
    clinician: User, supervisor: User, episode: Episode
) -> None:
    response = answer_phq9(episode, item9=2)
    assert response.safety_triggered
    assert RuptureFlag.objects.safety().get().trigger_key == f"response:{response.pk}"
    assert {role for _, role, _ in alerts()} == {"clinician", "supervisor"}
    assert len(mail.outbox) == 2


@pytest.mark.usefixtures("run_on_commit")
def test_the_alert_email_carries_no_clinical_content(
    clinician: User, supervisor: User, episode: Episode
) -> None:
    answer_phq9(episode, item9=3, total=23)
    flag = RuptureFlag.objects.safety().get()
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert isinstance(message, EmailMultiAlternatives)
        html = str(message.alternatives[0][0])
        assert f"http://testserver/flags/{flag.pk}/" in message.body
        assert f"http://testserver/flags/{flag.pk}/" in html
        for text in (message.subject, message.body, html):
            words = text.lower()
            for clinical in ("zelinde", "wormwald", "phq", "item 9", "23", "severe", "self-harm"):
                assert clinical not in words
    [to_supervisor] = [m for m in mail.outbox if m.to == [supervisor.email]]
    assert "supervisee" in to_supervisor.body


@pytest.mark.usefixtures("run_on_commit")
def test_the_sweep_afterwards_raises_no_second_flag_and_no_second_alert(
    clinician: User, supervisor: User, episode: Episode
) -> None:
    answer_phq9(episode, item9=1)
    assert rupture_sweep(now=NOW + timedelta(minutes=5)) == []
    assert rupture_sweep(now=NOW + timedelta(hours=1)) == []
    assert tasks.sweep_measures(at=(NOW + timedelta(hours=1)).isoformat()) == 0
    assert RuptureFlag.objects.safety().count() == 1
    assert SafetyAlert.objects.count() == 2
    assert len(mail.outbox) == 2


@pytest.mark.usefixtures("run_on_commit")
def test_a_safety_answer_stored_without_the_service_is_alerted_by_the_sweep(
    clinician: User, supervisor: User, episode: Episode
) -> None:
    # E.g. imported from paper: no rules ran when it was stored.
    response = respond(episode, "phq-9", phq9_answers(10, item9=1), NOW - timedelta(hours=1))
    assert not SafetyAlert.objects.exists()
    [flag_id] = rupture_sweep(now=NOW)
    assert RuptureFlag.objects.get(pk=flag_id).trigger_key == f"response:{response.pk}"
    assert {role for _, role, _ in alerts()} == {"clinician", "supervisor"}
    assert len(mail.outbox) == 2


@pytest.mark.usefixtures("run_on_commit")
def test_without_a_supervisor_only_the_clinician_is_alerted(
    clinician: User, episode: Episode
) -> None:
    answer_phq9(episode, item9=1)
    assert alerts() == {(clinician.pk, "clinician", State.SENT)}
    assert [m.to for m in mail.outbox] == [[clinician.email]]


@pytest.mark.usefixtures("run_on_commit")
def test_a_former_supervisor_is_not_alerted(
    clinician: User, practice: Practice, episode: Episode
) -> None:
    former = staff(practice, "supervisor", email="frida@lindenhof.example")
    PairingFactory.create(
        practice=practice,
        supervisor=former,
        supervisee=clinician,
        started_on=NOW.date() - timedelta(days=200),
        ended_on=NOW.date(),
    )
    answer_phq9(episode, item9=1)
    assert alerts() == {(clinician.pk, "clinician", State.SENT)}


def test_no_safety_answer_no_flag_and_no_alert(
    clinician: User, supervisor: User, episode: Episode
) -> None:
    answer_phq9(episode, item9=0, total=24)
    assert not RuptureFlag.objects.safety().exists()
    assert not SafetyAlert.objects.exists()


def test_alerts_left_pending_by_a_broker_outage_go_out_with_the_next_sweep(
    clinician: User,
    supervisor: User,
    episode: Episode,
    run_on_commit: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.send_safety_alert, "delay", broker_down)
        # The answer is stored and flagged although nothing could be enqueued.
        answer_phq9(episode, item9=1)
    assert alerts() == {
        (clinician.pk, "clinician", State.PENDING),
        (supervisor.pk, "supervisor", State.PENDING),
    }
    assert not mail.outbox

    pending = safety.safety_alerts_due(now=NOW + timedelta(minutes=1))
    assert set(pending) == set(SafetyAlert.objects.values_list("pk", flat=True))
    assert tasks.sweep_measures(at=(NOW + timedelta(minutes=1)).isoformat()) == 2
    assert {state for _, _, state in alerts()} == {State.SENT}
    assert len(mail.outbox) == 2
    assert safety.safety_alerts_due(now=NOW + timedelta(minutes=2)) == []


def test_a_second_send_of_the_same_alert_does_nothing(clinician: User, episode: Episode) -> None:
    answer_phq9(episode, item9=1)
    alert = SafetyAlert.objects.get()
    assert safety.safety_alert_send(alert_id=alert.pk, now=NOW) == State.SENT
    assert safety.safety_alert_send(alert_id=alert.pk, now=NOW) == "not-claimed"
    assert len(mail.outbox) == 1
    alert.refresh_from_db()
    assert (alert.state, alert.attempts) == (State.SENT, 1)


def test_a_stale_sending_claim_is_put_back(clinician: User, episode: Episode) -> None:
    answer_phq9(episode, item9=1)
    alert = SafetyAlert.objects.get()
    SafetyAlert.objects.filter(pk=alert.pk).update(
        state=State.SENDING, claimed_at=NOW - timedelta(minutes=1)
    )
    assert safety.safety_alerts_due(now=NOW) == []
    assert safety.safety_alerts_due(now=NOW + timedelta(minutes=5, seconds=1)) == [alert.pk]
    alert.refresh_from_db()
    assert (alert.state, alert.claimed_at) == (State.PENDING, None)


class RefusingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise SMTPException("451 try again later")


def test_a_failed_alert_stays_pending_for_a_retry_and_fails_after_the_last_attempt(
    clinician: User, episode: Episode, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.RefusingEmailBackend"
    answer_phq9(episode, item9=1)
    alert = SafetyAlert.objects.get()
    with pytest.raises(SMTPException):
        safety.safety_alert_send(alert_id=alert.pk, now=NOW)
    alert.refresh_from_db()
    assert (alert.state, alert.attempts) == (State.PENDING, 1)
    assert "451" in alert.detail
    assert safety.safety_alerts_due(now=NOW) == [alert.pk]
    for _ in range(safety.MAX_ATTEMPTS - 1):
        with pytest.raises(SMTPException):
            safety.safety_alert_send(alert_id=alert.pk, now=NOW)
    alert.refresh_from_db()
    assert (alert.state, alert.attempts) == (State.FAILED, safety.MAX_ATTEMPTS)


def test_a_safety_answer_from_old_history_is_flagged_but_not_emailed(
    episode: Episode, supervisor: User
) -> None:
    """Imported history: an item-9 answer from months ago tops the queue, without an email."""
    from tests.alliance.test_rules import phq9

    phq9(episode, 12, NOW - timedelta(days=120), item9=1)
    [flag_id] = rupture_sweep(now=NOW)
    assert RuptureFlag.objects.get(pk=flag_id).rule == RuptureFlag.Rule.SAFETY
    assert not SafetyAlert.objects.exists()
