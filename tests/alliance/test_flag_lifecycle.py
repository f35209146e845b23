"""The rupture and repair log: logging a rupture, repairing it, and moving a flag along."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from alliance.models import FlagEvent, RepairAction, RuptureFlag
from alliance.services import flag_transition, repair_action_log, rupture_log
from practice.models import AuditEvent, Client, Episode, Practice, User
from scheduling.models import Appointment, Status
from tests.alliance.helpers import NOW
from tests.factories import ClientFactory, EpisodeFactory, book

pytestmark = pytest.mark.django_db

Flag = RuptureFlag
S = RuptureFlag.Status
Strategy = RepairAction.Strategy


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def episode(client_record: Client) -> Episode:
    return client_record.episodes.get()


@pytest.fixture
def last_session(clinician: User, client_record: Client) -> Appointment:
    return book(
        clinician,
        client_record,
        NOW - timedelta(hours=3),
        status=Status.ATTENDED,
        status_changed_at=NOW - timedelta(hours=2),
    )


@pytest.fixture
def flag(episode: Episode, clinician: User, last_session: Appointment) -> RuptureFlag:
    return rupture_log(
        episode=episode,
        clinician=clinician,
        kind=Flag.Kind.CONFRONTATION,
        marker=Flag.Marker.COMPLAINTS_ABOUT_THERAPIST,
        appointment=last_session,
        note="Said I keep checking the clock.",
        now=NOW - timedelta(hours=1),
    )


def move(
    flag: RuptureFlag, to: str, actor: User, note: str = "Discussed in supervision."
) -> RuptureFlag:
    return flag_transition(flag=flag, to_status=to, note=note, actor=actor, now=NOW)


def repair(flag: RuptureFlag, actor: User, **changes: object) -> RepairAction:
    fields: dict[str, object] = {
        "flag": flag,
        "actor": actor,
        "strategy": Strategy.ACKNOWLEDGE_OWN_CONTRIBUTION,
        "description": "Said I had been distracted and that it was mine, not theirs.",
        "client_response": "Relieved; talked about feeling unimportant at work too.",
        "performed_at": NOW - timedelta(minutes=30),
        "appointment": None,
        "now": NOW,
    }
    fields.update(changes)
    return repair_action_log(**fields)  # type: ignore[arg-type]


def history(flag: RuptureFlag) -> list[tuple[str, str, str]]:
    return [(e.action, e.from_status, e.to_status) for e in flag.events.order_by("at", "pk")]


# Logging a rupture


def test_a_logged_rupture_keeps_kind_marker_session_and_note(
    flag: RuptureFlag, clinician: User, episode: Episode, last_session: Appointment
) -> None:
    flag.refresh_from_db()
    assert (flag.rule, flag.status, flag.resolved_at) == (Flag.Rule.LOGGED, S.OPEN, None)
    assert (flag.kind, flag.marker) == ("confrontation", "complaints_therapist")
    assert (flag.episode, flag.client, flag.clinician) == (episode, episode.client, clinician)
    assert (flag.appointment, flag.logged_by) == (last_session, clinician)
    assert flag.severity == Flag.SEVERITY[Flag.Rule.LOGGED]
    assert flag.evidence["appointment_id"] == last_session.pk
    assert flag.summary == "Confrontation: Complaints about the therapist."
    [raised] = flag.events.all()
    assert (raised.action, raised.by, raised.note) == ("raised", clinician, flag.note)
    assert AuditEvent.objects.filter(action="rupture.log", object_id=str(flag.pk)).exists()


def test_two_ruptures_logged_in_the_same_moment_are_both_kept(
    episode: Episode, clinician: User
) -> None:
    for marker in (Flag.Marker.MINIMAL_RESPONSE, Flag.Marker.TOPIC_SHIFTING):
        rupture_log(
            episode=episode,
            clinician=clinician,
            kind=Flag.Kind.WITHDRAWAL,
            marker=marker,
            appointment=None,
            note="",
            now=NOW,
        )
    assert sorted(RuptureFlag.objects.values_list("marker", flat=True)) == [
        "minimal_response",
        "topic_shifting",
    ]


def test_a_withdrawal_needs_a_withdrawal_marker(episode: Episode, clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        rupture_log(
            episode=episode,
            clinician=clinician,
            kind=Flag.Kind.WITHDRAWAL,
            marker=Flag.Marker.REJECTING_INTERVENTION,
            appointment=None,
            note="",
            now=NOW,
        )
    assert refused.value.message_dict == {
        "marker": ["That is a confrontation marker; choose a withdrawal marker."]
    }
    assert not RuptureFlag.objects.exists()


def test_a_confrontation_needs_a_confrontation_marker(episode: Episode, clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        rupture_log(
            episode=episode,
            clinician=clinician,
            kind=Flag.Kind.CONFRONTATION,
            marker=Flag.Marker.DEFERENCE,
            appointment=None,
            note="",
            now=NOW,
        )
    assert "withdrawal marker" in refused.value.message_dict["marker"][0]
    assert not RuptureFlag.objects.exists()


@pytest.mark.parametrize(
    ("kind", "marker"),
    [("withdrawal", m) for m in Flag.WITHDRAWAL_MARKERS]
    + [("confrontation", m) for m in Flag.Marker.values if m not in Flag.WITHDRAWAL_MARKERS],
)
def test_every_marker_is_accepted_with_its_own_kind(
    episode: Episode, clinician: User, kind: str, marker: str
) -> None:
    flag = rupture_log(
        episode=episode,
        clinician=clinician,
        kind=kind,
        marker=marker,
        appointment=None,
        note="",
        now=NOW,
    )
    assert (flag.kind, flag.marker) == (kind, marker)


def test_an_unknown_kind_or_marker_is_refused_by_name(episode: Episode, clinician: User) -> None:
    with pytest.raises(ValidationError) as refused:
        rupture_log(
            episode=episode,
            clinician=clinician,
            kind="sulking",
            marker="eye_rolling",
            appointment=None,
            note="",
            now=NOW,
        )
    assert set(refused.value.message_dict) == {"kind", "marker"}
    assert not RuptureFlag.objects.exists()


def test_a_rupture_cannot_cite_another_episodes_session(
    episode: Episode, clinician: User, practice: Practice
) -> None:
    other = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=other, clinician=clinician)
    elsewhere = book(clinician, other, NOW - timedelta(days=1), status=Status.ATTENDED)
    with pytest.raises(ValidationError) as refused:
        rupture_log(
            episode=episode,
            clinician=clinician,
            kind=Flag.Kind.WITHDRAWAL,
            marker=Flag.Marker.MINIMAL_RESPONSE,
            appointment=elsewhere,
            note="",
            now=NOW,
        )
    assert "another episode" in refused.value.message_dict["appointment"][0]
    assert not RuptureFlag.objects.exists()


# Moving a flag along


def test_every_step_is_kept_in_the_history_with_who_and_why(
    flag: RuptureFlag, clinician: User, supervisor: User
) -> None:
    flag = move(flag, S.IN_REPAIR, clinician, "Named it next session.")
    flag = move(flag, S.REPAIRED, supervisor, "Client says it is settled.")
    flag = move(flag, S.OPEN, clinician, "It came back.")
    assert history(flag) == [
        ("raised", "", "open"),
        ("status", "open", "in_repair"),
        ("status", "in_repair", "repaired"),
        ("status", "repaired", "open"),
    ]
    steps = list(flag.events.filter(action="status").order_by("pk"))
    assert [(e.by, e.note, e.at) for e in steps] == [
        (clinician, "Named it next session.", NOW),
        (supervisor, "Client says it is settled.", NOW),
        (clinician, "It came back.", NOW),
    ]
    assert (
        AuditEvent.objects.filter(object_id=str(flag.pk), action__startswith="flag.").count() == 3
    )


@pytest.mark.parametrize("finish", [S.REPAIRED, S.UNRESOLVED, S.CLOSED])
def test_a_finished_flag_has_a_resolution_time_and_loses_it_when_reopened(
    flag: RuptureFlag, clinician: User, finish: str
) -> None:
    flag = move(flag, finish, clinician)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at, flag.is_open) == (finish, NOW, False)
    assert flag not in RuptureFlag.objects.open()
    flag = move(flag, S.OPEN, clinician)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == (S.OPEN, None)
    assert flag in RuptureFlag.objects.open()


def test_an_unresolved_flag_can_go_back_into_repair(flag: RuptureFlag, clinician: User) -> None:
    flag = move(flag, S.UNRESOLVED, clinician)
    flag = move(flag, S.IN_REPAIR, clinician, "Trying again after supervision.")
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == (S.IN_REPAIR, None)


@pytest.mark.parametrize(
    ("path", "refused", "message"),
    [
        ([], S.OPEN, "A flag that is open cannot become open."),
        ([S.CLOSED], S.IN_REPAIR, "A flag that is closed cannot become in repair."),
        ([S.REPAIRED], S.UNRESOLVED, "A flag that is repaired cannot become unresolved."),
        ([S.IN_REPAIR], S.OPEN, "A flag that is in repair cannot become open."),
        ([], "forgotten", "A flag that is open cannot become forgotten."),
    ],
)
def test_a_step_the_lifecycle_does_not_allow_is_refused_and_says_so(
    flag: RuptureFlag, clinician: User, path: list[str], refused: str, message: str
) -> None:
    for step in path:
        flag = move(flag, step, clinician)
    before = history(flag)
    with pytest.raises(ValidationError) as error:
        move(flag, refused, clinician)
    assert error.value.message_dict == {"to_status": [message]}
    flag.refresh_from_db()
    assert flag.status == (path[-1] if path else S.OPEN)
    assert history(flag) == before


@pytest.mark.parametrize("note", ["", "   \n"])
def test_a_step_needs_a_note(flag: RuptureFlag, clinician: User, note: str) -> None:
    with pytest.raises(ValidationError) as refused:
        move(flag, S.CLOSED, clinician, note)
    assert "Say why" in refused.value.message_dict["note"][0]
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == (S.OPEN, None)
    assert history(flag) == [("raised", "", "open")]


def test_a_stale_copy_of_the_flag_cannot_skip_the_lifecycle(
    flag: RuptureFlag, clinician: User
) -> None:
    stale = RuptureFlag.objects.get(pk=flag.pk)
    move(flag, S.CLOSED, clinician)
    # The page was open in another tab: it still shows "open".
    with pytest.raises(ValidationError, match="closed cannot become in repair"):
        move(stale, S.IN_REPAIR, clinician)


# Repair


def test_repair_on_an_open_flag_moves_it_into_repair(
    flag: RuptureFlag, clinician: User, last_session: Appointment
) -> None:
    action = repair(flag, clinician, appointment=last_session)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == (S.IN_REPAIR, None)
    assert (action.flag, action.by, action.appointment) == (flag, clinician, last_session)
    assert action.strategy == Strategy.ACKNOWLEDGE_OWN_CONTRIBUTION
    assert action.approach == "Exploratory"
    assert action.performed_at == NOW - timedelta(minutes=30)
    assert history(flag) == [
        ("raised", "", "open"),
        ("repair", "", ""),
        ("status", "open", "in_repair"),
    ]
    assert flag.events.get(action="repair").note.startswith("Acknowledge one's own contribution:")


def test_more_repair_on_a_flag_in_repair_adds_to_its_history(
    flag: RuptureFlag, clinician: User
) -> None:
    repair(flag, clinician)
    second = repair(flag, clinician, strategy=Strategy.GIVE_RATIONALE)
    assert second.approach == "Immediate"
    flag.refresh_from_db()
    assert flag.status == S.IN_REPAIR
    assert [e.action for e in flag.events.all()] == ["raised", "repair", "status", "repair"]
    assert flag.repairs.count() == 2


@pytest.mark.parametrize("finish", [S.REPAIRED, S.UNRESOLVED, S.CLOSED])
def test_repair_on_a_finished_flag_is_refused(
    flag: RuptureFlag, clinician: User, finish: str
) -> None:
    flag = move(flag, finish, clinician)
    before = history(flag)
    with pytest.raises(ValidationError) as refused:
        repair(flag, clinician)
    assert refused.value.message_dict["__all__"] == [
        "This flag is finished. Reopen it first to log more repair work."
    ]
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == (finish, NOW)
    assert not RepairAction.objects.exists()
    assert history(flag) == before


def test_a_repair_needs_a_strategy_what_was_done_and_how_it_landed(
    flag: RuptureFlag, clinician: User
) -> None:
    with pytest.raises(ValidationError) as refused:
        repair(
            flag,
            clinician,
            strategy="apologise_profusely",
            description=" ",
            client_response="",
            performed_at=NOW + timedelta(hours=1),
        )
    assert set(refused.value.message_dict) == {
        "strategy",
        "description",
        "client_response",
        "performed_at",
    }
    flag.refresh_from_db()
    assert flag.status == S.OPEN
    assert not RepairAction.objects.exists()
    assert FlagEvent.objects.filter(flag=flag).count() == 1


def test_a_repair_cannot_cite_another_episodes_session(
    flag: RuptureFlag, clinician: User, practice: Practice
) -> None:
    other = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=other, clinician=clinician)
    elsewhere = book(clinician, other, NOW - timedelta(days=1), status=Status.ATTENDED)
    with pytest.raises(ValidationError) as refused:
        repair(flag, clinician, appointment=elsewhere)
    assert list(refused.value.message_dict) == ["appointment"]
    assert not RepairAction.objects.exists()
