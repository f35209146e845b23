"""An admin signs in, enrols MFA and invites a clinician; the clinician accepts and signs in."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail
from playwright.sync_api import Page, expect

from practice.models import Membership
from tests.browser.conftest import screenshot
from tests.factories import PASSWORD, PracticeFactory, staff

pytestmark = pytest.mark.browser

CLINICIAN_PASSWORD = "a-fresh-clinician-passphrase-5"


def totp_now(secret: str) -> str:
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()


def enrol_mfa(page: Page, password: str, name: str) -> None:
    """From the 'set up two-factor' page through allauth's TOTP enrolment."""
    expect(page.get_by_role("heading", name="Set up two-factor sign-in first")).to_be_visible()
    screenshot(page, f"{name}-mfa-required")
    page.get_by_role("link", name="Set up my authenticator app").click()
    if "/reauthenticate/" in page.url:
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Confirm").click()
    secret = page.locator("input[value]").evaluate_all(
        "els => els.map(e => e.value).find(v => /^[A-Z2-7]{32}$/.test(v))"
    )
    assert secret, "the enrolment page shows the secret key"
    screenshot(page, f"{name}-mfa-enrol")
    page.get_by_label("Authenticator code").fill(totp_now(secret))
    page.get_by_role("button", name="Activate").click()


def test_admin_invites_a_clinician_who_joins(
    live_server: object, new_page: Callable[[], Page], transactional_db: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    practice = PracticeFactory.create(name="Lindenhof Group Practice")
    admin = staff(practice, "admin", mfa=False, email="alice@lindenhof.example")
    mail.outbox.clear()

    page = new_page()
    sign_in(page, base, admin.email, PASSWORD)
    enrol_mfa(page, PASSWORD, "admin")
    page.goto(f"{base}/members/invite/")
    expect(page.get_by_role("heading", name="Invite a staff member")).to_be_visible()
    page.get_by_label("Email").fill("frank@lindenhof.example")
    page.get_by_label("First name").fill("Frank")
    page.get_by_label("Last name").fill("Lutz")
    page.get_by_label("Clinician").check()
    screenshot(page, "admin-invite")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to frank@lindenhof.example")).to_be_visible()
    screenshot(page, "admin-members")

    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/invite/\S+/", str(mail.outbox[0].body))
    assert link is not None
    path = link.group(0).split("/invite/", 1)[1]

    clinician_page = new_page()
    clinician_page.goto(f"{base}/invite/{path}")
    expect(
        clinician_page.get_by_role("heading", name="Join Lindenhof Group Practice")
    ).to_be_visible()
    clinician_page.locator("#id_password1").fill(CLINICIAN_PASSWORD)
    clinician_page.locator("#id_password2").fill(CLINICIAN_PASSWORD)
    screenshot(clinician_page, "clinician-accept")
    clinician_page.get_by_role("button", name="Create my login").click()
    expect(clinician_page.get_by_text("Your login is ready")).to_be_visible()

    sign_in(clinician_page, base, "frank@lindenhof.example", CLINICIAN_PASSWORD)
    enrol_mfa(clinician_page, CLINICIAN_PASSWORD, "clinician")
    clinician_page.goto(f"{base}/")
    expect(clinician_page.get_by_role("heading", name="My caseload")).to_be_visible()
    screenshot(clinician_page, "clinician-home")

    membership = Membership.objects.get(user__email="frank@lindenhof.example")
    assert membership.practice == practice and membership.is_clinician

    # The link worked once: opening it again shows the friendly refusal.
    clinician_page.goto(f"{base}/invite/{path}")
    expect(clinician_page.get_by_text("does not work any more")).to_be_visible()
