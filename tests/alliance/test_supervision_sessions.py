"""Supervision sessions: planning one with a current supervisee, the agenda that fills
itself (flags added to it, open safety flags, each once), attendance and notes, decisions
per agenda item, and follow-ups due by the next session."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import supervision
from alliance.models import AgendaItem, FlagEvent, FollowUp, RuptureFlag, SupervisionSession
from practice.models import Client, Episode, Practice, User
from tests.alliance.supervision_helpers import end_pairing, make_flag
from tests.factories import ClientFactory, EpisodeFactory

pytestmark = pytest.mark.django_db

Rule = RuptureFlag.Rule


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


def _plan(supervisor: User, supervisee: User, days: int = 7) -> SupervisionSession:
    return supervision.supervision_session_create(
        supervisor=supervisor,
        supervisee=supervisee,
        scheduled_for=timezone.now() + timedelta(days=days),
        now=timezone.now(),
    )


def _agenda_flags(session: SupervisionSession) -> list[tuple[int | None, bool]]:
    return sorted(session.agenda_items.values_list("flag_id", "automatic"))


# --- Planning a session ------------------------------------------------------------------


def test_a_supervisor_plans_a_session_with_a_supervisee(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    day = timezone.localdate() + timedelta(days=5)
    reply = as_supervisor.post(
        reverse("supervision_session_new"),
        {"supervisee": clinician.pk, "day": day.isoformat(), "at": "14:30"},
    )
    assert reply.status_code == 302
    session = SupervisionSession.objects.get()
    assert (session.supervisor, session.supervisee) == (supervisor, clinician)
    assert session.attendance == SupervisionSession.Attendance.PLANNED
    local = session.scheduled_for.astimezone(session.practice.tz)
    assert (local.date(), local.strftime("%H:%M")) == (day, "14:30")
    assert reply["Location"] == reverse("supervision_session_detail", args=[session.pk])


@pytest.mark.parametrize(
    "data",
    [
        {"supervisee": "", "day": "2026-12-01", "at": "10:00"},
        {"supervisee": "OTHER", "day": "2026-12-01", "at": "10:00"},
        {"supervisee": "SELF", "day": "not-a-date", "at": "10:00"},
        {"supervisee": "SELF", "day": "2026-12-01", "at": "25:00"},
        {"supervisee": "SELF", "day": "3026-12-01", "at": "10:00"},
    ],
)
def test_bad_input_is_a_400_and_plans_nothing(
    as_supervisor: HttpClient, clinician: User, other_clinician: User, data: dict[str, str]
) -> None:
    data = {**data}
    data["supervisee"] = {"OTHER": str(other_clinician.pk), "SELF": str(clinician.pk)}.get(
        data["supervisee"], data["supervisee"]
    )
    reply = as_supervisor.post(reverse("supervision_session_new"), data)
    assert reply.status_code == 400
    assert not SupervisionSession.objects.exists()


def test_a_former_supervisee_cannot_get_a_new_session(supervisor: User, clinician: User) -> None:
    from django.core.exceptions import ValidationError

    end_pairing(supervisor, clinician)
    with pytest.raises(ValidationError):
        _plan(supervisor, clinician)
    assert not SupervisionSession.objects.exists()


# --- The agenda fills itself -------------------------------------------------------------


def test_the_agenda_takes_flags_added_before_and_every_open_safety_flag_once(
    as_supervisor: HttpClient, supervisor: User, clinician: User, episode: Episode
) -> None:
    rupture = make_flag(episode, Rule.LOW_ALLIANCE)
    safety = make_flag(episode, Rule.SAFETY)
    make_flag(episode, Rule.SAFETY, status=RuptureFlag.Status.CLOSED, resolved_at=timezone.now())
    supervision.flag_add_to_agenda(flag=rupture, supervisor=supervisor, now=timezone.now())
    assert AgendaItem.objects.get().session is None

    session = _plan(supervisor, clinician)

    assert _agenda_flags(session) == sorted([(rupture.pk, False), (safety.pk, True)])
    # Viewing again, twice, adds nothing more.
    for _ in range(2):
        assert (
            as_supervisor.get(reverse("supervision_session_detail", args=[session.pk])).status_code
            == 200
        )
    assert session.agenda_items.count() == 2
    assert safety.events.filter(action=FlagEvent.Action.AGENDA).count() == 1


def test_a_safety_flag_raised_later_joins_when_the_planned_session_is_viewed(
    as_supervisor: HttpClient, supervisor: User, clinician: User, episode: Episode
) -> None:
    session = _plan(supervisor, clinician)
    assert session.agenda_items.count() == 0
    safety = make_flag(episode, Rule.SAFETY, summary="PHQ-9 item 9 answered 2.")

    page = as_supervisor.get(reverse("supervision_session_detail", args=[session.pk]))

    assert "PHQ-9 item 9 answered 2." in page.content.decode()
    assert "added by itself" in page.content.decode()
    assert _agenda_flags(session) == [(safety.pk, True)]
    event = safety.events.get(action=FlagEvent.Action.AGENDA)
    assert event.by is None


def test_a_session_that_took_place_takes_no_new_items(
    as_supervisor: HttpClient, supervisor: User, clinician: User, episode: Episode
) -> None:
    session = _plan(supervisor, clinician, days=-1)
    supervision.supervision_session_record(
        session=session, supervisor=supervisor, attendance="attended", notes=""
    )
    make_flag(episode, Rule.SAFETY)
    as_supervisor.get(reverse("supervision_session_detail", args=[session.pk]))
    assert session.agenda_items.count() == 0


def test_safety_flags_of_other_clinicians_clients_stay_off_the_agenda(
    supervisor: User, clinician: User, other_clinician: User, practice: Practice
) -> None:
    client = ClientFactory.create(practice=practice)
    make_flag(EpisodeFactory.create(client=client, clinician=other_clinician), Rule.SAFETY)
    session = _plan(supervisor, clinician)
    assert session.agenda_items.count() == 0


def test_a_flag_added_with_a_session_planned_goes_straight_onto_it(
    as_supervisor: HttpClient, supervisor: User, clinician: User, episode: Episode
) -> None:
    session = _plan(supervisor, clinician)
    flag = make_flag(episode, Rule.LOGGED, summary="Withdrawal: denial.")
    as_supervisor.post(reverse("supervision_flag_agenda", args=[flag.pk]))
    page = as_supervisor.get(reverse("supervision_session_detail", args=[session.pk]))
    assert "Logged by the clinician" in page.content.decode()
    assert _agenda_flags(session) == [(flag.pk, False)]


# --- Attendance, notes, topics and decisions ---------------------------------------------


def test_recording_attendance_and_notes(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician, days=0)
    url = reverse("supervision_session_record", args=[session.pk])
    assert as_supervisor.post(url, {"attendance": "maybe", "notes": "x"}).status_code == 400
    session.refresh_from_db()
    assert session.attendance == "planned"

    reply = as_supervisor.post(url, {"attendance": "attended", "notes": "Worked on endings."})
    assert reply.status_code == 302
    session.refresh_from_db()
    assert (session.attendance, session.notes) == ("attended", "Worked on endings.")


def test_a_decision_per_agenda_item_is_kept_and_goes_into_the_flags_history(
    as_supervisor: HttpClient, supervisor: User, clinician: User, episode: Episode
) -> None:
    flag = make_flag(episode, Rule.SAFETY)
    session = _plan(supervisor, clinician)
    item = session.agenda_items.get()
    url = reverse("supervision_agenda_decide", args=[item.pk])

    assert as_supervisor.post(url, {"decision": "  "}).status_code == 400
    item.refresh_from_db()
    assert item.decision == ""

    reply = as_supervisor.post(url, {"decision": "Safety plan reviewed; weekly check-ins."})
    assert reply.status_code == 302
    item.refresh_from_db()
    assert item.decision == "Safety plan reviewed; weekly check-ins."
    assert flag.events.filter(
        action=FlagEvent.Action.NOTE, note__contains="weekly check-ins"
    ).exists()
    page = as_supervisor.get(reverse("supervision_session_detail", args=[session.pk]))
    assert "Safety plan reviewed; weekly check-ins." in page.content.decode()


def test_a_topic_of_the_supervisors_own(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    url = reverse("supervision_topic_add", args=[session.pk])
    assert as_supervisor.post(url, {"topic": ""}).status_code == 400
    assert as_supervisor.post(url, {"topic": "A mistake I made"}).status_code == 302
    assert session.agenda_items.get().topic == "A mistake I made"


# --- Follow-ups --------------------------------------------------------------------------


def test_a_follow_up_is_due_by_the_next_session_by_default(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician, days=1)
    following = _plan(supervisor, clinician, days=15)
    reply = as_supervisor.post(
        reverse("supervision_follow_up_new", args=[session.pk]),
        {"description": "Read Safran & Muran ch. 4", "owner": clinician.pk, "due_by": ""},
    )
    assert reply.status_code == 302
    follow_up = FollowUp.objects.get()
    assert follow_up.owner == clinician
    assert follow_up.due_by == following.scheduled_for.astimezone(session.practice.tz).date()


def test_without_a_next_session_a_follow_up_needs_a_date(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    url = reverse("supervision_follow_up_new", args=[session.pk])
    reply = as_supervisor.post(url, {"description": "Call", "owner": clinician.pk})
    assert reply.status_code == 400
    assert "No later session is planned yet" in reply.content.decode()
    assert not FollowUp.objects.exists()

    reply = as_supervisor.post(
        url, {"description": "Call", "owner": supervisor.pk, "due_by": "2027-01-15"}
    )
    assert reply.status_code == 302
    assert FollowUp.objects.get().due_by == date(2027, 1, 15)


def test_a_follow_up_for_someone_outside_the_session_is_refused(
    as_supervisor: HttpClient, supervisor: User, clinician: User, other_clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    reply = as_supervisor.post(
        reverse("supervision_follow_up_new", args=[session.pk]),
        {"description": "Call", "owner": other_clinician.pk, "due_by": "2027-01-15"},
    )
    assert reply.status_code == 400
    assert not FollowUp.objects.exists()


def test_the_owner_or_the_supervisor_marks_a_follow_up_done(
    as_supervisor: HttpClient, as_clinician: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    mine = FollowUp.objects.create(
        session=session, description="Mine", owner=supervisor, due_by=date(2027, 1, 1)
    )
    theirs = FollowUp.objects.create(
        session=session, description="Theirs", owner=clinician, due_by=date(2027, 1, 1)
    )
    # The supervisee owns "Theirs", not "Mine".
    assert (
        as_clinician.post(reverse("supervision_follow_up_done", args=[mine.pk])).status_code == 403
    )
    assert (
        as_clinician.post(reverse("supervision_follow_up_done", args=[theirs.pk])).status_code
        == 302
    )
    assert (
        as_supervisor.post(reverse("supervision_follow_up_done", args=[mine.pk])).status_code == 302
    )
    again = as_supervisor.post(reverse("supervision_follow_up_done", args=[mine.pk]))
    assert again.status_code == 400
    assert FollowUp.objects.open().count() == 0


# --- Who sees a session ------------------------------------------------------------------


def test_the_supervisee_reads_the_session_but_cannot_record_it(
    as_clinician: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    page = as_clinician.get(reverse("supervision_session_detail", args=[session.pk]))
    assert page.status_code == 200
    assert "Save the session" not in page.content.decode()
    for name, data in [
        ("supervision_session_record", {"attendance": "attended", "notes": ""}),
        ("supervision_topic_add", {"topic": "x"}),
        ("supervision_follow_up_new", {"description": "x", "owner": clinician.pk}),
    ]:
        assert as_clinician.post(reverse(name, args=[session.pk]), data).status_code == 403


@pytest.mark.parametrize("persona", ["as_admin", "as_other_clinician", "as_outsider", "as_client"])
def test_everyone_else_gets_404_on_a_session(
    request: pytest.FixtureRequest, persona: str, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    item = supervision.agenda_topic_add(
        session=session, supervisor=supervisor, topic="x", now=timezone.now()
    )
    follow_up = FollowUp.objects.create(
        session=session, description="x", owner=supervisor, due_by=date(2027, 1, 1)
    )
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("supervision_session_detail", args=[session.pk])).status_code == 404
    assert (
        http.post(
            reverse("supervision_session_record", args=[session.pk]), {"attendance": "attended"}
        ).status_code
        == 404
    )
    assert (
        http.post(
            reverse("supervision_agenda_decide", args=[item.pk]), {"decision": "x"}
        ).status_code
        == 404
    )
    assert http.post(reverse("supervision_follow_up_done", args=[follow_up.pk])).status_code == 404


@pytest.mark.parametrize("persona", ["as_admin", "as_clinician", "as_client"])
def test_session_list_and_planning_are_for_supervisors(
    request: pytest.FixtureRequest, persona: str, supervisor: User
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("supervision_session_list")).status_code == 404
    assert http.get(reverse("supervision_session_new")).status_code == 404


def test_the_session_list_shows_the_supervisors_sessions(
    as_supervisor: HttpClient, supervisor: User, clinician: User
) -> None:
    session = _plan(supervisor, clinician)
    page = as_supervisor.get(reverse("supervision_session_list"))
    assert page.status_code == 200
    assert reverse("supervision_session_detail", args=[session.pk]) in page.content.decode()
