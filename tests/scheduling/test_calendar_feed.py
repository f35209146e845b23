"""A clinician's secret iCal feed: initials only, cancelled sessions marked, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from icalendar import Calendar

from practice.models import Client, Membership, User
from scheduling.models import Appointment, CalendarFeed, Status
from scheduling.services import calendar_feed_regenerate
from tests.factories import ClientFactory, book


def soon(**delta: float) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(second=0, microsecond=0)


def feed_path(feed: CalendarFeed) -> str:
    return reverse("calendar_feed_ics", args=[feed.token])


def events(response: object) -> dict[str, object]:
    calendar = Calendar.from_ical(response.content)  # type: ignore[attr-defined]
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


@pytest.fixture
def feed(clinician: User) -> CalendarFeed:
    return calendar_feed_regenerate(clinician=clinician)


@pytest.fixture
def named_client(client_record: Client) -> Client:
    client_record.first_name, client_record.last_name = "Erin", "Blackwood"
    client_record.save(update_fields=["first_name", "last_name"])
    return client_record


def test_the_feed_shows_initials_and_no_full_names(
    feed: CalendarFeed, clinician: User, named_client: Client
) -> None:
    session = book(clinician, named_client, soon(days=2))
    video = book(
        clinician,
        named_client,
        soon(days=9),
        kind="intake",
        location="video",
        video_url="https://video.example/room-7",
    )

    response = HttpClient().get(feed_path(feed))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=300"
    text = response.content.decode()
    assert "BEGIN:VCALENDAR" in text
    assert "X-WR-CALNAME:Lindenhof sessions" in text
    assert "Erin" not in text
    assert "Blackwood" not in text
    found = events(response)
    first = found[f"appointment-{session.pk}@testserver"]
    assert str(first["SUMMARY"]) == "EB · Session"  # type: ignore[index]
    assert str(first["LOCATION"]) == "In person"  # type: ignore[index]
    assert str(first["STATUS"]) == "TENTATIVE"  # type: ignore[index]
    second = found[f"appointment-{video.pk}@testserver"]
    assert str(second["SUMMARY"]) == "EB · Intake"  # type: ignore[index]
    assert str(second["LOCATION"]) == "Video"  # type: ignore[index]
    assert str(second["URL"]) == "https://video.example/room-7"  # type: ignore[index]


def test_start_and_end_are_in_utc(
    feed: CalendarFeed, clinician: User, client_record: Client
) -> None:
    session = book(clinician, client_record, soon(days=2))

    response = HttpClient().get(feed_path(feed))

    event = events(response)[f"appointment-{session.pk}@testserver"]
    start = event["DTSTART"].dt  # type: ignore[index]
    assert start == session.starts_at
    assert start.utcoffset() == timedelta(0)
    assert event["DTEND"].dt == session.ends_at  # type: ignore[index]
    assert (
        f"DTSTART:{session.starts_at.astimezone(UTC):%Y%m%dT%H%M%S}Z" in response.content.decode()
    )


def test_cancelled_appointments_are_marked_cancelled(
    feed: CalendarFeed, clinician: User, client_record: Client
) -> None:
    cancelled = book(clinician, client_record, soon(days=1), status=Status.CANCELLED_BY_CLIENT)
    late = book(clinician, client_record, soon(days=2), status=Status.LATE_CANCELLED)
    confirmed = book(clinician, client_record, soon(days=3), status=Status.CONFIRMED)

    found = events(HttpClient().get(feed_path(feed)))

    def status(appointment: Appointment) -> str:
        return str(found[f"appointment-{appointment.pk}@testserver"]["STATUS"])  # type: ignore[index]

    assert status(cancelled) == "CANCELLED"
    assert status(late) == "CANCELLED"
    assert status(confirmed) == "CONFIRMED"


def test_only_the_last_60_days_onwards(
    feed: CalendarFeed, clinician: User, client_record: Client
) -> None:
    old = book(clinician, client_record, soon(days=-61), status=Status.ATTENDED)
    recent = book(clinician, client_record, soon(days=-59), status=Status.ATTENDED)

    found = events(HttpClient().get(feed_path(feed)))

    assert f"appointment-{recent.pk}@testserver" in found
    assert f"appointment-{old.pk}@testserver" not in found


def test_another_clinicians_sessions_are_not_in_the_feed(
    feed: CalendarFeed, clinician: User, other_clinician: User, client_record: Client
) -> None:
    other = ClientFactory.create(practice=client_record.practice)
    theirs = book(other_clinician, other, soon(days=2))
    mine = book(clinician, client_record, soon(days=3))

    found = events(HttpClient().get(feed_path(feed)))

    assert set(found) == {f"appointment-{mine.pk}@testserver"}
    assert theirs.pk != mine.pk


def test_the_settings_page_shows_the_secret_address(
    as_clinician: HttpClient, feed: CalendarFeed
) -> None:
    response = as_clinician.get(reverse("calendar_feed_settings"))
    assert response.status_code == 200
    assert f"http://testserver{feed_path(feed)}" in response.content.decode()


def test_regenerating_stops_the_old_address(as_clinician: HttpClient, feed: CalendarFeed) -> None:
    response = as_clinician.post(reverse("calendar_feed_settings"), {"action": "regenerate"})

    assert response.status_code == 302
    assert response["Location"] == reverse("calendar_feed_settings")
    assert HttpClient().get(feed_path(feed)).status_code == 404
    fresh = CalendarFeed.objects.get()
    assert fresh.token != feed.token
    assert HttpClient().get(feed_path(fresh)).status_code == 200


def test_revoking_stops_the_feed(as_clinician: HttpClient, feed: CalendarFeed) -> None:
    response = as_clinician.post(reverse("calendar_feed_settings"), {"action": "revoke"})

    assert response.status_code == 302
    assert HttpClient().get(feed_path(feed)).status_code == 404
    assert not CalendarFeed.objects.exists()
    assert "The feed is off" in as_clinician.get(reverse("calendar_feed_settings")).content.decode()


def test_a_clinician_who_left_loses_the_feed(clinician: User, feed: CalendarFeed) -> None:
    Membership.objects.filter(user=clinician).update(is_active=False)
    assert HttpClient().get(feed_path(feed)).status_code == 404


def test_an_unknown_token_is_404(feed: CalendarFeed) -> None:
    assert HttpClient().get("/calendar/feed/not-a-token.ics").status_code == 404


@pytest.mark.parametrize("persona", ["as_client", "as_admin", "as_supervisor"])
def test_non_clinicians_get_404_on_the_settings_page(
    persona: str, request: pytest.FixtureRequest
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("calendar_feed_settings")).status_code == 404
    assert http.post(reverse("calendar_feed_settings"), {"action": "regenerate"}).status_code == 404
    assert not CalendarFeed.objects.exists()


def test_outsider_gets_404_and_cannot_touch_our_feed(
    as_outsider: HttpClient,
    outsider: User,
    feed: CalendarFeed,
    clinician: User,
    client_record: Client,
) -> None:
    book(clinician, client_record, soon(days=2))
    assert as_outsider.get(feed_path(feed).replace(feed.token, "guessed")).status_code == 404

    # The settings page only ever acts on the signed-in clinician's own feed.
    as_outsider.post(reverse("calendar_feed_settings"), {"action": "revoke"})
    as_outsider.post(reverse("calendar_feed_settings"), {"action": "regenerate"})

    assert HttpClient().get(feed_path(feed)).status_code == 200
    theirs = CalendarFeed.objects.get(clinician=outsider)
    assert events(HttpClient().get(feed_path(theirs))) == {}
