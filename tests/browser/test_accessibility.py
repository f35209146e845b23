"""axe-core on every main page of each role, in the demo practice: nothing serious or critical.

One test, one world: the demo seed (`make run`'s data: clients, sessions, responses, flags
with a safety flag and repairs, outreach, a waitlist) plus what it leaves out (TOTP for the
staff logins, a supervision session, a measure link sent to the portal client). Seeding and
signing in once per role keep the file well under a minute and a half.

axe goes in through the DevTools protocol (``page.evaluate``): the pages' strict CSP
(script-src 'self') refuses ``page.add_script_tag``, but does not govern evaluated code, nor
the ``new Function`` axe calls while it sets up. So the pages are checked exactly as served,
CSP on. Every violation is printed whatever its impact, so the moderate ones stay visible in
the log, and saved to test-artifacts/axe-violations.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page

from alliance import services, supervision
from alliance.measures import measure_link_token
from alliance.models import (
    Instrument,
    MeasureRequest,
    OutreachAttempt,
    RepairAction,
    RuptureFlag,
)
from practice.demo import DEMO_PASSWORD, PORTAL_CLIENT_EMAIL, seed_demo
from practice.management.commands.seed_demo import seed_installed_apps
from practice.models import Client, User
from scheduling.links import client_link_token
from scheduling.models import Appointment
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_invite_journey import sign_in, totp_now
from tests.factories import enrol_totp

pytestmark = pytest.mark.browser

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
BLOCKING = {"serious", "critical"}
# The pages whose screenshots are kept as artefacts (the rest are only checked).
SCREENSHOTS = {
    "clinician: calendar week",
    "clinician: client timeline",
    "clinician: flag detail (safety)",
    "supervisor: review queue",
    "admin: caseload board",
    "client: measure link",
}

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    rule: v.id,
    impact: v.impact,
    targets: v.nodes.map(n => n.target.join(" ")),
    summary: v.nodes[0].failureSummary.split("\\n").slice(0, 2).join(" "),
  }));
}"""


@dataclass(frozen=True)
class Violation:
    page: str
    rule: str
    impact: str
    targets: list[str]
    summary: str  # axe's explanation for the first node


@dataclass
class World:
    clinician: User
    supervisor: User
    admin: User
    secrets: dict[str, str]
    pages: dict[str, list[tuple[str, str]]]  # role -> (page name, path)


def build_world() -> World:
    """The demo practice, and the path of each role's main pages in it."""
    practice = seed_demo()
    seed_installed_apps(practice)
    now = timezone.now()
    users = {u.email: u for u in User.objects.filter(email__endswith="@demo.practice")}
    clinician = users["clinician@demo.practice"]
    supervisor = users["supervisor@demo.practice"]
    admin = users["admin@demo.practice"]
    secrets = {user.email: enrol_totp(user) for user in (clinician, supervisor, admin)}

    flags = RuptureFlag.objects.for_clinician(clinician)
    repaired = RepairAction.objects.filter(flag__in=flags).select_related("flag__episode").first()
    assert repaired is not None, "the demo has Nadia repair a drop in feedback"
    phq9 = Instrument.objects.shipped().active().filter(code="phq-9").order_by("version").last()
    assert phq9 is not None
    # The demo's safety flag goes to whichever calendar has a session within the next day,
    # which depends on the hour the test runs. Every run must show one on Nadia's pages
    # (flag, flag list, timeline with its highlighted answer), so when it went elsewhere
    # her repaired client answers item 9 in session, as the pages would record it.
    if not flags.safety().exists():
        last = repaired.flag.episode.appointments.filter(starts_at__lte=now).latest("starts_at")
        services.response_record_in_session(
            instrument=phq9,
            answers={f"phq9_{n}": 1 for n in range(1, 10)},
            appointment=last,
            clinician=clinician,
            now=now,
        )
    safety = flags.safety().first()
    assert safety is not None
    client = repaired.flag.episode.client_id
    outreach = OutreachAttempt.objects.filter(episode__clinician=clinician).first()
    outreach_episode = outreach.episode_id if outreach else repaired.flag.episode_id
    upcoming = (
        Appointment.objects.for_clinician(clinician).upcoming(now).open().order_by("starts_at")
    )
    appointment = upcoming.first()
    assert appointment is not None
    day = timezone.localtime(appointment.starts_at, practice.tz).date()

    session = supervision.supervision_session_create(
        supervisor=supervisor, supervisee=clinician, scheduled_for=now + timedelta(days=2), now=now
    )
    waiting = Client.objects.filter(practice=practice, status=Client.Status.WAITLIST).first()
    assert waiting is not None

    portal = Client.objects.get(practice=practice, email=PORTAL_CLIENT_EMAIL)
    portal_next = Appointment.objects.for_client(portal).upcoming(now).open()
    portal_appointment = portal_next.order_by("starts_at").first()
    assert portal_appointment is not None and portal_appointment.episode is not None
    sent = MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.OUTCOME,
        instrument=phq9,
        client=portal,
        episode=portal_appointment.episode,
        appointment=portal_appointment,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=now - timedelta(hours=1),
        expires_at=portal_appointment.starts_at,
        attempts=1,
        sent_at=now - timedelta(hours=1),
    )

    pages = {
        "anonymous": [
            ("login", reverse("account_login")),
            ("password reset", reverse("account_reset_password")),
        ],
        "clinician": [
            ("home", reverse("home")),
            ("calendar week", reverse("calendar_week")),
            ("calendar day", f"{reverse('calendar_day')}?date={day.isoformat()}"),
            ("appointment detail", reverse("appointment_detail", args=[appointment.pk])),
            ("client list", reverse("client_list")),
            ("client detail", reverse("client_detail", args=[client])),
            ("client timeline", reverse("client_timeline", args=[client])),
            ("flag detail (safety)", reverse("flag_detail", args=[safety.pk])),
            ("flag detail (repair)", reverse("flag_detail", args=[repaired.flag_id])),
            ("flags list", reverse("flag_list")),
            ("outreach", reverse("outreach", args=[outreach_episode])),
            ("in-session start", reverse("in_session_start", args=[appointment.pk])),
            ("in-session form", reverse("in_session_form", args=[appointment.pk, phq9.pk])),
            ("no-show review", reverse("noshow_review_list")),
            ("workload", reverse("workload_alerts")),
        ],
        "supervisor": [
            ("home", reverse("home")),
            ("review queue", reverse("review_queue")),
            ("supervision sessions", reverse("supervision_session_list")),
            ("supervision session", reverse("supervision_session_detail", args=[session.pk])),
            ("supervisee overview", reverse("supervisee_overview")),
            ("client timeline (read-only)", reverse("client_timeline", args=[client])),
        ],
        "admin": [
            ("home", reverse("home")),
            ("members", reverse("member_list")),
            ("clients", reverse("client_list")),
            ("caseload board", reverse("caseload_board")),
            ("waitlist", reverse("waitlist")),
            ("waitlist matching", reverse("waitlist_client", args=[waiting.pk])),
            ("audit log", reverse("audit_log")),
            ("thresholds", reverse("alliance_policy_edit")),
            ("import", reverse("import_upload")),
            ("pairings", reverse("pairing_list")),
        ],
        "client": [
            ("portal appointments", reverse("portal_appointments")),
            ("portal questionnaires", reverse("portal_measures")),
            ("measure link", reverse("measure_link", args=[measure_link_token(sent)])),
            (
                "confirm link",
                reverse(
                    "client_link",
                    args=["confirm", client_link_token(portal_appointment, "confirm")],
                ),
            ),
        ],
    }
    return World(clinician, supervisor, admin, secrets, pages)


