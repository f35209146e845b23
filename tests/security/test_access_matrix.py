"""The access matrix: every named URL, tried by every persona, against a declared policy.

The URLs come from the URL configuration itself, so a page added without a line in POLICY
fails this test by name. Each URL is made concrete with the ids of a small practice
(tests/security/world.py) and requested with GET; a POST-only view (405 on GET) is then
requested with an empty POST body, which shows whether the access check lets the persona
reach the form validation at all. Each request runs in a savepoint that is rolled back, so
the order of the requests does not matter.

Outcomes:
    ok        2xx, or 400 (the view was reached and refused the empty input)
    redirect  3xx anywhere but the sign-in page (after an action, or to the right page)
    login     3xx to the sign-in page
    403 404 405 410  as such; 500 never appears in POLICY and always fails
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.security.world import World, build_world, url_args

pytestmark = pytest.mark.django_db

PERSONAS = (
    "admin",
    "clinician",
    "other_clinician",
    "supervisor",
    "client",
    "outsider",
    "anonymous",
)

# Not ours to police: Django's admin (its own staff/superuser checks, and no practice user is
# is_staff) and allauth's sign-in, sign-out, password and MFA pages (public by nature; their
# rate limits and MFA are tested in tests/practice/test_auth.py).
EXCLUDED_PREFIXES = ("admin/", "accounts/")


def expect(others: str = "404", *, anonymous: str = "login", **allowed: str) -> dict[str, str]:
    """A row of the policy: `allowed` personas as given, the anonymous visitor as given, and
    every other persona `others` (404 by default: a stranger cannot learn a page exists)."""
    row = dict.fromkeys(PERSONAS, others)
    row["anonymous"] = anonymous
    row.update(allowed)
    return row


# Roles in the world: admin (operational data only), clinician (the client's, with an open
# episode, paired with supervisor), other_clinician (same practice, not on the care team),
# supervisor (the clinician's current supervisor), client (the portal login of the client),
# outsider (admin + clinician + supervisor of another practice), anonymous.
# "outsider": "ok" on a page without an id means the outsider's *own* practice's page.
# 403 is for someone who may read the record but not change it (a write helper); everyone
# further out gets 404.
STAFF_PAGE = {"outsider": "ok"}
READ_ONLY = {"supervisor": "403", "client": "403"}
CARE_TEAM_WRITE = {"clinician": "ok", "supervisor": "403"}
SUPERVISOR_WRITE = {"supervisor": "ok", "clinician": "403"}

POLICY: dict[str, dict[str, str]] = {
    # Public: signed or secret tokens carry the authority, whoever is signed in.
    "healthz": expect("ok", anonymous="ok"),
    "client_link": expect("ok", anonymous="ok"),
    "measure_link": expect("ok", anonymous="ok"),
    "short_link": expect("redirect", anonymous="redirect"),
    "calendar_feed_ics": expect("ok", anonymous="ok"),
    # Signed in already: an invitation is for a new login, so it sends them home.
    "invitation_accept": expect("redirect", anonymous="ok"),
    # Everyone signed in.
    "home": expect("ok"),
    "mfa_required": expect("ok"),
    # Admin: members, invitations, pairings, the audit log, alliance settings, imports.
    "member_list": expect(admin="ok", **STAFF_PAGE),
    "member_invite": expect(admin="ok", **STAFF_PAGE),
    "member_edit": expect(admin="ok"),
    "clinician_profile_edit": expect(admin="ok"),
    "invitation_resend": expect(admin="redirect"),
    "invitation_revoke": expect(admin="redirect"),
    "pairing_list": expect(admin="ok", **STAFF_PAGE),
    "pairing_new": expect(admin="ok", **STAFF_PAGE),
    "pairing_end": expect(admin="ok"),
    "audit_log": expect(admin="ok", **STAFF_PAGE),
    "alliance_policy_edit": expect(admin="ok", **STAFF_PAGE),
    "import_upload": expect(admin="ok", **STAFF_PAGE),
    "import_detail": expect(admin="ok"),
    "import_status": expect(admin="ok"),
    # Admin: caseload (operational: counts, appointments, workload; no answers or notes).
    "caseload_board": expect(admin="ok", **STAFF_PAGE),
    "caseload_board_csv": expect(admin="ok", **STAFF_PAGE),
    "waitlist": expect(admin="ok", **STAFF_PAGE),
    "waitlist_client": expect(admin="ok"),
    "client_assign": expect(admin="ok"),
    "episode_transfer": expect(admin="ok"),
    "episode_transferred": expect(admin="ok"),
    "appointments_export": expect(admin="ok", **STAFF_PAGE),
    # Client records: staff pages. A portal client reads their own appointments in the portal.
    "client_list": expect(
        admin="ok", clinician="ok", other_clinician="ok", supervisor="ok", **STAFF_PAGE
    ),
    "client_new": expect(admin="ok", **STAFF_PAGE),
    # Not for the client themselves: the staff pages show episode stages, close reasons and
    # which staff member changed what (minimum necessary; the portal shows them their sessions).
    "client_detail": expect(admin="ok", clinician="ok", supervisor="ok"),
    "client_edit": expect(admin="ok", clinician="403", **READ_ONLY),
    "client_invite": expect(admin="ok", clinician="ok", **READ_ONLY),
    "episode_open": expect(admin="ok", clinician="403", **READ_ONLY),
    "episode_stage": expect(admin="redirect", clinician="redirect", **READ_ONLY),
    "episode_close": expect(admin="ok", clinician="ok", **READ_ONLY),
    # Calendars: each clinician their own; admins the practice's; supervisors have none.
    "calendar_week": expect(admin="ok", clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "calendar_day": expect(admin="ok", clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "appointment_new": expect(admin="ok", clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "appointment_detail": expect(admin="ok", clinician="ok", supervisor="ok"),
    "appointment_reschedule": expect(admin="ok", clinician="ok", **READ_ONLY),
    "appointment_cancel": expect(admin="ok", clinician="ok", **READ_ONLY),
    "appointment_attendance": expect(admin="redirect", clinician="redirect", **READ_ONLY),
    "time_off": expect(admin="ok", clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "time_off_delete": expect(admin="redirect", clinician="redirect"),
    "calendar_feed_settings": expect(clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "noshow_review_list": expect(clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "noshow_review_action": expect(admin="redirect", clinician="redirect", **READ_ONLY),
    "workload_alerts": expect(
        admin="ok", clinician="ok", other_clinician="ok", supervisor="ok", **STAFF_PAGE
    ),
    # The client portal: the client alone.
    "portal_appointments": expect(client="ok"),
    "portal_appointment_action": expect(client="ok"),
    "portal_measures": expect(client="ok"),
    # Clinical pages: the care team (clinician and current supervisor), never the admin.
    "client_timeline": expect(clinician="ok", supervisor="ok"),
    "response_detail": expect(clinician="ok", supervisor="ok"),
    "flag_list": expect(clinician="ok", other_clinician="ok", **STAFF_PAGE),
    "flag_detail": expect(clinician="ok", supervisor="ok"),
    "flag_transition": expect(**CARE_TEAM_WRITE),
    "repair_action_new": expect(**CARE_TEAM_WRITE),
    "rupture_log_new": expect(**CARE_TEAM_WRITE),
    "outreach": expect(**CARE_TEAM_WRITE),
    "ending_plan": expect(**CARE_TEAM_WRITE),
    "termination_offer": expect(**CARE_TEAM_WRITE),
    "ending_close": expect(**CARE_TEAM_WRITE),
    "measurement_plan_edit": expect(**CARE_TEAM_WRITE),
    "repair_plan_answer": expect(**CARE_TEAM_WRITE),
    # In session: the clinician holding the session alone, not even the supervisor.
    "in_session_start": expect(clinician="ok"),
    "in_session_form": expect(clinician="ok"),
    "in_session_done": expect(clinician="ok"),
    # Countertransference notes: the author and their current supervisor.
    "countertransference_list": expect(clinician="ok", supervisor="ok"),
    "countertransference_detail": expect(clinician="ok", supervisor="ok"),
    # Supervision: the supervisor acts; the supervisee reads the session and may mark their
    # own follow-up done.
    "review_queue": expect(supervisor="ok", **STAFF_PAGE),
    "supervisee_overview": expect(supervisor="ok", **STAFF_PAGE),
    "supervision_flag_export": expect(supervisor="ok", **STAFF_PAGE),
    "supervision_flag_export_download": expect(supervisor="ok", **STAFF_PAGE),
    "supervision_session_list": expect(supervisor="ok", **STAFF_PAGE),
    "supervision_session_new": expect(supervisor="ok", **STAFF_PAGE),
    "supervision_flag_acknowledge": expect(supervisor="redirect", clinician="403"),
    "supervision_flag_agenda": expect(**SUPERVISOR_WRITE),
    "supervision_flag_close": expect(**SUPERVISOR_WRITE),
    "supervision_repair_plan_request": expect(**SUPERVISOR_WRITE),
    # The alert is about the clinician, and an admin sees workload alerts: both may know it
    # exists (403); others get 404.
    "supervision_workload_agenda": expect(supervisor="redirect", clinician="403", admin="403"),
    "supervision_session_detail": expect(supervisor="ok", clinician="ok"),
    "supervision_session_record": expect(**SUPERVISOR_WRITE),
    "supervision_topic_add": expect(**SUPERVISOR_WRITE),
    "supervision_follow_up_new": expect(**SUPERVISOR_WRITE),
    "supervision_agenda_decide": expect(**SUPERVISOR_WRITE),
    "supervision_follow_up_done": expect(supervisor="redirect", clinician="redirect"),
}


def named_patterns() -> Iterator[tuple[str, str]]:
    """(url name, route) for every named pattern, recursing into includes."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                if route.startswith(EXCLUDED_PREFIXES):
                    continue
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and entry.name:
                yield entry.name, route

    yield from walk(get_resolver().url_patterns, "")


