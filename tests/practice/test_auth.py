"""Sign-in: email login, no public sign-up, MFA for staff, rate limits, password reset."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail
from django.test import Client as HttpClient
from django.urls import reverse

from practice.models import Client, Practice, User
from tests.factories import PASSWORD, staff


def totp_now(secret: str) -> str:
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


def test_there_is_no_public_sign_up(db: None) -> None:
    response = HttpClient().get(reverse("account_signup"))
    assert b"Sign Up Closed" in response.content or response.status_code in (403, 404)
    HttpClient().post(
        reverse("account_signup"),
        {
            "email": "walk-in@example.org",
            "password1": "pw-unusual-123456",
            "password2": "pw-unusual-123456",
        },
    )
    assert not User.objects.filter(email="walk-in@example.org").exists()


def test_staff_without_mfa_are_led_to_enrol_before_any_practice_page(
    practice: Practice, client_record: Client
) -> None:
    newcomer = staff(practice, "clinician", mfa=False)
    http = HttpClient()
    http.force_login(newcomer)
    for url in (reverse("home"), reverse("client_detail", args=[client_record.pk]), "/admin/"):
        response = http.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_required")
    page = http.get(reverse("mfa_required"))
    assert reverse("mfa_activate_totp").encode() in page.content


def test_enrolling_totp_opens_the_practice_pages(practice: Practice) -> None:
    newcomer = staff(practice, "clinician", mfa=False)
    http = HttpClient()
    http.post(reverse("account_login"), {"login": newcomer.email, "password": PASSWORD})
    assert http.get(reverse("home"))["Location"] == reverse("mfa_required")
    # Enrolling is a security change, so allauth asks for the password once more.
    assert http.get(reverse("mfa_activate_totp"))["Location"].startswith(
        reverse("account_reauthenticate")
    )
    http.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = http.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = re.search(rb'value="([A-Z2-7]{32})"', page.content)
    assert secret is not None, "the enrolment page shows the secret key"
    wrong = http.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200
    assert not Authenticator.objects.filter(user=newcomer).exists()
    http.post(reverse("mfa_activate_totp"), {"code": totp_now(secret.group(1).decode())})
    assert Authenticator.objects.filter(user=newcomer, type="totp").exists()
    assert http.get(reverse("home")).status_code == 200


def test_a_staff_login_with_mfa_asks_for_the_code(practice: Practice) -> None:
    user = staff(practice, "admin", mfa=False)
    from tests.factories import enrol_totp

    secret = enrol_totp(user)
    http = HttpClient()
    response = http.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert http.get(reverse("home")).status_code == 302  # not signed in yet
    response = http.post(reverse("mfa_authenticate"), {"code": totp_now(secret)})
    assert response.status_code == 302
    assert http.get(reverse("home")).status_code == 200


def test_clients_do_not_need_mfa(client_user: User) -> None:
    http = HttpClient()
    response = http.post(
        reverse("account_login"), {"login": client_user.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert http.get(reverse("home")).status_code == 200


def test_the_demo_setting_relaxes_mfa(settings: pytest.FixtureRequest, practice: Practice) -> None:
    settings.MFA_REQUIRED = False  # type: ignore[attr-defined]
    user = staff(practice, "clinician", mfa=False)
    http = HttpClient()
    http.force_login(user)
    assert http.get(reverse("home")).status_code == 200


def test_failed_logins_are_rate_limited(client_user: User) -> None:
    http = HttpClient()
    for _ in range(5):
        response = http.post(
            reverse("account_login"), {"login": client_user.email, "password": "wrong"}
        )
        assert response.status_code == 200
    response = http.post(
        reverse("account_login"), {"login": client_user.email, "password": PASSWORD}
    )
    assert response.status_code == 429 or b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in http.session


def test_password_reset_sends_a_working_link(client_user: User) -> None:
    http = HttpClient()
    http.post(reverse("account_reset_password"), {"email": client_user.email})
    assert len(mail.outbox) == 1
    link = re.search(
        r"http://testserver(/accounts/password/reset/key/\S+)", str(mail.outbox[0].body)
    )
    assert link is not None
    form_page = http.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    response = http.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1),
        {"password1": "a-brand-new-passphrase-3", "password2": "a-brand-new-passphrase-3"},
    )
    assert response.status_code == 302
    assert HttpClient().login(email=client_user.email, password="a-brand-new-passphrase-3")


def test_password_reset_for_an_unknown_address_reveals_nothing(db: None) -> None:
    response = HttpClient().post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert response.status_code == 302
