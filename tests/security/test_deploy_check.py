"""`check --deploy` is clean with production settings, and real responses carry the security
headers. tests/practice/test_settings.py checks the defaults; this file checks the full
production environment a deploy sets, and the headers on https, app and client-link pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from tests.practice.test_settings import run_manage
from tests.security.world import World, build_world

DEPLOY = {
    "SECRET_KEY": "k3y-for-the-deploy-check-only-with-more-than-fifty-characters-7f9a2c",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "practice.example,www.practice.example",
    "CSRF_TRUSTED_ORIGINS": "https://practice.example",
    "SITE_URL": "https://practice.example",
    "SECURE_SSL_REDIRECT": "true",
    "USE_X_FORWARDED_PROTO": "true",
    "MFA_REQUIRED": "true",
}


def test_check_deploy_has_no_warnings_with_the_production_environment() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_does_catch_a_weak_key() -> None:
    """The check above is live: a short key is reported."""
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", **{**DEPLOY, "SECRET_KEY": "short"}
    )
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


@pytest.fixture
def world(db: None) -> World:
    return build_world()


def pages(world: World) -> dict[str, tuple[HttpClient, str]]:
    anonymous = HttpClient()
    clinician = HttpClient()
    clinician.force_login(world.clinician)
    portal = HttpClient()
    portal.force_login(world.client_user)
    from scheduling.links import client_link_token

    token = client_link_token(world.upcoming, "confirm")
    return {
        "sign-in": (anonymous, reverse("account_login")),
        "calendar": (clinician, reverse("calendar_week")),
        "portal": (portal, reverse("portal_appointments")),
        "client link": (anonymous, reverse("client_link", args=["confirm", token])),
    }


def assert_security_headers(response: Any) -> None:
    csp = response["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in csp, (directive, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("page", ["sign-in", "calendar", "portal", "client link"])
def test_https_responses_carry_every_security_header_and_hsts(world: World, page: str) -> None:
    http, path = pages(world)[page]
    response = http.get(path, secure=True)
    assert response.status_code == 200
    assert_security_headers(response)
    assert response["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")


def test_plain_http_gets_no_hsts_but_the_other_headers(world: World) -> None:
    response = HttpClient().get(reverse("account_login"))
    assert_security_headers(response)
    assert "Strict-Transport-Security" not in response


def test_plain_http_is_redirected_to_https_in_production(world: World, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = HttpClient().get(reverse("account_login"))
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_session_and_csrf_cookies_are_secure_and_the_session_one_http_only(
    world: World,
) -> None:
    http = HttpClient()
    http.get(reverse("account_login"), secure=True)
    response = http.post(
        reverse("account_login"),
        {"login": world.clinician.email, "password": "correct-horse-battery-42"},
        secure=True,
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"
    csrf = http.cookies["csrftoken"]
    assert csrf["secure"]
