"""Measures given in session, on the clinician's screen, use up the link for the same form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError

from alliance import measures
from alliance.measures import MeasureLinkRefused, measure_link_read, measure_link_token
from alliance.models import MeasureRequest, Response, RuptureFlag
from alliance.services import response_record_in_session
from practice.models import Client, User
from scheduling.models import Appointment, Status
from tests.alliance.helpers import NOW, feedback_answers, instrument, phq9_answers
from tests.factories import book

pytestmark = pytest.mark.django_db

State = MeasureRequest.State


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def session(clinician: User, client_record: Client) -> Appointment:
    """Attended this morning; marked attended an hour ago."""
    return book(
        clinician,
        client_record,
        NOW - timedelta(hours=2),
        status=Status.ATTENDED,
        status_changed_at=NOW - timedelta(hours=1),
    )


def in_session(
    session: Appointment,
    clinician: User,
    code: str = "session-feedback",
    answers: dict[str, object] | None = None,
) -> Response:
    return response_record_in_session(
        instrument=instrument(code),
        answers=feedback_answers(37) if answers is None else answers,
        appointment=session,
        clinician=clinician,
        now=NOW,
    )


def feedback_link(session: Appointment) -> MeasureRequest:
    measures.measure_requests_plan(now=NOW)
    return MeasureRequest.objects.get(appointment=session)


def test_it_stores_the_response_as_given_in_session_by_the_clinician(
    session: Appointment, clinician: User, client_record: Client
) -> None:
    response = in_session(session, clinician)
    response.refresh_from_db()
    assert (response.collected_via, response.given_by) == (Response.Via.IN_SESSION, clinician)
    assert (response.appointment, response.episode, response.client) == (
        session,
        session.episode,
        client_record,
    )
    assert (response.total, response.completed_at, response.request) == (37, NOW, None)


def test_it_uses_up_a_pending_link_for_the_same_session_and_form(
    session: Appointment, clinician: User
) -> None:
    request = feedback_link(session)
    assert request.state == State.PENDING
    response = in_session(session, clinician)
    request.refresh_from_db()
    assert (request.state, request.detail) == (State.SKIPPED, "answered in session")
    assert response.request == request
    # The sweep and a late task both leave it alone: the client is not asked twice.
    assert measures.measure_requests_sweep(now=NOW + timedelta(minutes=1)) == []
    assert measures.measure_request_send(request_id=request.pk, now=NOW) == "not-claimed"
    assert not mail.outbox


def test_it_uses_up_a_link_already_sent(session: Appointment, clinician: User) -> None:
    request = feedback_link(session)
    measures.measure_request_send(request_id=request.pk, now=NOW)
    response = in_session(session, clinician)
    assert response.request == request
    with pytest.raises(MeasureLinkRefused, match="already answered"):
        measure_link_read(measure_link_token(request), now=NOW + timedelta(minutes=5))


def test_a_link_for_another_form_is_left_alone(session: Appointment, clinician: User) -> None:
    request = feedback_link(session)
    response = in_session(session, clinician, "phq-9", phq9_answers(8))
    assert response.request is None
    request.refresh_from_db()
    assert request.state == State.PENDING


def test_feedback_given_in_session_means_no_link_is_planned(
    session: Appointment, clinician: User
) -> None:
    in_session(session, clinician)
    measures.measure_requests_plan(now=NOW)
    assert not MeasureRequest.objects.exists()


def test_an_incomplete_form_stores_nothing_and_keeps_the_link(
    session: Appointment, clinician: User
) -> None:
    request = feedback_link(session)
    answers = feedback_answers(37)
    del answers["approach"]
    with pytest.raises(ValidationError) as refused:
        in_session(session, clinician, answers=answers)
    assert list(refused.value.message_dict) == ["approach"]
    assert not Response.objects.exists()
    request.refresh_from_db()
    assert (request.state, request.detail) == (State.PENDING, "")


def test_a_safety_answer_in_session_raises_the_safety_flag_at_once(
    session: Appointment, clinician: User
) -> None:
    response = in_session(session, clinician, "phq-9", phq9_answers(9, item9=1))
    flag = RuptureFlag.objects.safety().get()
    assert flag.trigger_key == f"response:{response.pk}"
    assert flag.episode == session.episode
