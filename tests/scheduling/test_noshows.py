"""No-shows: the sweep marks them, the clinician confirms or corrects, rates over 90 days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import AuditEvent, Client, Practice, User
from scheduling.models import Appointment, AppointmentStatusChange, Status
from scheduling.noshows import (
    no_show_rates_by_client,
    no_show_rates_by_clinician,
    noshow_review,
    noshow_sweep,
)
from tests.factories import ClientFactory, EpisodeFactory, book, staff

BERLIN = ZoneInfo("Europe/Berlin")
Via = AppointmentStatusChange.Via
NOW = datetime(2026, 10, 1, 10, 0, tzinfo=BERLIN)  # Thursday 1 October 2026


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def new_client(practice: Practice, clinician: User, last_name: str = "Quist") -> Client:
    record = ClientFactory.create(practice=practice, first_name="Zora", last_name=last_name)
    EpisodeFactory.create(client=record, clinician=clinician)
    return record


def ending_at(clinician: User, client: Client, end: datetime, **fields: Any) -> Appointment:
    """A 50-minute session that ends at ``end``."""
    return book(clinician, client, end - timedelta(minutes=50), **fields)


def auto_no_show(clinician: User, client: Client, end: datetime) -> Appointment:
    appointment = ending_at(clinician, client, end)
    assert noshow_sweep(now=NOW) == [appointment.pk]
    appointment.refresh_from_db()
    return appointment


# --- The sweep ---------------------------------------------------------------------------


def test_the_sweep_marks_open_sessions_once_end_plus_grace_has_passed(
    practice: Practice, clinician: User, other_clinician: User, client_record: Client
) -> None:
    assert practice.no_show_grace == timedelta(minutes=15)
    others = [new_client(practice, clinician, f"Client{n}") for n in range(5)]
    on_the_boundary = ending_at(clinician, client_record, NOW - timedelta(minutes=15))
    # A second later, with another clinician (one clinician's sessions cannot overlap).
    inside_grace = ending_at(
        other_clinician,
        new_client(practice, other_clinician, "Carols"),
        NOW - timedelta(minutes=14, seconds=59),
    )
    confirmed_yesterday = ending_at(
        clinician, others[1], NOW - timedelta(days=1), status=Status.CONFIRMED
    )
    attended = ending_at(clinician, others[2], NOW - timedelta(hours=3), status=Status.ATTENDED)
    late_cancelled = ending_at(
        clinician, others[3], NOW - timedelta(hours=5), status=Status.LATE_CANCELLED
    )
    cancelled = ending_at(
        clinician, others[4], NOW - timedelta(hours=5), status=Status.CANCELLED_BY_CLINICIAN
    )
    future = ending_at(clinician, others[0], NOW + timedelta(hours=2))

    marked = noshow_sweep(now=NOW)

    assert sorted(marked) == sorted([on_the_boundary.pk, confirmed_yesterday.pk])
    for appointment in (on_the_boundary, confirmed_yesterday):
        appointment.refresh_from_db()
        assert appointment.status == Status.NO_SHOW
        assert appointment.auto_no_show and appointment.needs_review
        assert appointment.status_changed_at == NOW
    untouched = {
        inside_grace: Status.SCHEDULED,
        attended: Status.ATTENDED,
        late_cancelled: Status.LATE_CANCELLED,
        cancelled: Status.CANCELLED_BY_CLINICIAN,
        future: Status.SCHEDULED,
    }
    for appointment, status in untouched.items():
        appointment.refresh_from_db()
        assert appointment.status == status
        assert not appointment.auto_no_show and not appointment.needs_review


def test_each_practice_has_its_own_grace(
    practice: Practice, other_practice: Practice, clinician: User, client_record: Client
) -> None:
    other_practice.no_show_grace = timedelta(hours=1)
    other_practice.save()
    elsewhere = staff(other_practice, "clinician", email="olaf@else.example")
    their_client = new_client(other_practice, elsewhere)
    ours = ending_at(clinician, client_record, NOW - timedelta(minutes=30))
    theirs = ending_at(elsewhere, their_client, NOW - timedelta(minutes=30))

    assert noshow_sweep(now=NOW) == [ours.pk]
    assert noshow_sweep(now=NOW + timedelta(minutes=30)) == [theirs.pk]


def test_the_sweep_is_idempotent_and_leaves_one_history_row_each(
    clinician: User, client_record: Client
) -> None:
    appointment = ending_at(
        clinician, client_record, NOW - timedelta(hours=1), status=Status.CONFIRMED
    )

    assert noshow_sweep(now=NOW) == [appointment.pk]
    assert noshow_sweep(now=NOW) == []
    assert noshow_sweep(now=NOW + timedelta(days=1)) == []

    change = AppointmentStatusChange.objects.get(appointment=appointment)
    assert change.from_status == Status.CONFIRMED
    assert change.to_status == Status.NO_SHOW
    assert change.via == Via.SYSTEM
    assert change.changed_by is None
    assert change.at == NOW
    assert change.reason == (
        "no attendance recorded by 15 minutes after the end; please confirm or correct"
    )
    assert AuditEvent.objects.filter(action="appointment.auto_no_show").count() == 1


def test_a_sweep_that_missed_ticks_catches_up(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    other = new_client(practice, clinician)
    # Workers were down for two days: both sessions ended while nothing ran.
    first = ending_at(clinician, client_record, NOW - timedelta(days=2))
    second = ending_at(clinician, other, NOW - timedelta(days=1))

    assert sorted(noshow_sweep(now=NOW)) == sorted([first.pk, second.pk])


def test_the_sweep_marks_nothing_when_nothing_is_due(clinician: User) -> None:
    assert noshow_sweep(now=NOW) == []


# --- The clinician's review --------------------------------------------------------------


def test_the_clinician_confirms_a_no_show(clinician: User, client_record: Client) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))

    reviewed = noshow_review(appointment=appointment, actor=clinician, attended=False)

    reviewed.refresh_from_db()
    assert reviewed.status == Status.NO_SHOW
    assert not reviewed.needs_review
    assert reviewed.auto_no_show
    last = reviewed.status_changes.last()
    assert last is not None
    assert (last.to_status, last.via, last.changed_by, last.reason) == (
        Status.NO_SHOW,
        Via.STAFF,
        clinician,
        "confirmed no-show",
    )
    assert AuditEvent.objects.filter(action="appointment.no_show_confirmed").count() == 1


def test_the_clinician_corrects_it_and_the_history_keeps_both(
    clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))

    noshow_review(appointment=appointment, actor=clinician, attended=True)

    appointment.refresh_from_db()
    assert appointment.status == Status.ATTENDED
    assert not appointment.needs_review
    history = [
        (change.from_status, change.to_status, change.via, change.reason)
        for change in appointment.status_changes.all()
    ]
    assert history == [
        (
            Status.SCHEDULED,
            Status.NO_SHOW,
            Via.SYSTEM,
            "no attendance recorded by 15 minutes after the end; please confirm or correct",
        ),
        (Status.NO_SHOW, Status.ATTENDED, Via.STAFF, "corrected: the client attended"),
    ]
    # The corrected session is not swept again.
    assert noshow_sweep(now=NOW + timedelta(days=1)) == []


def test_the_review_refuses_sessions_not_awaiting_it(
    practice: Practice, clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    noshow_review(appointment=appointment, actor=clinician, attended=False)
    recorded_by_hand = ending_at(
        clinician, new_client(practice, clinician), NOW - timedelta(hours=3), status="no_show"
    )
    still_open = ending_at(clinician, new_client(practice, clinician), NOW + timedelta(hours=3))

    for target in (appointment, recorded_by_hand, still_open):
        with pytest.raises(ValidationError, match="not an automatic no-show awaiting review"):
            noshow_review(appointment=target, actor=clinician, attended=True)
    appointment.refresh_from_db()
    assert appointment.status == Status.NO_SHOW


# --- Rates -------------------------------------------------------------------------------


def test_no_show_rates_over_the_last_90_days(
    practice: Practice,
    clinician: User,
    other_clinician: User,
    client_record: Client,
    django_assert_num_queries: object,
) -> None:
    quiet = new_client(practice, clinician, "Quiet")
    seen_by_carol = new_client(practice, other_clinician, "Carol-client")

    def at(days_ago: float, hour: int = 9) -> datetime:
        return (NOW - timedelta(days=days_ago)).replace(hour=hour)

    for days_ago in (1, 8, 15):
        book(clinician, client_record, at(days_ago), status=Status.ATTENDED)
    book(clinician, client_record, at(22), status=Status.NO_SHOW)
    book(clinician, client_record, at(29), status=Status.LATE_CANCELLED)
    book(clinician, client_record, at(36), status=Status.CANCELLED_BY_CLIENT)
    book(clinician, client_record, at(91), status=Status.NO_SHOW)  # outside the window
    book(clinician, client_record, NOW + timedelta(days=2), status=Status.SCHEDULED)
    book(other_clinician, seen_by_carol, at(3, hour=11), status=Status.NO_SHOW)

    with django_assert_num_queries(1):  # type: ignore[operator]
        by_client = {
            c.pk: (c.sessions, c.no_shows, c.no_show_rate)
            for c in no_show_rates_by_client(practice, now=NOW)
        }
    assert by_client == {
        client_record.pk: (4, 1, 0.25),
        quiet.pk: (0, 0, 0.0),
        seen_by_carol.pk: (1, 1, 1.0),
    }

    with django_assert_num_queries(1):  # type: ignore[operator]
        by_clinician = {
            u.pk: (u.sessions, u.no_shows, u.no_show_rate)
            for u in no_show_rates_by_clinician(practice, now=NOW)
        }
    assert by_clinician == {clinician.pk: (4, 1, 0.25), other_clinician.pk: (1, 1, 1.0)}


def test_rates_are_scoped_to_the_practice(
    practice: Practice, other_practice: Practice, clinician: User, outsider: User
) -> None:
    assert list(no_show_rates_by_client(other_practice, now=NOW)) == []
    assert [u.pk for u in no_show_rates_by_clinician(other_practice, now=NOW)] == [outsider.pk]
    assert [u.pk for u in no_show_rates_by_clinician(practice, now=NOW)] == [clinician.pk]


# --- Pages -------------------------------------------------------------------------------


def test_the_list_shows_the_clinicians_own_no_shows_to_review(
    as_clinician: HttpClient,
    practice: Practice,
    clinician: User,
    other_clinician: User,
    client_record: Client,
) -> None:
    mine = ending_at(clinician, client_record, NOW - timedelta(hours=1))
    carols_client = new_client(practice, other_clinician, "Notmine")
    ending_at(other_clinician, carols_client, NOW - timedelta(hours=1))
    reviewed = ending_at(
        clinician, new_client(practice, clinician, "Reviewed"), NOW - timedelta(hours=3)
    )
    noshow_sweep(now=NOW)
    noshow_review(appointment=reviewed, actor=clinician, attended=False)

    response = as_clinician.get(reverse("noshow_review_list"))

    assert response.status_code == 200
    assert list(response.context["appointments"]) == [mine]
    body = response.content.decode()
    assert client_record.full_name in body
    assert "Notmine" not in body
    assert "Reviewed" not in body
    assert "Confirm no-show" in body
    assert "They attended" in body


def test_confirming_and_correcting_through_the_page(
    as_clinician: HttpClient, practice: Practice, clinician: User, client_record: Client
) -> None:
    confirm = ending_at(clinician, client_record, NOW - timedelta(hours=1))
    correct = ending_at(clinician, new_client(practice, clinician), NOW - timedelta(hours=3))
    noshow_sweep(now=NOW)

    response = as_clinician.post(
        reverse("noshow_review_action", args=[confirm.pk]), {"attended": "no"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("noshow_review_list")
    response = as_clinician.post(
        reverse("noshow_review_action", args=[correct.pk]), {"attended": "yes"}, follow=True
    )
    assert "Corrected: the client attended." in response.content.decode()

    confirm.refresh_from_db()
    correct.refresh_from_db()
    assert (confirm.status, confirm.needs_review) == (Status.NO_SHOW, False)
    assert (correct.status, correct.needs_review) == (Status.ATTENDED, False)
    assert list(as_clinician.get(reverse("noshow_review_list")).context["appointments"]) == []


def test_a_second_answer_or_a_bad_one_changes_nothing(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    url = reverse("noshow_review_action", args=[appointment.pk])

    response = as_clinician.post(url, {"attended": "maybe"}, follow=True)
    assert "Confirm no-show" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.needs_review

    as_clinician.post(url, {"attended": "no"})
    response = as_clinician.post(url, {"attended": "yes"}, follow=True)
    assert "not an automatic no-show awaiting review" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == Status.NO_SHOW
    assert appointment.status_changes.count() == 2


def test_the_action_takes_post_only(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    url = reverse("noshow_review_action", args=[appointment.pk])
    assert as_clinician.get(url).status_code == 405


def test_other_clinicians_and_outsiders_get_404(
    as_other_clinician: HttpClient,
    as_outsider: HttpClient,
    clinician: User,
    client_record: Client,
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    url = reverse("noshow_review_action", args=[appointment.pk])
    for http in (as_other_clinician, as_outsider):
        assert http.post(url, {"attended": "yes"}).status_code == 404
        assert list(http.get(reverse("noshow_review_list")).context["appointments"]) == []
    appointment.refresh_from_db()
    assert appointment.needs_review


def test_a_supervisor_may_not_answer_for_the_clinician(
    as_supervisor: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    url = reverse("noshow_review_action", args=[appointment.pk])
    assert as_supervisor.post(url, {"attended": "yes"}).status_code == 403
    assert as_supervisor.get(reverse("noshow_review_list")).status_code == 404


def test_signed_out_visitors_and_clients_are_kept_out(
    as_client: HttpClient, clinician: User, client_record: Client
) -> None:
    appointment = auto_no_show(clinician, client_record, NOW - timedelta(hours=1))
    anonymous = HttpClient()
    assert anonymous.get(reverse("noshow_review_list")).status_code == 302
    assert as_client.get(reverse("noshow_review_list")).status_code == 404
    # A client may read their own session, but never answer for the clinician.
    url = reverse("noshow_review_action", args=[appointment.pk])
    assert as_client.post(url, {"attended": "yes"}).status_code == 403
    appointment.refresh_from_db()
    assert appointment.needs_review
