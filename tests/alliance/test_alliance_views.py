"""The alliance pages: who may open what, and that each form changes state only when valid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import measures
from alliance.models import (
    AlliancePolicy,
    FlagEvent,
    Instrument,
    MeasureRequest,
    OutreachAttempt,
    RepairAction,
    Response,
    RuptureFlag,
)
from alliance.scoring import score
from practice.models import AuditEvent, Client, Practice, User
from scheduling.models import Appointment, Status
from tests.conftest import login
from tests.factories import book

pytestmark = pytest.mark.django_db

FEEDBACK_LOW = {
    "relationship": "6",
    "goals_topics": "7",
    "approach": "6",
    "overall": "6",
    "felt_off": "yes",
    "felt_off_text": "I felt rushed at the end.",
}


def instrument(code: str) -> Instrument:
    return Instrument.objects.with_scoring_rules().shipped().get(code=code)


@pytest.fixture
def session(clinician: User, client_record: Client) -> Appointment:
    return book(
        clinician,
        client_record,
        timezone.now() - timedelta(hours=3),
        status=Status.ATTENDED,
        status_changed_at=timezone.now() - timedelta(hours=2),
    )


@pytest.fixture
def response(session: Appointment) -> Response:
    measure = instrument("session-feedback")
    result = score(measure, FEEDBACK_LOW)
    return Response.objects.create(
        instrument=measure,
        instrument_version=1,
        client=session.client,
        episode=session.episode,
        appointment=session,
        answers=result.answers,
        total=result.total,
        completed_at=timezone.now(),
        collected_via=Response.Via.LINK,
    )


@pytest.fixture
def flag(response: Response) -> RuptureFlag:
    return RuptureFlag.objects.create(
        practice=response.client.practice,
        episode=response.episode,
        client=response.client,
        clinician=response.episode.clinician,
        rule=RuptureFlag.Rule.LOW_ALLIANCE,
        severity=35,
        trigger_key=f"response:{response.pk}",
        evidence={"summary": "Session feedback 25/40 is below the threshold of 36.", "total": 25},
        raised_at=timezone.now(),
    )


@pytest.fixture
def sent_request(session: Appointment) -> MeasureRequest:
    return MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.FEEDBACK,
        instrument=instrument("session-feedback"),
        client=session.client,
        episode=session.episode,
        appointment=session,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=72),
    )


# --- Who sees the clinical record --------------------------------------------------------


def test_the_clinician_sees_the_timeline_with_scores_and_flags(
    as_clinician: HttpClient, client_record: Client, flag: RuptureFlag
) -> None:
    page = as_clinician.get(reverse("client_timeline", args=[client_record.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Low alliance" in html
    assert "below the threshold of 36" in html
    assert "<svg" in html
    assert AuditEvent.objects.filter(
        action="timeline.view", object_id=str(client_record.pk)
    ).exists()


def test_the_supervisor_reads_the_timeline_but_gets_no_forms(
    as_supervisor: HttpClient, client_record: Client, flag: RuptureFlag
) -> None:
    page = as_supervisor.get(reverse("client_timeline", args=[client_record.pk]))
    assert page.status_code == 200
    assert "Log a rupture" not in page.content.decode()
    detail = as_supervisor.get(reverse("flag_detail", args=[flag.pk]))
    assert detail.status_code == 200
    assert "Log a repair action" not in detail.content.decode()


@pytest.mark.parametrize("persona", ["as_admin", "as_other_clinician", "as_outsider", "as_client"])
def test_everyone_else_gets_404_on_clinical_pages(
    request: pytest.FixtureRequest,
    persona: str,
    client_record: Client,
    response: Response,
    flag: RuptureFlag,
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    for url in (
        reverse("client_timeline", args=[client_record.pk]),
        reverse("response_detail", args=[response.pk]),
        reverse("flag_detail", args=[flag.pk]),
        reverse("repair_action_new", args=[flag.pk]),
        reverse("rupture_log_new", args=[flag.episode_id]),
        reverse("outreach", args=[flag.episode_id]),
        reverse("ending_close", args=[flag.episode_id]),
    ):
        assert http.get(url).status_code == 404, url


def test_an_admin_never_sees_item_answers(
    as_admin: HttpClient, client_record: Client, response: Response
) -> None:
    """The client record page is operational: no scores, no answers, no timeline link."""
    page = as_admin.get(reverse("client_detail", args=[client_record.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "I felt rushed" not in html
    assert reverse("client_timeline", args=[client_record.pk]) not in html
    assert as_admin.get(reverse("response_detail", args=[response.pk])).status_code == 404


def test_the_response_page_shows_item_answers_to_the_care_team(
    as_clinician: HttpClient, as_supervisor: HttpClient, response: Response
) -> None:
    for http in (as_clinician, as_supervisor):
        page = http.get(reverse("response_detail", args=[response.pk]))
        assert page.status_code == 200
        assert "I felt rushed at the end." in page.content.decode()
    assert AuditEvent.objects.filter(action="response.view").count() == 2


def test_the_supervisor_cannot_change_a_flag(as_supervisor: HttpClient, flag: RuptureFlag) -> None:
    reply = as_supervisor.post(
        reverse("flag_transition", args=[flag.pk]), {"to_status": "closed", "note": "x"}
    )
    assert reply.status_code == 403
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.OPEN


# --- Flags, repairs and ruptures ---------------------------------------------------------


def test_a_repair_action_moves_the_flag_into_repair(
    as_clinician: HttpClient, flag: RuptureFlag
) -> None:
    today = timezone.localtime()
    reply = as_clinician.post(
        reverse("repair_action_new", args=[flag.pk]),
        {
            "strategy": "acknowledge",
            "description": "I said I had rushed the ending.",
            "client_response": "She relaxed and said it mattered to her.",
            "day": today.date().isoformat(),
            "at": today.strftime("%H:%M"),
        },
    )
    assert reply.status_code == 302
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.IN_REPAIR
    repair = RepairAction.objects.get(flag=flag)
    assert repair.approach == "Exploratory"


def test_a_repair_without_the_clients_response_is_refused_and_nothing_changes(
    as_clinician: HttpClient, flag: RuptureFlag
) -> None:
    today = timezone.localtime()
    reply = as_clinician.post(
        reverse("repair_action_new", args=[flag.pk]),
        {
            "strategy": "rationale",
            "description": "Explained the homework.",
            "client_response": "",
            "day": today.date().isoformat(),
            "at": today.strftime("%H:%M"),
        },
    )
    assert reply.status_code == 400
    assert "This field is required" in reply.content.decode()
    assert not RepairAction.objects.exists()


def test_closing_as_repaired_needs_a_note(as_clinician: HttpClient, flag: RuptureFlag) -> None:
    url = reverse("flag_transition", args=[flag.pk])
    assert as_clinician.post(url, {"to_status": "repaired", "note": ""}).status_code == 400
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.OPEN
    assert (
        as_clinician.post(url, {"to_status": "repaired", "note": "Talked it through."}).status_code
        == 302
    )
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.REPAIRED
    assert flag.resolved_at is not None
    assert FlagEvent.objects.filter(flag=flag, to_status="repaired").exists()


def test_a_clinician_logs_a_rupture_with_its_marker(
    as_clinician: HttpClient, client_record: Client, session: Appointment
) -> None:
    episode = client_record.episodes.get()
    reply = as_clinician.post(
        reverse("rupture_log_new", args=[episode.pk]),
        {
            "kind": "confrontation",
            "marker": "complaints_therapist",
            "appointment": session.pk,
            "note": "Said I never listen.",
        },
    )
    assert reply.status_code == 302
    flag = RuptureFlag.objects.get(rule=RuptureFlag.Rule.LOGGED)
    assert (flag.kind, flag.marker, flag.appointment_id) == (
        "confrontation",
        "complaints_therapist",
        session.pk,
    )


def test_a_withdrawal_with_a_confrontation_marker_is_refused(
    as_clinician: HttpClient, client_record: Client
) -> None:
    episode = client_record.episodes.get()
    reply = as_clinician.post(
        reverse("rupture_log_new", args=[episode.pk]),
        {"kind": "withdrawal", "marker": "complaints_therapist", "note": "x"},
    )
    assert reply.status_code == 400
    assert "confrontation marker" in reply.content.decode()
    assert not RuptureFlag.objects.exists()


# --- Outreach ------------------------------------------------------------------------------


def test_the_outreach_page_explains_and_enforces_the_limit(
    as_clinician: HttpClient, client_record: Client, clinician: User
) -> None:
    episode = client_record.episodes.get()
    now = timezone.now()
    for weeks in (3, 2, 1):
        OutreachAttempt.objects.create(
            episode=episode,
            by=clinician,
            attempted_at=now - timedelta(weeks=weeks),
            channel="phone",
            outcome="no_answer",
        )
    url = reverse("outreach", args=[episode.pk])
    page = as_clinician.get(url)
    assert "allows <strong>3</strong> outreach attempts" in page.content.decode()
    assert "The limit is reached" in page.content.decode()
    local = timezone.localtime()
    reply = as_clinician.post(
        url,
        {
            "channel": "phone",
            "outcome": "no_answer",
            "day": local.date().isoformat(),
            "at": local.strftime("%H:%M"),
        },
    )
    assert reply.status_code == 400
    assert "allows 3 outreach attempts per episode" in reply.content.decode()
    assert OutreachAttempt.objects.count() == 3


# --- Measure links -------------------------------------------------------------------------


def test_a_client_answers_a_feedback_link_once(sent_request: MeasureRequest) -> None:
    http = HttpClient()
    url = reverse("measure_link", args=[measures.measure_link_token(sent_request)])
    page = http.get(url)
    assert page.status_code == 200
    assert "feel off" in page.content.decode()
    assert not Response.objects.exists()  # a GET (a mail scanner) stores nothing
    reply = http.post(url, FEEDBACK_LOW)
    assert reply.status_code == 200
    assert "Thank you" in reply.content.decode()
    stored = Response.objects.get()
    assert (stored.total, stored.request_id, stored.collected_via) == (25, sent_request.pk, "link")
    again = http.post(url, FEEDBACK_LOW)
    assert again.status_code == 410
    assert "already answered" in again.content.decode()
    assert Response.objects.count() == 1


def test_an_incomplete_form_is_refused_with_the_item_named(sent_request: MeasureRequest) -> None:
    url = reverse("measure_link", args=[measures.measure_link_token(sent_request)])
    reply = HttpClient().post(url, {"relationship": "9", "goals_topics": "9", "approach": "9"})
    assert reply.status_code == 400
    html = reply.content.decode()
    assert "Nothing was saved yet" in html
    assert "Please answer item 4" in html
    assert not Response.objects.exists()


@pytest.mark.parametrize("token", ["garbage", "a" * 300, "eyJxIjoxfQ:abc:def"])
def test_a_broken_link_says_why_and_never_500s(token: str) -> None:
    reply = HttpClient().get(reverse("measure_link", args=[token]))
    assert reply.status_code == 410
    assert "not valid" in reply.content.decode()


def test_an_expired_link_is_refused(sent_request: MeasureRequest) -> None:
    MeasureRequest.objects.filter(pk=sent_request.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    url = reverse("measure_link", args=[measures.measure_link_token(sent_request)])
    reply = HttpClient().post(url, FEEDBACK_LOW)
    assert reply.status_code == 410
    assert "expired" in reply.content.decode()
    assert not Response.objects.exists()


def test_the_portal_lists_waiting_questionnaires(
    as_client: HttpClient, sent_request: MeasureRequest
) -> None:
    page = as_client.get(reverse("portal_measures"))
    assert page.status_code == 200
    assert reverse("measure_link", args=[measures.measure_link_token(sent_request)]) in (
        page.content.decode()
    )


def test_a_safety_answer_alerts_at_once(
    supervisor: User, client_record: Client, session: Appointment
) -> None:
    outcome = MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.OUTCOME,
        instrument=instrument("phq-9"),
        client=client_record,
        episode=session.episode,
        appointment=session,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=5),
    )
    answers = {f"phq9_{n}": "1" for n in range(1, 10)}
    url = reverse("measure_link", args=[measures.measure_link_token(outcome)])
    assert HttpClient().post(url, answers).status_code == 200
    flag = RuptureFlag.objects.get(rule=RuptureFlag.Rule.SAFETY)
    assert set(flag.safety_alerts.values_list("role", flat=True)) == {"clinician", "supervisor"}


# --- In session ----------------------------------------------------------------------------


def test_the_handed_screen_shows_the_questionnaire_and_nothing_else(
    as_clinician: HttpClient, session: Appointment
) -> None:
    measure = instrument("session-feedback")
    url = reverse("in_session_form", args=[session.pk, measure.pk])
    page = as_clinician.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<nav" not in html
    assert session.client.last_name not in html
    reply = as_clinician.post(url, {**FEEDBACK_LOW, "felt_off": "no", "felt_off_text": ""})
    assert reply.status_code == 302
    assert "hand the screen back" in as_clinician.get(reply["Location"]).content.decode()
    stored = Response.objects.get()
    assert stored.collected_via == Response.Via.IN_SESSION
    assert stored.given_by_id == session.clinician_id


def test_only_the_sessions_clinician_can_hand_the_screen(
    as_other_clinician: HttpClient, as_supervisor: HttpClient, session: Appointment
) -> None:
    for http in (as_other_clinician, as_supervisor):
        assert http.get(reverse("in_session_start", args=[session.pk])).status_code == 404


# --- Practice policy -----------------------------------------------------------------------


def test_an_admin_sets_the_alliance_threshold(as_admin: HttpClient, practice: Practice) -> None:
    values = {
        "low_alliance_below": 32,
        "alliance_drop_points": 5,
        "strain_window_sessions": 2,
        "dropout_after_days": 21,
        "not_on_track_after_sessions": 8,
        "clinician_short_notice_hours": 24,
        "outreach_spacing_days": 7,
        "feedback_link_hours": 72,
        "outcome_lead_hours": 24,
    }
    assert as_admin.post(reverse("alliance_policy_edit"), values).status_code == 302
    assert AlliancePolicy.objects.get(practice=practice).low_alliance_below == 32
    bad = as_admin.post(reverse("alliance_policy_edit"), {**values, "low_alliance_below": 41})
    assert bad.status_code == 400
    assert AlliancePolicy.objects.get(practice=practice).low_alliance_below == 32


def test_the_thresholds_page_is_for_admins(
    as_clinician: HttpClient, as_outsider: HttpClient
) -> None:
    assert as_clinician.get(reverse("alliance_policy_edit")).status_code == 404


def test_no_email_carries_scores(sent_request: MeasureRequest) -> None:
    MeasureRequest.objects.filter(pk=sent_request.pk).update(state=MeasureRequest.State.PENDING)
    measures.measure_request_send(request_id=sent_request.pk)
    [message] = mail.outbox
    assert "PHQ" not in message.body and "score" not in message.body.lower()


def test_the_new_clinician_reads_the_handoff_note_and_the_past_on_the_timeline(
    other_clinician: User, client_record: Client, response: Response
) -> None:
    from practice.models import Episode

    old = client_record.episodes.get()
    old.close(reason=Episode.CloseReason.TRANSFERRED, on=timezone.localdate())
    Episode.objects.create(
        client=client_record,
        clinician=other_clinician,
        transferred_from=old,
        handoff_note="Works best with a clear agenda at the start.",
    )
    page = login(other_clinician).get(reverse("client_timeline", args=[client_record.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Works best with a clear agenda at the start." in html
    assert reverse("response_detail", args=[response.pk]) in html  # the past scores
