"""Measure links: planned when due, sent at most once, answered at most once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from smtplib import SMTPException
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend

from alliance import measures
from alliance.measures import (
    MeasureLinkRefused,
    measure_link_read,
    measure_link_token,
    measure_link_url,
)
from alliance.models import (
    AlliancePolicy,
    FlagEvent,
    MeasurementPlan,
    MeasureRequest,
    Response,
)
from alliance.services import measure_link_answer
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, ShortLink, Status
from scheduling.sms import BaseSmsBackend, SmsError, SmsMessage
from scheduling.sms import outbox as sms_outbox
from tests.alliance.helpers import NOW, feedback_answers, instrument, phq9_answers
from tests.alliance.test_rules import respond
from tests.factories import ClientFactory, EpisodeFactory, book

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
State = MeasureRequest.State
Purpose = MeasureRequest.Purpose


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _sms_outbox(settings: Any) -> None:
    settings.SMS_BACKEND = "scheduling.sms.LocmemSmsBackend"
    sms_outbox.clear()


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


def attended(
    clinician: User, client: Client, starts_at: datetime, marked_at: datetime | None = None
) -> Appointment:
    return book(
        clinician,
        client,
        starts_at,
        status=Status.ATTENDED,
        status_changed_at=marked_at or starts_at + timedelta(minutes=50),
    )


def upcoming(clinician: User, client: Client, starts_at: datetime) -> Appointment:
    return book(clinician, client, starts_at, status=Status.SCHEDULED, status_changed_at=NOW)


def plan(now: datetime) -> list[MeasureRequest]:
    measures.measure_requests_plan(now=now)
    return list(MeasureRequest.objects.order_by("pk"))


def sweep_and_send(now: datetime) -> list[str]:
    return [
        measures.measure_request_send(request_id=pk, now=now)
        for pk in measures.measure_requests_sweep(now=now)
    ]


@pytest.fixture
def session(clinician: User, client_record: Client) -> Appointment:
    """Attended this morning, 10:00 in Berlin, and marked attended at 10:55."""
    return attended(
        clinician, client_record, NOW - timedelta(hours=2), NOW - timedelta(hours=1, minutes=5)
    )


def sent_feedback(session: Appointment, now: datetime = NOW) -> MeasureRequest:
    measures.measure_requests_plan(now=now)
    request = MeasureRequest.objects.get(appointment=session, purpose=Purpose.FEEDBACK)
    assert measures.measure_request_send(request_id=request.pk, now=now) == State.SENT
    request.refresh_from_db()
    return request


# Planning session feedback


def test_the_feedback_link_is_planned_once_the_session_is_marked_attended(
    session: Appointment,
) -> None:
    # The sweep before the session was marked sees nothing to ask about.
    assert plan(session.status_changed_at - timedelta(minutes=1)) == []
    [request] = plan(NOW)
    assert request.purpose == Purpose.FEEDBACK
    assert request.instrument.code == "session-feedback"
    assert (request.appointment, request.episode, request.client) == (
        session,
        session.episode,
        session.client,
    )
    assert (request.channel, request.state) == ("email", State.PENDING)
    assert request.due_at == session.status_changed_at


def test_a_session_gets_one_feedback_link_however_often_the_sweep_runs(
    session: Appointment,
) -> None:
    assert sweep_and_send(NOW) == [State.SENT]
    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(hours=30)):
        assert sweep_and_send(NOW + later) == []
    assert MeasureRequest.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_sweep_that_missed_ticks_still_plans_within_the_link_lifetime(
    clinician: User, client_record: Client
) -> None:
    marked = NOW - timedelta(hours=71)
    attended(clinician, client_record, marked - timedelta(hours=1), marked)
    too_old = attended(
        clinician, client_record, NOW - timedelta(hours=74), NOW - timedelta(hours=73)
    )
    [request] = plan(NOW)
    assert request.appointment_id != too_old.pk


def test_feedback_is_skipped_with_the_reason_when_the_client_has_no_email_or_phone(
    session: Appointment, client_record: Client
) -> None:
    Client.objects.filter(pk=client_record.pk).update(email="", phone="")
    [request] = plan(NOW)
    assert (request.state, request.channel) == (State.SKIPPED, "")
    assert "no usable channel" in request.detail
    assert measures.measure_requests_due(now=NOW) == []


def test_feedback_is_skipped_when_the_client_opted_out_of_both_channels(
    session: Appointment, client_record: Client
) -> None:
    Client.objects.filter(pk=client_record.pk).update(email_reminders=False, sms_reminders=False)
    [request] = plan(NOW)
    assert request.state == State.SKIPPED
    assert "opted out" in request.detail
    assert sweep_and_send(NOW) == []
    assert not mail.outbox and not sms_outbox


@pytest.mark.parametrize(
    "change", [{"email": ""}, {"email_reminders": False}], ids=["no email", "opted out of email"]
)
def test_the_link_is_texted_when_email_is_not_an_option(
    session: Appointment, client_record: Client, change: dict[str, object]
) -> None:
    Client.objects.filter(pk=client_record.pk).update(**change)
    [request] = plan(NOW)
    assert (request.channel, request.state) == ("sms", State.PENDING)


def test_the_practice_channels_decide_too(
    session: Appointment, client_record: Client, practice: Practice
) -> None:
    Practice.objects.filter(pk=practice.pk).update(reminder_channels=["sms"])
    [request] = plan(NOW)
    assert request.channel == "sms"


def test_no_feedback_link_when_the_measurement_plan_turns_feedback_off(
    session: Appointment, episode: Episode
) -> None:
    MeasurementPlan.objects.create(episode=episode, session_feedback=False)
    assert plan(NOW) == []


def test_no_feedback_link_when_the_client_gave_feedback_in_session(
    session: Appointment, episode: Episode
) -> None:
    respond(episode, "session-feedback", feedback_answers(38), NOW - timedelta(hours=1), session)
    assert plan(NOW) == []


def test_a_no_show_gets_no_feedback_link(clinician: User, client_record: Client) -> None:
    book(
        clinician,
        client_record,
        NOW - timedelta(hours=2),
        status=Status.NO_SHOW,
        status_changed_at=NOW - timedelta(hours=1),
    )
    assert plan(NOW) == []


def test_a_pending_feedback_link_is_skipped_when_attendance_is_corrected_to_a_no_show(
    session: Appointment, clinician: User
) -> None:
    [request] = plan(NOW)
    session.set_status(Status.NO_SHOW, by=clinician, via="staff", at=NOW)
    assert sweep_and_send(NOW + timedelta(minutes=1)) == []
    request.refresh_from_db()
    assert request.state == State.SKIPPED
    assert "no longer marked attended" in request.detail
    assert not mail.outbox


def test_a_feedback_send_that_races_a_correction_skips_instead_of_sending(
    session: Appointment, clinician: User
) -> None:
    [request] = plan(NOW)
    session.set_status(Status.NO_SHOW, by=clinician, via="staff", at=NOW)
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == State.SKIPPED
    assert not mail.outbox


# Planning outcome measures


def test_the_outcome_link_is_planned_within_24_hours_before_the_session(
    clinician: User, client_record: Client
) -> None:
    starts_at = NOW + timedelta(hours=30)
    appointment = upcoming(clinician, client_record, starts_at)
    assert plan(starts_at - timedelta(hours=24, minutes=1)) == []
    [request] = plan(starts_at - timedelta(hours=24))
    assert request.purpose == Purpose.OUTCOME
    assert request.instrument.code == "phq-9"
    assert request.appointment == appointment
    assert request.due_at == starts_at - timedelta(hours=24)
    assert request.expires_at == starts_at
    assert request.state == State.PENDING


def test_the_lead_time_is_the_practices(
    clinician: User, client_record: Client, practice: Practice
) -> None:
    AlliancePolicy.objects.create(practice=practice, outcome_lead_hours=48)
    starts_at = NOW + timedelta(hours=47)
    upcoming(clinician, client_record, starts_at)
    [request] = plan(NOW)
    assert request.purpose == Purpose.OUTCOME


def test_the_outcome_measure_goes_every_n_sessions_counted_by_attendance(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    MeasurementPlan.objects.create(
        episode=episode, outcome_instrument=instrument("gad-7"), outcome_every_n_sessions=3
    )
    asked = []
    for number in range(1, 8):
        starts_at = NOW + timedelta(days=number, hours=6)
        appointment = upcoming(clinician, client_record, starts_at)
        measures.measure_requests_plan(now=starts_at - timedelta(hours=12))
        outcome = MeasureRequest.objects.filter(appointment=appointment, purpose=Purpose.OUTCOME)
        if outcome.exists():
            assert outcome.get().instrument.code == "gad-7"
            asked.append(number)
        appointment.set_status(Status.ATTENDED, by=clinician, via="staff", at=starts_at)
    assert asked == [1, 4, 7]


def test_a_missed_session_does_not_count_towards_every_n(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    MeasurementPlan.objects.create(
        episode=episode, outcome_instrument=instrument("phq-9"), outcome_every_n_sessions=3
    )
    outcomes = [Status.ATTENDED, Status.NO_SHOW, Status.ATTENDED, Status.ATTENDED, Status.ATTENDED]
    asked = []
    for number, outcome in enumerate(outcomes, start=1):
        starts_at = NOW + timedelta(days=number, hours=6)
        appointment = upcoming(clinician, client_record, starts_at)
        measures.measure_requests_plan(now=starts_at - timedelta(hours=12))
        if MeasureRequest.objects.filter(appointment=appointment, purpose=Purpose.OUTCOME).exists():
            asked.append(number)
        appointment.set_status(outcome, by=clinician, via="staff", at=starts_at)
    # Session 5 is the fourth attended: three attended before it.
    assert asked == [1, 5]


def test_no_outcome_link_when_the_plan_has_no_outcome_measure(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    MeasurementPlan.objects.create(episode=episode, outcome_instrument=None)
    upcoming(clinician, client_record, NOW + timedelta(hours=20))
    assert plan(NOW) == []


def test_no_outcome_link_for_a_closed_episode(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    upcoming(clinician, client_record, NOW + timedelta(hours=20))
    episode.close(reason=Episode.CloseReason.COMPLETED, on=NOW.date())
    assert plan(NOW) == []


def test_an_outcome_link_is_skipped_when_the_session_is_cancelled_before_sending(
    clinician: User, client_record: Client
) -> None:
    appointment = upcoming(clinician, client_record, NOW + timedelta(hours=20))
    [request] = plan(NOW)
    appointment.set_status(Status.CANCELLED_BY_CLIENT, by=None, via="client_link", at=NOW)
    assert sweep_and_send(NOW + timedelta(minutes=1)) == []
    request.refresh_from_db()
    assert request.state == State.SKIPPED
    assert "cancelled" in request.detail
    assert not mail.outbox


def test_a_send_that_races_a_cancellation_skips_instead_of_sending(
    clinician: User, client_record: Client
) -> None:
    appointment = upcoming(clinician, client_record, NOW + timedelta(hours=20))
    [request] = plan(NOW)
    appointment.set_status(Status.CANCELLED_BY_CLINICIAN, by=clinician, via="staff", at=NOW)
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == State.SKIPPED
    assert not mail.outbox


# Sending


def test_the_email_carries_the_link_and_nothing_clinical(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    # A client with a severe score and a safety answer already on record.
    respond(episode, "phq-9", phq9_answers(22, item9=2), NOW - timedelta(days=7))
    starts_at = NOW + timedelta(hours=20)
    upcoming(clinician, client_record, starts_at)
    assert sweep_and_send(NOW) == [State.SENT]
    request = MeasureRequest.objects.get()
    assert (request.state, request.sent_at is not None) == (State.SENT, True)
    [message] = mail.outbox
    assert message.to == [client_record.email]
    assert measure_link_url(request) in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html = str(message.alternatives[0][0])
    assert measure_link_url(request) in html
    for text in (message.subject, message.body, html):
        # The token is random text; look only at the words around it.
        words = text.replace(measure_link_url(request), "").lower()
        for clinical in ("phq", "gad", "depress", "22", "severe", "safety", "episode"):
            assert clinical not in words
    assert message.extra_headers["Message-ID"] == measures.measure_request_message_id(request)


def test_a_second_send_of_the_same_request_does_nothing(session: Appointment) -> None:
    request = sent_feedback(session)
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == "not-claimed"
    assert len(mail.outbox) == 1
    request.refresh_from_db()
    assert request.attempts == 1


def test_the_sms_fits_one_segment_and_its_short_link_leads_to_the_questionnaire(
    session: Appointment, client_record: Client, practice: Practice
) -> None:
    Client.objects.filter(pk=client_record.pk).update(email="")
    Practice.objects.filter(pk=practice.pk).update(
        name="Gemeinschaftspraxis für Psychotherapie und Beratung am Lindenhof " * 3
    )
    request = sent_feedback(session)
    [text] = sms_outbox
    assert text.to == client_record.phone
    assert len(text.body) <= 160
    assert "How was your session?" in text.body
    link = ShortLink.objects.get()
    assert text.body.endswith(f"/s/{link.code}/")
    assert link.target == measure_link_url(request)
    assert link.expires_at == request.expires_at
    assert not mail.outbox


def test_sms_waits_out_the_clients_quiet_hours_but_email_does_not(
    clinician: User, client_record: Client, practice: Practice
) -> None:
    Client.objects.filter(pk=client_record.pk).update(email="")
    evening = datetime(2026, 11, 16, 20, 0, tzinfo=BERLIN)
    texted = attended(clinician, client_record, evening, evening + timedelta(minutes=55))
    other = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=other, clinician=clinician)
    emailed = attended(clinician, other, evening - timedelta(hours=1), evening)

    at_night = datetime(2026, 11, 16, 21, 30, tzinfo=BERLIN)
    with time_machine.travel(at_night, tick=False):
        assert sweep_and_send(at_night) == [State.SENT]
    assert MeasureRequest.objects.get(appointment=emailed).state == State.SENT
    assert MeasureRequest.objects.get(appointment=texted).state == State.PENDING
    assert measures.measure_requests_due(now=datetime(2026, 11, 17, 7, 59, tzinfo=BERLIN)) == []

    morning = datetime(2026, 11, 17, 8, 0, tzinfo=BERLIN)
    with time_machine.travel(morning, tick=False):
        assert sweep_and_send(morning) == [State.SENT]
    assert len(sms_outbox) == 1


def test_a_stale_sending_claim_is_put_back_and_sent_once(session: Appointment) -> None:
    [request] = plan(NOW)
    MeasureRequest.objects.filter(pk=request.pk).update(
        state=State.SENDING, claimed_at=NOW - timedelta(minutes=6)
    )
    assert measures.measure_requests_due(now=NOW) == [request.pk]
    request.refresh_from_db()
    assert (request.state, request.claimed_at) == (State.PENDING, None)
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == State.SENT
    assert len(mail.outbox) == 1


def test_a_fresh_sending_claim_is_left_to_its_worker(session: Appointment) -> None:
    [request] = plan(NOW)
    MeasureRequest.objects.filter(pk=request.pk).update(
        state=State.SENDING, claimed_at=NOW - timedelta(minutes=1)
    )
    assert measures.measure_requests_due(now=NOW) == []
    assert MeasureRequest.objects.get(pk=request.pk).state == State.SENDING


class RefusingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise SMTPException("451 try again later")


class UncertainSmsBackend(BaseSmsBackend):
    def deliver(self, message: SmsMessage) -> str:
        raise SmsError("The provider timed out.", may_have_sent=True)


def test_a_failed_email_is_put_back_for_a_retry_and_fails_after_five_attempts(
    session: Appointment, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.RefusingEmailBackend"
    [request] = plan(NOW)
    with pytest.raises(SMTPException):
        measures.measure_request_send(request_id=request.pk, now=NOW)
    request.refresh_from_db()
    assert (request.state, request.attempts, request.claimed_at) == (State.PENDING, 1, None)
    assert "451" in request.detail
    for _ in range(measures.MAX_ATTEMPTS - 1):
        with pytest.raises(SMTPException):
            measures.measure_request_send(request_id=request.pk, now=NOW)
    request.refresh_from_db()
    assert (request.state, request.attempts) == (State.FAILED, measures.MAX_ATTEMPTS)
    assert measures.measure_requests_due(now=NOW) == []


def test_an_sms_that_may_have_gone_is_not_sent_again(
    session: Appointment, client_record: Client, settings: Any
) -> None:
    settings.SMS_BACKEND = f"{__name__}.UncertainSmsBackend"
    Client.objects.filter(pk=client_record.pk).update(email="")
    [request] = plan(NOW)
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == State.FAILED
    request.refresh_from_db()
    assert "timed out" in request.detail
    assert measures.measure_requests_due(now=NOW + timedelta(minutes=10)) == []


# Reading a link


def test_a_sent_link_reads_back_as_its_request(session: Appointment) -> None:
    request = sent_feedback(session)
    assert measure_link_read(measure_link_token(request), now=NOW) == request


def test_a_tampered_link_is_refused(session: Appointment) -> None:
    token = measure_link_token(sent_feedback(session))
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    with pytest.raises(MeasureLinkRefused, match="not valid"):
        measure_link_read(tampered, now=NOW)


def test_a_link_naming_another_request_is_refused(
    session: Appointment, clinician: User, client_record: Client
) -> None:
    request = sent_feedback(session)
    later = attended(clinician, client_record, NOW + timedelta(hours=2))
    other = sent_feedback(later, now=NOW + timedelta(hours=3))
    # A genuine signature around the other request's id with this request's nonce.
    forged = signing.dumps({"q": other.pk, "n": request.nonce}, salt=measures.SALT)
    with pytest.raises(MeasureLinkRefused, match="not valid"):
        measure_link_read(forged, now=NOW + timedelta(hours=3))


def test_a_link_not_yet_sent_is_refused(session: Appointment) -> None:
    [request] = plan(NOW)
    with pytest.raises(MeasureLinkRefused, match="not active"):
        measure_link_read(measure_link_token(request), now=NOW)


def test_a_feedback_link_expires_72_hours_after_it_was_sent(session: Appointment) -> None:
    sent_at = NOW + timedelta(hours=5)
    request = sent_feedback(session, now=sent_at)
    assert request.expires_at == sent_at + timedelta(hours=72)
    token = measure_link_token(request)
    assert measure_link_read(token, now=sent_at + timedelta(hours=71, minutes=59)) == request
    with pytest.raises(MeasureLinkRefused, match="expired"):
        measure_link_read(token, now=sent_at + timedelta(hours=72))


def test_the_feedback_link_lifetime_is_the_practices(
    session: Appointment, practice: Practice
) -> None:
    AlliancePolicy.objects.create(practice=practice, feedback_link_hours=24)
    request = sent_feedback(session)
    assert request.expires_at == NOW + timedelta(hours=24)
    with pytest.raises(MeasureLinkRefused, match="expired"):
        measure_link_read(measure_link_token(request), now=NOW + timedelta(hours=24))


def test_an_outcome_link_expires_when_the_session_begins(
    clinician: User, client_record: Client
) -> None:
    starts_at = NOW + timedelta(hours=20)
    upcoming(clinician, client_record, starts_at)
    assert sweep_and_send(NOW) == [State.SENT]
    request = MeasureRequest.objects.get()
    assert request.expires_at == starts_at
    token = measure_link_token(request)
    assert measure_link_read(token, now=starts_at - timedelta(minutes=1)) == request
    with pytest.raises(MeasureLinkRefused, match="expired"):
        measure_link_read(token, now=starts_at)


def test_a_moved_session_gets_a_new_outcome_link_for_its_new_time(
    clinician: User, client_record: Client
) -> None:
    starts_at = NOW + timedelta(hours=20)
    appointment = upcoming(clinician, client_record, starts_at)
    [request] = plan(NOW)
    later = starts_at + timedelta(days=2)
    Appointment.objects.filter(pk=appointment.pk).update(
        starts_at=later, ends_at=later + timedelta(minutes=50)
    )
    assert plan(NOW) == []  # not due yet at the new time, and the old link is gone
    assert not MeasureRequest.objects.filter(pk=request.pk).exists()
    [again] = plan(later - timedelta(hours=24))
    assert again.expires_at == later


def test_a_sent_outcome_link_keeps_working_until_the_moved_sessions_new_start(
    clinician: User, client_record: Client
) -> None:
    starts_at = NOW + timedelta(hours=20)
    appointment = upcoming(clinician, client_record, starts_at)
    assert sweep_and_send(NOW) == [State.SENT]
    later = starts_at + timedelta(hours=6)
    Appointment.objects.filter(pk=appointment.pk).update(
        starts_at=later, ends_at=later + timedelta(minutes=50)
    )
    measures.measure_requests_plan(now=NOW + timedelta(minutes=1))
    request = MeasureRequest.objects.get()
    assert request.expires_at == later
    assert measure_link_read(measure_link_token(request), now=starts_at + timedelta(hours=1))


# Answering a link


def test_answering_a_link_stores_the_scored_response_against_its_session(
    clinician: User, client_record: Client, episode: Episode
) -> None:
    starts_at = NOW + timedelta(hours=20)
    appointment = upcoming(clinician, client_record, starts_at)
    assert sweep_and_send(NOW) == [State.SENT]
    request = MeasureRequest.objects.get()
    answered_at = NOW + timedelta(hours=2)
    response = measure_link_answer(
        token=measure_link_token(request), answers=phq9_answers(12), now=answered_at
    )
    response.refresh_from_db()
    phq9 = instrument("phq-9")
    assert response.instrument == phq9
    assert response.instrument_version == phq9.version
    assert response.answers == phq9_answers(12)
    assert (response.total, response.band, response.subscales) == (12, "moderate", {})
    assert response.safety_triggered is False
    assert (response.appointment, response.episode, response.client) == (
        appointment,
        episode,
        client_record,
    )
    assert response.request == request
    assert (response.collected_via, response.completed_at) == (Response.Via.LINK, answered_at)
    assert response.given_by is None


def test_a_second_answer_to_the_same_link_is_refused_and_writes_nothing(
    session: Appointment,
) -> None:
    token = measure_link_token(sent_feedback(session))
    first = measure_link_answer(token=token, answers=feedback_answers(38), now=NOW)
    counts = (Response.objects.count(), FlagEvent.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError, match="already answered") as refused:
        measure_link_answer(token=token, answers=feedback_answers(12), now=NOW)
    assert isinstance(refused.value, MeasureLinkRefused)
    assert (
        Response.objects.count(),
        FlagEvent.objects.count(),
        AuditEvent.objects.count(),
    ) == counts
    assert Response.objects.get().pk == first.pk


def test_an_incomplete_answer_is_refused_and_the_link_still_works(session: Appointment) -> None:
    request = sent_feedback(session)
    token = measure_link_token(request)
    answers = feedback_answers(38)
    del answers["overall"]
    with pytest.raises(ValidationError) as refused:
        measure_link_answer(token=token, answers=answers, now=NOW)
    assert "overall" in refused.value.message_dict
    assert not Response.objects.exists()
    assert measure_link_read(token, now=NOW) == request
