"""The admin's caseload board: one row per clinician, sortable, filterable, counts only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance.models import RuptureFlag
from practice.caseload import caseload_board
from practice.models import Client, Episode, Practice, User
from scheduling.models import Status
from tests.factories import ClientFactory, EpisodeFactory, book, staff
from tests.practice.caseload_helpers import NOW, THIS_MONDAY, alert, at, flag, set_capacity

URL = reverse("caseload_board")


@pytest.fixture(autouse=True)
def _wednesday_noon() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def nadia(practice: Practice) -> User:
    """Busy: over capacity, over the hours cap this week, no-shows, an alert and flags."""
    user = staff(practice, "clinician", first_name="Nadia", last_name="Berger", mfa=False)
    set_capacity(user, 2)
    clients = [ClientFactory.create(practice=practice, first_name=f"Nadia{n}") for n in range(3)]
    for client in clients:
        EpisodeFactory.create(client=client, clinician=user)
    closed = ClientFactory.create(practice=practice, status=Client.Status.DISCHARGED)
    EpisodeFactory.create(
        client=closed,
        clinician=user,
        stage=Episode.Stage.CLOSED,
        closed_on=THIS_MONDAY,
        close_reason=Episode.CloseReason.COMPLETED,
    )
    first = clients[0]
    # This week: 60 + 60 + 30 minutes hold the slot; the cancelled session does not.
    book(user, first, at(6, 1, 9), 60, status=Status.ATTENDED)
    book(user, first, at(6, 4, 10), 60)
    book(user, first, at(6, 5, 10), 30, status=Status.CONFIRMED)
    book(user, first, at(6, 5, 14), 60, status=Status.CANCELLED_BY_CLINICIAN)
    # Next week: 90 minutes.
    book(user, first, at(6, 9, 10), 90)
    # The last 90 days: with Monday's, four sessions fell due and one was missed.
    book(user, first, at(5, 1, 10), status=Status.ATTENDED)
    book(user, first, at(5, 8, 10), status=Status.NO_SHOW)
    book(user, first, at(5, 15, 10), status=Status.ATTENDED)
    book(user, first, at(1, 5, 10), status=Status.NO_SHOW)  # too long ago
    episode = Episode.objects.get(client=first, clinician=user)
    flag(episode, summary="Feedback fell from 36 to 19 after the holiday.")
    flag(episode, rule=RuptureFlag.Rule.SAFETY, summary="PHQ-9 item 9 answered 2.")
    flag(episode, resolved=True)
    alert(practice, user)
    alert(practice, user, kind="no_rest_day", resolved=True)
    alert(practice, user, week_start=THIS_MONDAY - timedelta(weeks=10))  # frozen, not news
    return user


@pytest.fixture
def omar(practice: Practice) -> User:
    """Quiet: one client, nothing booked, nothing open."""
    user = staff(practice, "clinician", first_name="Omar", last_name="Aziz", mfa=False)
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=user)
    return user


@pytest.fixture
def zora(practice: Practice) -> User:
    """Half full, busy next week, every session attended."""
    user = staff(practice, "clinician", first_name="Zora", last_name="Kim", mfa=False)
    set_capacity(user, 4)
    client = ClientFactory.create(practice=practice)
    EpisodeFactory.create(client=client, clinician=user)
    EpisodeFactory.create(client=ClientFactory.create(practice=practice), clinician=user)
    for day in (8, 9, 10):
        book(user, client, at(6, day, 9), 120)
    book(user, client, at(5, 20, 9), status=Status.ATTENDED)
    return user


def rows_of(response: object) -> list[str]:
    return [row.name for row in response.context["rows"]]  # type: ignore[attr-defined]


def test_each_clinician_gets_their_numbers(
    practice: Practice, admin: User, nadia: User, omar: User, zora: User
) -> None:
    rows = {row.name: row for row in caseload_board(practice=practice, now=NOW)}
    assert set(rows) == {"Nadia Berger", "Omar Aziz", "Zora Kim"}  # not the admin
    busy = rows["Nadia Berger"]
    assert (busy.active_episodes, busy.capacity) == (3, 2)
    assert busy.over_capacity
    assert (busy.hours_this_week, busy.hours_next_week) == (2.5, 1.5)
    assert busy.hours_cap == 30 and not busy.over_hours
    assert (busy.sessions_90_days, busy.no_shows_90_days, busy.no_show_rate) == (4, 1, 0.25)
    assert busy.open_alerts == 1
    assert (busy.open_flags, busy.open_safety_flags) == (2, 1)

    quiet = rows["Omar Aziz"]
    assert (quiet.active_episodes, quiet.capacity) == (1, 25)  # the practice default
    assert (quiet.hours_this_week, quiet.hours_next_week) == (0, 0)
    assert quiet.no_show_rate is None
    assert (quiet.open_alerts, quiet.open_flags) == (0, 0)
    assert rows["Zora Kim"].hours_next_week == 6.0


def test_the_page_shows_counts_and_no_clinical_content(
    as_admin: HttpClient, nadia: User, omar: User
) -> None:
    response = as_admin.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nadia Berger" in page and "3 / 2" in page and "over capacity" in page
    assert "2.5 / 30 h" in page and "25 %" in page and "1 safety" in page
    # Counts only: no client names and none of the evidence behind the flags.
    assert "Nadia0" not in page
    assert "Feedback fell" not in page and "PHQ-9" not in page


def test_it_sorts_by_each_column(as_admin: HttpClient, nadia: User, omar: User, zora: User) -> None:
    expected = {
        "name": ["Omar Aziz", "Nadia Berger", "Zora Kim"],
        "-name": ["Zora Kim", "Nadia Berger", "Omar Aziz"],
        "-episodes": ["Nadia Berger", "Zora Kim", "Omar Aziz"],
        "episodes": ["Omar Aziz", "Zora Kim", "Nadia Berger"],
        "-this_week": ["Nadia Berger", "Omar Aziz", "Zora Kim"],
        "-next_week": ["Zora Kim", "Nadia Berger", "Omar Aziz"],
        "-no_shows": ["Nadia Berger", "Zora Kim", "Omar Aziz"],
        "no_shows": ["Omar Aziz", "Zora Kim", "Nadia Berger"],
        "-alerts": ["Nadia Berger", "Omar Aziz", "Zora Kim"],
        "-flags": ["Nadia Berger", "Omar Aziz", "Zora Kim"],
    }
    for sort, names in expected.items():
        response = as_admin.get(URL, {"sort": sort})
        assert response.status_code == 200, sort
        assert rows_of(response) == names, sort


def test_a_column_heading_sorts_and_a_second_click_reverses(
    as_admin: HttpClient, nadia: User
) -> None:
    page = as_admin.get(URL, {"sort": "-episodes", "over_capacity": "on"}).content.decode()
    assert 'aria-sort="descending"' in page
    # The heading keeps the filters and turns the order round.
    assert "?sort=episodes&amp;over_capacity=on" in page
    assert "?sort=-this_week&amp;over_capacity=on" in page


def test_it_filters(
    as_admin: HttpClient, practice: Practice, nadia: User, omar: User, zora: User
) -> None:
    assert rows_of(as_admin.get(URL, {"over_capacity": "on"})) == ["Nadia Berger"]
    assert rows_of(as_admin.get(URL, {"with_flags": "on"})) == ["Nadia Berger"]
    assert rows_of(as_admin.get(URL, {"with_alerts": "on"})) == ["Nadia Berger"]
    assert rows_of(as_admin.get(URL, {"q": "zora k"})) == ["Zora Kim"]
    assert rows_of(as_admin.get(URL, {"q": "AZIZ"})) == ["Omar Aziz"]
    practice.weekly_hours_cap = 5
    practice.save()
    assert rows_of(as_admin.get(URL, {"over_hours": "on"})) == ["Zora Kim"]  # 6 h next week
    practice.weekly_hours_cap = 2
    practice.save()
    assert rows_of(as_admin.get(URL, {"over_hours": "on", "sort": "-next_week"})) == [
        "Zora Kim",
        "Nadia Berger",
    ]
    response = as_admin.get(URL, {"q": "nobody"})
    assert rows_of(response) == []
    assert b"No clinician matches these filters." in response.content


def test_filters_combine(as_admin: HttpClient, nadia: User, zora: User) -> None:
    assert rows_of(as_admin.get(URL, {"over_capacity": "on", "q": "zora"})) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "salary"}, "Sort by one of the board&#x27;s columns"),
        ({"q": "x" * 101}, "Ensure this value has at most 100 characters"),
        ({"q": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_bad_parameters_get_a_clear_message_and_the_whole_board(
    as_admin: HttpClient, nadia: User, omar: User, params: dict[str, str], message: str
) -> None:
    response = as_admin.get(URL, {"over_capacity": "on", **params})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert rows_of(response) == ["Omar Aziz", "Nadia Berger"]


def test_only_admins_see_the_board(
    clinician: User,
    as_clinician: HttpClient,
    as_supervisor: HttpClient,
    as_client: HttpClient,
) -> None:
    for http in (as_clinician, as_supervisor, as_client):
        assert http.get(URL).status_code == 404
        assert http.get(reverse("caseload_board_csv")).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    response = HttpClient().get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_an_outsider_sees_only_their_own_practice(as_outsider: HttpClient, nadia: User) -> None:
    response = as_outsider.get(URL)
    assert response.status_code == 200
    assert "Nadia Berger" not in response.content.decode()
    # The outsider is a clinician of their own practice too: theirs is the only row.
    assert [row.email for row in response.context["rows"]] == ["mallory@else.example"]


def populate(practice: Practice, start: int, count: int) -> None:
    """Clinicians with something in every column: episodes, hours, no-shows, alerts, flags."""
    for n in range(start, start + count):
        user = staff(practice, "clinician", mfa=False, email=f"clinician{n}@lindenhof.example")
        client = ClientFactory.create(practice=practice)
        episode = EpisodeFactory.create(client=client, clinician=user)
        book(user, client, at(6, 4, 9), 60)
        book(user, client, at(6, 10, 9), 60)
        book(user, client, at(5, 11, 9), status=Status.NO_SHOW)
        alert(practice, user)
        flag(episode, key=f"load:{n}")


def test_the_board_loads_in_the_same_number_of_queries_at_10_and_200_clinicians(
    as_admin: HttpClient, practice: Practice
) -> None:
    populate(practice, 0, 10)
    with CaptureQueriesContext(connection) as at_10:
        response = as_admin.get(URL, {"sort": "-flags"})
    assert response.status_code == 200
    assert len(response.context["rows"]) == 10

    populate(practice, 10, 190)
    with CaptureQueriesContext(connection) as at_200:
        response = as_admin.get(URL, {"sort": "-flags"})
    assert response.status_code == 200
    assert len(response.context["rows"]) == 200
    assert all(row.open_flags == 1 and row.open_alerts == 1 for row in response.context["rows"])

    assert len(at_10.captured_queries) == len(at_200.captured_queries)
    # 11 today: session, user, membership and the MFA check, then the clinicians and one
    # grouped query per measure (open episodes, hours this week and next, no-shows, alerts,
    # flags). The bound leaves room for one more per-request query, not for one per row.
    assert len(at_200.captured_queries) <= 12, [q["sql"] for q in at_200.captured_queries]


def test_the_csv_export_costs_the_same_number_of_queries_too(
    as_admin: HttpClient, practice: Practice
) -> None:
    populate(practice, 0, 10)
    with CaptureQueriesContext(connection) as at_10:
        b"".join(as_admin.get(reverse("caseload_board_csv")).streaming_content)  # type: ignore[attr-defined]
    populate(practice, 10, 190)
    with CaptureQueriesContext(connection) as at_200:
        body = b"".join(as_admin.get(reverse("caseload_board_csv")).streaming_content)  # type: ignore[attr-defined]
    assert body.count(b"\r\n") == 201
    assert len(at_10.captured_queries) == len(at_200.captured_queries)
