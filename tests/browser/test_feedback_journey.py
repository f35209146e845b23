"""A client answers the feedback link with a low score and says something felt off; after
the sweep the clinician sees the flag and its evidence on the timeline, logs a repair, and
closes the rupture as repaired."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from alliance.models import RepairAction, Response, RuptureFlag
from scheduling.models import Status
from tests.browser.conftest import screenshot
from tests.browser.test_invite_journey import sign_in, totp_now
from tests.factories import (
    PASSWORD,
    ClientFactory,
    EpisodeFactory,
    PracticeFactory,
    book,
    enrol_totp,
    staff,
)

pytestmark = pytest.mark.browser


def test_low_feedback_becomes_a_flag_the_clinician_repairs(
    live_server: object, new_page: Callable[[], Page], shipped_instruments: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    practice = PracticeFactory.create(name="Lindenhof Group Practice", timezone="Europe/Berlin")
    clinician = staff(practice, "clinician", mfa=False, email="nadia@lindenhof.example")
    secret = enrol_totp(clinician)
    client = ClientFactory.create(
        practice=practice, first_name="Erin", last_name="Vogel", email="erin@example.org"
    )
    EpisodeFactory.create(client=client, clinician=clinician)
    now = timezone.now()
    book(
        clinician,
        client,
        now - timedelta(hours=2),
        status=Status.ATTENDED,
        status_changed_at=now - timedelta(hours=1),
    )
    mail.outbox.clear()

    # The sweep plans and sends the feedback link by email.
    call_command("sweep")
    [message] = [m for m in mail.outbox if m.to == ["erin@example.org"]]
    link = re.search(r"http://\S+(/m/\S+/)", str(message.body))
    assert link is not None

    client_page = new_page()
    client_page.goto(f"{base}{link.group(1)}")
    expect(client_page.get_by_role("heading", name="How was your session?")).to_be_visible()
    for key, value in {"relationship": 6, "goals_topics": 7, "approach": 5, "overall": 6}.items():
        client_page.locator(f"input[name={key}][value='{value}']").check()
    client_page.locator("input[name=felt_off][value=yes]").check()
    client_page.locator("textarea[name=felt_off_text]").fill("I felt rushed at the end.")
    screenshot(client_page, "client-feedback-form")
    client_page.get_by_role("button", name="Send my answers").click()
    expect(client_page.get_by_role("heading", name="Thank you")).to_be_visible()
    screenshot(client_page, "client-feedback-thanks")
    assert Response.objects.get().total == 24

    call_command("sweep")

    page = new_page()
    sign_in(page, base, clinician.email, PASSWORD)
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="Erin Vogel").click()
    page.get_by_role("link", name="Timeline").click()
    expect(page.get_by_role("heading", name="Erin Vogel")).to_be_visible()
    expect(page.locator("figure.timeline-chart svg")).to_be_visible()
    open_flags = page.locator(
        "section", has=page.get_by_role("heading", name=re.compile("Open flags"))
    )
    expect(open_flags.get_by_role("link", name="Low alliance")).to_be_visible()
    expect(open_flags.get_by_role("link", name="Client said something felt off")).to_be_visible()
    expect(open_flags).to_contain_text("Session feedback 24/40 is below the threshold of 36.")
    screenshot(page, "clinician-timeline-with-flag")

    open_flags.get_by_role("link", name="Low alliance").click()
    expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
    expect(page.locator("#flag-status")).to_have_text("Open")
    page.get_by_label("Strategy").select_option(label="Acknowledge one's own contribution")
    page.get_by_label("What you said or did").fill(
        "I said I had rushed the ending and asked how that felt."
    )
    page.get_by_label("How the client responded").fill("She relaxed and said it mattered.")
    page.get_by_role("button", name="Log repair").click()
    expect(page.locator("#flag-status")).to_have_text("In repair")
    screenshot(page, "clinician-repair-logged")

    page.get_by_label("Move to").select_option(label="Repaired")
    page.get_by_label("Note").fill("We talked it through; next session she scored 38.")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flag-status")).to_have_text("Repaired")
    screenshot(page, "clinician-rupture-repaired")

    flag = RuptureFlag.objects.get(rule=RuptureFlag.Rule.LOW_ALLIANCE)
    assert flag.status == RuptureFlag.Status.REPAIRED
    assert RepairAction.objects.get(flag=flag).strategy == "acknowledge"
    assert flag.events.filter(to_status="repaired").exists()
