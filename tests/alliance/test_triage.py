"""Triage by the supervisor: acknowledge, add to the agenda, ask for a repair plan, close.
Every action is kept in the flag's history; refused actions change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import supervision
from alliance.models import (
    AgendaItem,
    FlagEvent,
    RepairAction,
    RepairPlanRequest,
    RuptureFlag,
    SupervisionSession,
)
from practice.models import Client, Episode, Practice, User
from tests.alliance.supervision_helpers import end_pairing, make_alert, make_flag

pytestmark = pytest.mark.django_db

Action = FlagEvent.Action


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


@pytest.fixture
def flag(episode: Episode, supervisor: User) -> RuptureFlag:
    return make_flag(episode, RuptureFlag.Rule.LOW_ALLIANCE, summary="Feedback 24/40.")


def _actions(flag: RuptureFlag) -> list[str]:
    return list(flag.events.order_by("at", "pk").values_list("action", flat=True))


def _session(
    supervisor: User, supervisee: User, practice: Practice, days: int
) -> SupervisionSession:
    return SupervisionSession.objects.create(
        practice=practice,
        supervisor=supervisor,
        supervisee=supervisee,
        scheduled_for=timezone.now() + timedelta(days=days),
    )


# --- Acknowledge -------------------------------------------------------------------------


def test_acknowledging_marks_the_flag_and_keeps_it_in_the_history(
    as_supervisor: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    reply = as_supervisor.post(
        reverse("supervision_flag_acknowledge", args=[flag.pk]),
        {"note": "Seen; let us talk Thursday.", "next": reverse("review_queue")},
    )
    assert reply.status_code == 302
    assert reply["Location"] == reverse("review_queue")
    flag.refresh_from_db()
    assert flag.acknowledged_by == supervisor
    assert flag.acknowledged_at is not None
    assert flag.status == RuptureFlag.Status.OPEN
    event = flag.events.get(action=Action.ACKNOWLEDGED)
    assert (event.by, event.note) == (supervisor, "Seen; let us talk Thursday.")


def test_acknowledging_twice_is_refused_and_writes_nothing(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    url = reverse("supervision_flag_acknowledge", args=[flag.pk])
    as_supervisor.post(url, {})
    reply = as_supervisor.post(url, {})
    assert reply.status_code == 400
    assert "already acknowledged" in reply.content.decode()
    assert flag.events.filter(action=Action.ACKNOWLEDGED).count() == 1


def test_an_outside_next_is_not_followed(as_supervisor: HttpClient, flag: RuptureFlag) -> None:
    reply = as_supervisor.post(
        reverse("supervision_flag_acknowledge", args=[flag.pk]), {"next": "https://evil.example/"}
    )
    assert reply["Location"] == reverse("flag_detail", args=[flag.pk])


# --- Add to the agenda -------------------------------------------------------------------


def test_adding_to_the_agenda_uses_the_supervisees_next_planned_session(
    as_supervisor: HttpClient,
    supervisor: User,
    clinician: User,
    practice: Practice,
    flag: RuptureFlag,
) -> None:
    later = _session(supervisor, clinician, practice, days=14)
    sooner = _session(supervisor, clinician, practice, days=3)
    _session(supervisor, clinician, practice, days=-3)  # past: not "next"

    reply = as_supervisor.post(reverse("supervision_flag_agenda", args=[flag.pk]), {})

    assert reply.status_code == 302
    item = AgendaItem.objects.get(flag=flag)
    assert item.session == sooner != later
    assert (item.supervisor, item.supervisee, item.automatic) == (supervisor, clinician, False)
    assert _actions(flag) == [Action.RAISED, Action.AGENDA]
    assert "For the supervision session on" in flag.events.get(action=Action.AGENDA).note


def test_without_a_planned_session_the_item_waits_for_the_next_one(
    as_supervisor: HttpClient,
    supervisor: User,
    clinician: User,
    practice: Practice,
    flag: RuptureFlag,
) -> None:
    as_supervisor.post(reverse("supervision_flag_agenda", args=[flag.pk]), {"topic": "Pacing"})
    item = AgendaItem.objects.get(flag=flag)
    assert item.session is None
    assert item.topic == "Pacing"
    assert "none is planned yet" in flag.events.get(action=Action.AGENDA).note

    session = supervision.supervision_session_create(
        supervisor=supervisor,
        supervisee=clinician,
        scheduled_for=timezone.now() + timedelta(days=7),
        now=timezone.now(),
    )

    item.refresh_from_db()
    assert item.session == session


def test_a_flag_already_on_a_coming_agenda_is_not_added_twice(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    url = reverse("supervision_flag_agenda", args=[flag.pk])
    as_supervisor.post(url, {})
    reply = as_supervisor.post(url, {})
    assert reply.status_code == 400
    assert "already on the agenda" in reply.content.decode()
    assert AgendaItem.objects.filter(flag=flag).count() == 1
    assert flag.events.filter(action=Action.AGENDA).count() == 1


def test_a_workload_alert_goes_on_the_agenda_too(
    as_supervisor: HttpClient, supervisor: User, clinician: User, practice: Practice
) -> None:
    alert = make_alert(clinician)
    session = _session(supervisor, clinician, practice, days=2)
    reply = as_supervisor.post(reverse("supervision_workload_agenda", args=[alert.pk]), {})
    assert reply.status_code == 302
    item = AgendaItem.objects.get(workload_alert=alert)
    assert item.session == session
    assert "Workload" in item.topic
    again = as_supervisor.post(reverse("supervision_workload_agenda", args=[alert.pk]), {})
    assert again.status_code == 400


@pytest.mark.parametrize("persona", ["as_clinician", "as_admin"])
def test_only_the_supervisor_puts_a_workload_alert_on_the_agenda(
    request: pytest.FixtureRequest, persona: str, supervisor: User, clinician: User
) -> None:
    alert = make_alert(clinician)
    http: HttpClient = request.getfixturevalue(persona)
    assert http.post(reverse("supervision_workload_agenda", args=[alert.pk])).status_code == 403
    assert not AgendaItem.objects.exists()


@pytest.mark.parametrize("persona", ["as_other_clinician", "as_outsider", "as_client"])
def test_a_workload_alert_is_404_to_everyone_else(
    request: pytest.FixtureRequest, persona: str, supervisor: User, clinician: User
) -> None:
    alert = make_alert(clinician)
    http: HttpClient = request.getfixturevalue(persona)
    assert http.post(reverse("supervision_workload_agenda", args=[alert.pk])).status_code == 404


# --- Ask for a repair plan, and the clinician's answer -----------------------------------


def test_the_clinician_sees_the_request_on_their_home_page_and_answers_it(
    as_supervisor: HttpClient,
    as_clinician: HttpClient,
    supervisor: User,
    clinician: User,
    flag: RuptureFlag,
) -> None:
    reply = as_supervisor.post(
        reverse("supervision_repair_plan_request", args=[flag.pk]),
        {"note": "How will you address the rushed endings?"},
    )
    assert reply.status_code == 302
    plan_request = RepairPlanRequest.objects.get(flag=flag)
    assert plan_request.requested_by == supervisor
    assert flag.events.get(action=Action.PLAN_REQUESTED).note == (
        "How will you address the rushed endings?"
    )

    home = as_clinician.get(reverse("home")).content.decode()
    assert "Repair plans asked for" in home
    assert reverse("repair_plan_answer", args=[plan_request.pk]) in home
    assert "How will you address the rushed endings?" in home

    form = as_clinician.get(reverse("repair_plan_answer", args=[plan_request.pk]))
    assert form.status_code == 200
    assert "How will you address the rushed endings?" in form.content.decode()
    answered = as_clinician.post(
        reverse("repair_plan_answer", args=[plan_request.pk]),
        {"plan": "Name the rush next session and leave ten minutes for feedback."},
    )
    assert answered.status_code == 302

    plan_request.refresh_from_db()
    assert plan_request.answered_at is not None
    assert plan_request.plan.startswith("Name the rush")
    event = flag.events.get(action=Action.PLAN_GIVEN)
    assert event.by == clinician
    assert _actions(flag) == [Action.RAISED, Action.PLAN_REQUESTED, Action.PLAN_GIVEN]
    assert "Repair plans asked for" not in as_clinician.get(reverse("home")).content.decode()
    assert (
        "Name the rush"
        in as_supervisor.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    )


def test_an_empty_plan_is_refused_and_nothing_is_answered(
    as_clinician: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    plan_request = supervision.repair_plan_request(
        flag=flag, supervisor=supervisor, note="", now=timezone.now()
    )
    reply = as_clinician.post(reverse("repair_plan_answer", args=[plan_request.pk]), {"plan": " "})
    assert reply.status_code == 400
    plan_request.refresh_from_db()
    assert plan_request.answered_at is None
    assert not flag.events.filter(action=Action.PLAN_GIVEN).exists()


def test_a_plan_request_without_a_note_is_refused(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    reply = as_supervisor.post(reverse("supervision_repair_plan_request", args=[flag.pk]), {})
    assert reply.status_code == 400
    assert not RepairPlanRequest.objects.exists()


def test_a_second_request_while_one_is_unanswered_is_refused(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    url = reverse("supervision_repair_plan_request", args=[flag.pk])
    as_supervisor.post(url, {"note": "First"})
    reply = as_supervisor.post(url, {"note": "Second"})
    assert reply.status_code == 400
    assert RepairPlanRequest.objects.count() == 1


def test_only_the_clinician_answers_a_plan_request(
    as_supervisor: HttpClient,
    as_other_clinician: HttpClient,
    as_admin: HttpClient,
    supervisor: User,
    flag: RuptureFlag,
) -> None:
    plan_request = supervision.repair_plan_request(
        flag=flag, supervisor=supervisor, note="Plan?", now=timezone.now()
    )
    url = reverse("repair_plan_answer", args=[plan_request.pk])
    assert as_supervisor.post(url, {"plan": "Mine"}).status_code == 403
    assert as_other_clinician.post(url, {"plan": "Mine"}).status_code == 404
    assert as_admin.get(url).status_code == 404
    plan_request.refresh_from_db()
    assert plan_request.answered_at is None


def test_a_request_about_a_closed_flag_leaves_the_home_page(
    as_clinician: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    supervision.repair_plan_request(flag=flag, supervisor=supervisor, note="?", now=timezone.now())
    supervision.flag_close_by_supervisor(
        flag=flag, supervisor=supervisor, note="False alarm.", now=timezone.now()
    )
    assert "Repair plans asked for" not in as_clinician.get(reverse("home")).content.decode()


# --- Close with a note -------------------------------------------------------------------


def test_closing_needs_a_note_and_goes_through_the_lifecycle(
    as_supervisor: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    url = reverse("supervision_flag_close", args=[flag.pk])
    assert as_supervisor.get(url).status_code == 200
    refused = as_supervisor.post(url, {"note": ""})
    assert refused.status_code == 400
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.OPEN

    reply = as_supervisor.post(url, {"note": "A misread item; discussed with Bob."})
    assert reply.status_code == 302
    flag.refresh_from_db()
    assert flag.status == RuptureFlag.Status.CLOSED
    assert flag.resolved_at is not None
    event = flag.events.get(action=Action.STATUS)
    assert (event.from_status, event.to_status, event.by) == ("open", "closed", supervisor)
    assert event.note == "A misread item; discussed with Bob."


def test_a_finished_flag_cannot_be_triaged(
    as_supervisor: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    supervision.flag_close_by_supervisor(
        flag=flag, supervisor=supervisor, note="Done.", now=timezone.now()
    )
    before = flag.events.count()
    for name, data in [
        ("supervision_flag_acknowledge", {}),
        ("supervision_flag_agenda", {}),
        ("supervision_repair_plan_request", {"note": "x"}),
        ("supervision_flag_close", {"note": "x"}),
    ]:
        reply = as_supervisor.post(reverse(name, args=[flag.pk]), data)
        assert reply.status_code == 400, name
    assert flag.events.count() == before


def test_every_action_shows_in_the_flags_history(
    as_supervisor: HttpClient, as_clinician: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    as_supervisor.post(reverse("supervision_flag_acknowledge", args=[flag.pk]), {})
    as_supervisor.post(reverse("supervision_flag_agenda", args=[flag.pk]), {})
    as_supervisor.post(reverse("supervision_repair_plan_request", args=[flag.pk]), {"note": "?"})
    as_supervisor.post(reverse("supervision_flag_close", args=[flag.pk]), {"note": "Handled."})

    assert _actions(flag) == [
        Action.RAISED,
        Action.ACKNOWLEDGED,
        Action.AGENDA,
        Action.PLAN_REQUESTED,
        Action.STATUS,
    ]
    html = as_clinician.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    for label in (
        "Acknowledged by the supervisor",
        "Added to the supervision agenda",
        "Repair plan requested",
        "Status changed",
    ):
        assert label in html


# --- Who may triage ----------------------------------------------------------------------


TRIAGE_POSTS = [
    ("supervision_flag_acknowledge", {}),
    ("supervision_flag_agenda", {}),
    ("supervision_repair_plan_request", {"note": "x"}),
    ("supervision_flag_close", {"note": "x"}),
]


def test_the_clinician_reads_their_flag_but_cannot_triage_it(
    as_clinician: HttpClient, flag: RuptureFlag
) -> None:
    for name, data in TRIAGE_POSTS:
        assert as_clinician.post(reverse(name, args=[flag.pk]), data).status_code == 403, name
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_at) == (RuptureFlag.Status.OPEN, None)
    assert _actions(flag) == [Action.RAISED]


@pytest.mark.parametrize("persona", ["as_admin", "as_other_clinician", "as_outsider", "as_client"])
def test_everyone_else_gets_404_on_triage(
    request: pytest.FixtureRequest, persona: str, flag: RuptureFlag
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    for name, data in TRIAGE_POSTS:
        assert http.post(reverse(name, args=[flag.pk]), data).status_code == 404, name
    assert _actions(flag) == [Action.RAISED]


def test_a_former_supervisor_can_no_longer_triage(
    as_supervisor: HttpClient, supervisor: User, clinician: User, flag: RuptureFlag
) -> None:
    end_pairing(supervisor, clinician)
    for name, data in TRIAGE_POSTS:
        assert as_supervisor.post(reverse(name, args=[flag.pk]), data).status_code == 404, name


def test_the_clinicians_own_repair_forms_stay_clinician_only(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    today = timezone.localtime()
    reply = as_supervisor.post(
        reverse("repair_action_new", args=[flag.pk]),
        {
            "strategy": "acknowledge",
            "description": "x",
            "client_response": "y",
            "day": today.date().isoformat(),
            "at": today.strftime("%H:%M"),
        },
    )
    assert reply.status_code == 403
    assert not RepairAction.objects.exists()
    page = as_supervisor.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    assert "Log a repair action" not in page
    assert "Ask for a repair plan" in page


def test_the_supervisor_sees_triage_on_the_flag_page_and_the_clinician_does_not(
    as_supervisor: HttpClient, as_clinician: HttpClient, flag: RuptureFlag
) -> None:
    assert (
        "Close with a note"
        in as_supervisor.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    )
    clinician_page = as_clinician.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    assert "Close with a note" not in clinician_page
    assert "Log a repair action" in clinician_page


def test_the_flag_page_and_the_queue_say_what_is_done_already(
    as_supervisor: HttpClient, supervisor: User, flag: RuptureFlag
) -> None:
    supervision.flag_add_to_agenda(flag=flag, supervisor=supervisor, now=timezone.now())
    supervision.repair_plan_request(flag=flag, supervisor=supervisor, note="?", now=timezone.now())
    page = as_supervisor.get(reverse("flag_detail", args=[flag.pk])).content.decode()
    assert "On the agenda of a coming session" in page
    assert "Repair plan asked for" in page
    assert reverse("supervision_flag_agenda", args=[flag.pk]) not in page
    queue = as_supervisor.get(reverse("review_queue")).content.decode()
    assert "On the agenda" in queue
    assert reverse("supervision_flag_agenda", args=[flag.pk]) not in queue
    assert reverse("supervision_repair_plan_request", args=[flag.pk]) not in queue
