"""A supervisor signs in, opens the review queue, adds a rupture to the supervision agenda,
and finds it on the planned session's agenda, next to the open safety flag that joined by
itself; then records a decision about it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from alliance import supervision
from alliance.models import AgendaItem, FlagEvent, RuptureFlag
from tests.alliance.supervision_helpers import make_flag
from tests.browser.conftest import screenshot
from tests.browser.test_invite_journey import sign_in, totp_now
from tests.factories import (
    PASSWORD,
    ClientFactory,
    EpisodeFactory,
    PairingFactory,
    PracticeFactory,
    enrol_totp,
    staff,
)

pytestmark = pytest.mark.browser


def test_a_supervisor_puts_a_rupture_on_the_supervision_agenda(
    live_server: object, new_page: Callable[[], Page], shipped_instruments: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    practice = PracticeFactory.create(name="Lindenhof Group Practice", timezone="Europe/Berlin")
    supervisor = staff(
        practice, "supervisor", mfa=False, email="dora@lindenhof.example", first_name="Dora"
    )
    secret = enrol_totp(supervisor)
    clinician = staff(
        practice,
        "clinician",
        email="nadia@lindenhof.example",
        first_name="Nadia",
        last_name="Roth",
    )
    PairingFactory.create(practice=practice, supervisor=supervisor, supervisee=clinician)
    erin = ClientFactory.create(practice=practice, first_name="Erin", last_name="Vogel")
    episode = EpisodeFactory.create(client=erin, clinician=clinician)
    now = timezone.now()
    rupture = make_flag(
        episode,
        RuptureFlag.Rule.LOW_ALLIANCE,
        raised_at=now - timedelta(days=3),
        summary="Session feedback 24/40 is below the threshold of 36.",
    )
    safety = make_flag(
        episode,
        RuptureFlag.Rule.SAFETY,
        raised_at=now - timedelta(hours=5),
        summary="PHQ-9 item 9 answered above 0.",
    )
    session = supervision.supervision_session_create(
        supervisor=supervisor,
        supervisee=clinician,
        scheduled_for=now + timedelta(days=2),
        now=now,
    )

    page = new_page()
    sign_in(page, base, supervisor.email, PASSWORD)
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Sign In").click()

    page.get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    rows = page.locator("ol.list-group > li")
    # Safety first, then the rupture.
    expect(rows.nth(0)).to_contain_text("PHQ-9 item 9 answered above 0.")
    expect(rows.nth(1)).to_contain_text("Session feedback 24/40 is below the threshold of 36.")
    row = page.locator(f"#flag-{rupture.pk}")
    expect(row.get_by_role("link", name="Erin Vogel")).to_be_visible()
    expect(row.get_by_role("link", name="Low alliance")).to_be_visible()
    screenshot(page, "supervisor-review-queue")

    row.get_by_role("button", name="Add to agenda").click()
    expect(page.get_by_text("Added to the agenda of the next supervision session.")).to_be_visible()
    expect(page.locator(f"#flag-{rupture.pk}")).to_contain_text("On the agenda")
    screenshot(page, "supervisor-rupture-added-to-agenda")

    page.get_by_role("link", name="Supervision", exact=True).click()
    expect(page.get_by_role("heading", name="Supervision sessions")).to_be_visible()
    page.get_by_role(
        "link", name=timezone.localtime(session.scheduled_for, practice.tz).strftime("%a %-d %b %Y")
    ).click()
    expect(page.get_by_role("heading", name="Supervision with Nadia Roth")).to_be_visible()
    agenda = page.locator("#agenda")
    expect(agenda.get_by_role("link", name="Low alliance")).to_be_visible()
    expect(agenda).to_contain_text("Session feedback 24/40 is below the threshold of 36.")
    expect(agenda.get_by_role("link", name="Safety")).to_be_visible()
    expect(agenda).to_contain_text("added by itself")
    screenshot(page, "supervisor-session-agenda")

    item = AgendaItem.objects.get(flag=rupture)
    decision = page.locator(f"#item-{item.pk}")
    decision.get_by_label("Decision on item").fill("Nadia names the rush next session.")
    decision.get_by_role("button", name="Save decision").click()
    expect(page.get_by_text("Decision recorded.")).to_be_visible()
    expect(page.locator(f"#item-{item.pk}")).to_contain_text("Nadia names the rush next session.")
    screenshot(page, "supervisor-agenda-decision")

    assert item.session_id == session.pk
    assert list(rupture.events.values_list("action", flat=True)) == [
        FlagEvent.Action.RAISED,
        FlagEvent.Action.AGENDA,
        FlagEvent.Action.NOTE,
    ]
    assert AgendaItem.objects.get(flag=safety).automatic