def check(page: Page, name: str) -> list[Violation]:
    # Each navigation starts a fresh window, so axe goes in again on every page.
    page.evaluate(AXE_SOURCE)
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    if name in SCREENSHOTS:
        screenshot(page, "a11y-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-"))
    return [Violation(page=name, **v) for v in found]


def visit(page: Page, base: str, role: str, name: str, path: str) -> list[Violation]:
    response = page.goto(f"{base}{path}")
    assert response is not None and response.status == 200, f"{role}: {name} at {path}"
    return check(page, f"{role}: {name}")


@contextmanager
def role_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def table(violations: list[Violation], pages: int) -> str:
    lines = [f"axe-core: {len(violations)} violations on {pages} pages"]
    lines += [
        f"  {v.impact:<9} {v.rule:<24} {v.page:<38} {len(v.targets):>3}x "
        f"{', '.join(v.targets[:3])}{' ...' if len(v.targets) > 3 else ''}\n{'':<12}{v.summary}"
        for v in violations
    ]
    return "\n".join(lines)


def test_no_main_page_of_any_role_has_a_serious_or_critical_violation(
    live_server: object, browser: Browser, shipped_instruments: None
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    world = build_world()
    violations: list[Violation] = []
    checked = 0

    for role, pages in world.pages.items():
        with role_page(browser) as page:
            if role == "client":
                sign_in(page, base, PORTAL_CLIENT_EMAIL, DEMO_PASSWORD)
                page.wait_for_url(lambda url: "/accounts/" not in url)
            elif role != "anonymous":
                user = getattr(world, role)
                sign_in(page, base, user.email, DEMO_PASSWORD)
                code = page.locator("input[name=code]")
                code.wait_for()
                if role == "clinician":  # the second step of a staff sign-in, checked once
                    violations += check(page, "staff: sign-in code")
                    checked += 1
                code.fill(totp_now(world.secrets[user.email]))
                page.get_by_role("button", name="Sign In").click()
                page.wait_for_url(lambda url: "/accounts/" not in url)
            for name, path in pages:
                violations += visit(page, base, role, name, path)
                checked += 1

    print("\n" + table(violations, checked))
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / "axe-violations.json").write_text(
        json.dumps([asdict(v) for v in violations], indent=1)
    )
    blocking = [v for v in violations if v.impact in BLOCKING]
    assert not blocking, table(blocking, checked)
