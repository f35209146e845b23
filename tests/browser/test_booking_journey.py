"""A clinician books a weekly series, sees it in the week view, and the client confirms
through the link in their email."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from scheduling.models import Appointment, Status
from tests.browser.conftest import screenshot
from tests.browser.test_invite_journey import sign_in, totp_now
from tests.factories import (
    PASSWORD,
    ClientFactory,
    EpisodeFactory,
    PracticeFactory,
    enrol_totp,
    staff,
)

pytestmark = pytest.mark.browser


def test_clinician_books_a_series_and_the_client_confirms(
    live_server: object, new_page: Callable[[], Page], transactional_db: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    practice = PracticeFactory.create(name="Lindenhof Group Practice", timezone="Europe/Berlin")
    clinician = staff(practice, "clinician", mfa=False, email="nadia@lindenhof.example")
    secret = enrol_totp(clinician)
    client = ClientFactory.create(practice=practice, first_name="Erin", last_name="Vogel")
    EpisodeFactory.create(client=client, clinician=clinician)
    mail.outbox.clear()

    today = timezone.localdate()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)

    page = new_page()
    sign_in(page, base, clinician.email, PASSWORD)
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("link", name="Calendar").click()
    page.get_by_role("link", name="Book a session").click()
    page.get_by_label("Client").select_option(label="Erin Vogel")
    page.get_by_label("Date").fill(tuesday.isoformat())
    page.get_by_label("Start").fill("10:00")
    page.locator("#id_repeat").select_option("weekly")
    page.get_by_label("Number of sessions").fill("4")
    screenshot(page, "clinician-book-series")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("heading", name="4 sessions booked")).to_be_visible()
    screenshot(page, "clinician-series-result")

    page.get_by_role("link", name="Open the calendar").click()
    entry = page.locator(".calendar-entry", has_text="Erin Vogel")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("10:00")
    screenshot(page, "clinician-week-view")

    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+(/c/confirm/\S+/)", str(mail.outbox[0].body))
    assert link is not None
    client_page = new_page()
    client_page.goto(f"{base}{link.group(1)}")
    screenshot(client_page, "client-confirm-link")
    client_page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(client_page.get_by_text(re.compile("confirmed", re.IGNORECASE)).first).to_be_visible()
    screenshot(client_page, "client-confirmed")

    first = Appointment.objects.filter(client=client).order_by("starts_at").first()
    assert first is not None and first.status == Status.CONFIRMED
    page.reload()
    expect(entry).to_contain_text("Confirmed")
