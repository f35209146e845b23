from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from practice.demo import DEMO_PASSWORD, LOGINS, seed_demo


class Command(BaseCommand):
    help = "Create the demo practice (idempotent) and print one login per role."

    def handle(self, *args: Any, **options: Any) -> None:
        practice = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo practice ready: {practice.name}"))
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for role, email in LOGINS:
            self.stdout.write(f"  {role:<11} {email}")
        if settings.MFA_REQUIRED:
            self.stdout.write("Staff will be asked to set up two-factor sign-in (MFA_REQUIRED).")