def outcome(response: Any, login_url: str) -> str:
    code = response.status_code
    if code == 400 or 200 <= code < 300:
        return "ok"
    if 300 <= code < 400:
        return "login" if response["Location"].startswith(login_url) else "redirect"
    return str(code)


def attempt(http: HttpClient, url: str, login_url: str) -> str:
    # A savepoint per request: a POST that succeeds (revoking, closing) changes nothing that
    # the next request sees.
    with transaction.atomic():
        try:
            response = http.get(url)
            if response.status_code == 405:
                response = http.post(url, {})
            result = outcome(response, login_url)
        except Exception as exc:
            result = f"500 ({type(exc).__name__}: {exc})"
        transaction.set_rollback(True)
    return result


@pytest.fixture
def world() -> World:
    return build_world()


def test_every_named_url_has_a_declared_policy() -> None:
    names = {name for name, _ in named_patterns()}
    missing = sorted(names - POLICY.keys())
    stale = sorted(POLICY.keys() - names)
    assert not missing, f"URL names without an access policy in {__name__}.POLICY: {missing}"
    assert not stale, f"POLICY names URLs that no longer exist: {stale}"


def test_every_persona_gets_what_the_policy_says(world: World) -> None:
    args = url_args(world)
    login_url = reverse("account_login")
    clients: dict[str, HttpClient] = {}
    for persona, user in world.personas.items():
        clients[persona] = HttpClient()
        if user is not None:
            clients[persona].force_login(user)

    observed: dict[str, dict[str, str]] = {}
    for name, _route in sorted(named_patterns()):
        url = reverse(name, args=args.get(name, []))
        observed[name] = {
            persona: attempt(clients[persona], url, login_url) for persona in PERSONAS
        }

    problems = []
    for name, row in observed.items():
        declared = POLICY.get(name)
        if declared is None:
            problems.append(f"{name}: no policy declared; observed {row}")
            continue
        for persona in PERSONAS:
            if row[persona] != declared[persona]:
                problems.append(
                    f"{name} as {persona}: expected {declared[persona]}, got {row[persona]}"
                )
    assert not problems, "\n".join(problems)
