"""An admin opens the waitlist, sees why each clinician is suggested for a waiting client,
assigns the client from the best suggestion, and finds them active with that clinician."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time

import pytest
from playwright.sync_api import Page, expect

from practice.models import Client, ClinicianProfile, Episode
from tests.browser.conftest import screenshot
from tests.browser.test_invite_journey import sign_in, totp_now
from tests.factories import PASSWORD, ClientFactory, PracticeFactory, enrol_totp, staff

pytestmark = pytest.mark.browser


def test_admin_assigns_a_waitlisted_client_from_a_matching_suggestion(
    live_server: object, new_page: Callable[[], Page], shipped_instruments: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    practice = PracticeFactory.create(name="Lindenhof Group Practice", timezone="Europe/Berlin")
    admin = staff(practice, "admin", mfa=False, email="alice@lindenhof.example")
    secret = enrol_totp(admin)
    nadia = staff(
        practice,
        "clinician",
        email="nadia@lindenhof.example",
        first_name="Nadia",
        last_name="Berger",
    )
    ClinicianProfile.objects.filter(membership__user=nadia).update(
        languages=["German", "English"],
        specialties=["anxiety", "grief"],
        work_starts=time(12),
        work_ends=time(20),
    )
    omar = staff(
        practice, "clinician", email="omar@lindenhof.example", first_name="Omar", last_name="Aziz"
    )
    ClinicianProfile.objects.filter(membership__user=omar).update(languages=["English"])
    erin = ClientFactory.create(
        practice=practice,
        first_name="Erin",
        last_name="Vogel",
        status=Client.Status.WAITLIST,
        preferred_language="German",
        needs=["anxiety"],
        preferred_times=["evening"],
    )

    page = new_page()
    sign_in(page, base, admin.email, PASSWORD)
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Sign In").click()

    page.get_by_role("link", name="Waitlist", exact=True).click()
    expect(page.get_by_role("heading", name="Waitlist")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Erin Vogel"))).to_contain_text("Nadia Berger")
    screenshot(page, "admin-waitlist")

    page.get_by_role("link", name="Find a clinician for Erin Vogel").click()
    expect(page.get_by_role("heading", name="Match Erin Vogel with a clinician")).to_be_visible()
    best = page.locator("ol > li.card").first
    expect(best).to_contain_text("1. Nadia Berger")
    expect(best).to_contain_text("Speaks German")
    expect(best).to_contain_text("Specialises in anxiety")
    expect(best).to_contain_text("Works in the client's preferred evening (12:00–20:00)")
    second = page.locator("ol > li.card").nth(1)
    expect(second).to_contain_text("Does not list German as a language")
    screenshot(page, "admin-waitlist-matches")

    best.get_by_role("button", name="Assign to Nadia Berger").click()
    expect(page.get_by_text("Assigned Erin Vogel to Nadia Berger.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Erin Vogel"))).to_contain_text("Active")
    expect(page.get_by_role("row", name=re.compile("Nadia Berger"))).to_contain_text("Intake")
    screenshot(page, "admin-client-assigned")

    page.get_by_role("link", name="Caseload", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("Nadia Berger"))).to_contain_text("1 / 25")
    screenshot(page, "admin-caseload-board")

    episode = Episode.objects.get(client=erin)
    assert episode.clinician == nadia and episode.is_open
    erin.refresh_from_db()
    assert erin.status == Client.Status.ACTIVE
