from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand

from practice.demo import DEMO_PASSWORD, LOGINS, seed_demo
from practice.models import Practice


def seed_installed_apps(practice: Practice) -> list[str]:
    """Call ``<app>.demo.seed(practice)`` for every installed app that has one.

    Found by looking, not imported by name: practice sits below scheduling and alliance and
    must not import them. INSTALLED_APPS order is the dependency order, so each app sees the
    data of the apps below it. Returns the labels of the apps that seeded.
    """
    seeded: list[str] = []
    for config in apps.get_app_configs():
        if config.name == "practice":
            continue  # seed_demo() above is this app's own seed
        module_name = f"{config.name}.demo"
        if importlib.util.find_spec(module_name) is None:
            continue
        seed = getattr(importlib.import_module(module_name), "seed", None)
        if callable(seed):
            seed(practice)
            seeded.append(config.label)
    return seeded


class Command(BaseCommand):
    help = "Create the demo practice (idempotent) and print one login per role."

    def handle(self, *args: Any, **options: Any) -> None:
        practice = seed_demo()
        seeded = seed_installed_apps(practice)
        self.stdout.write(self.style.SUCCESS(f"Demo practice ready: {practice.name}"))
        if seeded:
            self.stdout.write(f"Demo data from: {', '.join(seeded)}")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for role, email in LOGINS:
            self.stdout.write(f"  {role:<11} {email}")
        if settings.MFA_REQUIRED:
            self.stdout.write("Staff will be asked to set up two-factor sign-in (MFA_REQUIRED).")
