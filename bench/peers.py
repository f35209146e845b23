"""Peers, where the operation matches, each in its own throwaway venv made during the run.

- django-appointment (PyPI): book N appointments, each with its email reminder scheduled
  (``create_and_save_appointment`` with ``want_reminder``, which writes a django-q2 schedule).
  Ours: ``appointment_book`` N times, then one reminder planning sweep that plans every
  session's reminders (our reminders are planned set-based by the sweep, not per booking).
- django-scheduler (PyPI): a year of weekly occurrences for 1,000 clinicians
  (``Event.get_occurrences``). Ours: ``series_occurrences`` (what series booking expands).

Each peer gets an empty PostgreSQL database of ours (``*_bench_peer_*``, dropped afterwards)
and is migrated there; only the timed operation is compared. Their code lives in a temp dir
and is never committed. A peer that cannot be installed or run is reported, not fatal.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import venv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql

from bench.common import conninfo, db_name, drop_database, say, timed, use_database
from bench.data import SESSION, TZ
from practice.models import Client, ClinicianProfile, Episode, Membership, Practice, User
from scheduling import reminders
from scheduling.models import AppointmentSeries, ReminderDelivery, series_occurrences
from scheduling.services import Slot, appointment_book

PEER_SETTINGS = """
import os
SECRET_KEY = "peer-bench-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.sites", "django.contrib.admin",
] + os.environ["PEER_APPS"].split(",")
MIDDLEWARE = []
ROOT_URLCONF = "peer_urls"
SITE_ID = 1
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [],
              "APP_DIRS": True, "OPTIONS": {"context_processors": [
                  "django.template.context_processors.request",
                  "django.contrib.auth.context_processors.auth",
                  "django.contrib.messages.context_processors.messages"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql",
             "NAME": os.environ["PEER_DB"], "HOST": os.environ.get("PEER_HOST", ""),
             "PORT": os.environ.get("PEER_PORT", ""), "USER": os.environ.get("PEER_USER", ""),
             "PASSWORD": os.environ.get("PEER_PASSWORD", "")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
Q_CLUSTER = {"name": "bench", "orm": "default", "sync": False}
STATIC_URL = "/static/"
LOGGING = {"version": 1, "disable_existing_loggers": True}
"""

PEER_URLS = """
import os
from django.urls import include, path
urlpatterns = []
if "appointment" in os.environ["PEER_APPS"]:
    urlpatterns.append(path("appointment/", include("appointment.urls")))
"""

APPOINTMENT_SCRIPT = """
import datetime as dt, json, logging, sys, time
import django
django.setup()
logging.disable(logging.CRITICAL)
from django.core.management import call_command
# The wheel ships without the app's migrations: make them in the throwaway venv, then migrate.
call_command("makemigrations", "appointment", verbosity=0)
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from appointment.models import Service, StaffMember, AppointmentRequest
from appointment.utils.db_helpers import create_and_save_appointment
from django_q.models import Schedule
n = int(sys.argv[1])
User = get_user_model()
staff_user = User.objects.create_user(username="staff", email="staff@peer.example")
service = Service.objects.create(name="Session", duration=dt.timedelta(minutes=50), price=0)
staff = StaffMember.objects.create(user=staff_user)
staff.services_offered.add(service)
clients = [User.objects.create_user(username=f"c{i}", email=f"c{i}@peer.example", first_name="C")
           for i in range(n)]
factory = RequestFactory()
first = dt.date.today() + dt.timedelta(days=30)
started = time.perf_counter()
for i, client in enumerate(clients):
    day = first + dt.timedelta(days=i // 10)
    hour = 8 + i % 10
    ar = AppointmentRequest.objects.create(
        date=day, start_time=dt.time(hour), end_time=dt.time(hour, 50),
        service=service, staff_member=staff)
    request = factory.get("/")
    request.user = client
    create_and_save_appointment(
        ar, {"email": client.email, "name": "C"},
        {"phone": "+4930123456", "want_reminder": True, "address": "Practice"}, request)
seconds = time.perf_counter() - started
scheduled = Schedule.objects.count()
print(json.dumps({"seconds": seconds, "booked": n, "reminders_scheduled": scheduled}))
"""

SCHEDULER_SCRIPT = """
import datetime as dt, json, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from schedule.models import Calendar, Event, Rule
n = int(sys.argv[1])
calendar = Calendar.objects.create(name="Practice", slug="practice")
rule = Rule.objects.create(name="Weekly", description="weekly", frequency="WEEKLY")
start = dt.datetime(2027, 1, 4, 9, tzinfo=dt.timezone.utc)
Event.objects.bulk_create([
    Event(start=start, end=start + dt.timedelta(minutes=50), title=f"Clinician {i}",
          calendar=calendar, rule=rule) for i in range(n)])
events = list(Event.objects.select_related("rule"))
started = time.perf_counter()
total = 0
for event in events:
    total += len(event.get_occurrences(start, start + dt.timedelta(days=365)))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "clinicians": n, "occurrences": total}))
"""


def _peer_env(dbname: str, apps: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "peer_settings",
        "PEER_APPS": apps,
        "PEER_DB": dbname,
        "PEER_HOST": str(db.get("HOST") or ""),
        "PEER_PORT": str(db.get("PORT") or ""),
        "PEER_USER": str(db.get("USER") or ""),
        "PEER_PASSWORD": str(db.get("PASSWORD") or ""),
    }


def _run_peer(
    name: str, packages: list[str], apps: str, script: str, arg: int, timeout: float
) -> dict[str, Any]:
    """Install `packages` into a fresh venv and run `script`; errors become a report."""
    dbname = db_name(f"peer_{name.replace('-', '_')}")
    with tempfile.TemporaryDirectory(prefix=f"peer-{name}-") as temp:
        folder = Path(temp)
        try:
            say(f"peers: installing {' '.join(packages)} into a throwaway venv")
            venv.create(folder / "venv", with_pip=True)
            python = str(folder / "venv" / "bin" / "python")
            install = subprocess.run(  # noqa: S603
                [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if install.returncode != 0:
                return {"status": "not installable", "detail": install.stderr[-800:]}
            freeze = subprocess.run(  # noqa: S603
                [python, "-m", "pip", "freeze"], capture_output=True, text=True, check=False
            )
            versions = [
                line
                for line in freeze.stdout.splitlines()
                if line.lower().startswith(("django", "psycopg"))
            ]
            (folder / "peer_settings.py").write_text(PEER_SETTINGS)
            (folder / "peer_urls.py").write_text(PEER_URLS)
            (folder / "peer_bench.py").write_text(script)
            drop_database(dbname)
            with psycopg.connect(conninfo("postgres"), autocommit=True) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            run = subprocess.run(  # noqa: S603
                [python, "peer_bench.py", str(arg)],
                cwd=folder,
                env=_peer_env(dbname, apps),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if run.returncode != 0:
                return {
                    "status": "failed to run",
                    "versions": versions,
                    "detail": run.stderr[-1500:],
                }
            result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
            return {"status": "ok", "versions": versions, **result}
        except (OSError, subprocess.SubprocessError, ValueError, psycopg.Error) as exc:
            return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"[:800]}
        finally:
            drop_database(dbname)


def ours_book_with_reminders(dbname: str, count: int) -> dict[str, Any]:
    """appointment_book `count` times into a fresh database, then plan their reminders."""
    use_database(dbname)
    practice = Practice.objects.create(name="Peer", slug="peer", timezone=TZ)
    clinicians: list[User] = []
    for n in range(math.ceil(count / 40)):
        user = User.objects.create_user(f"peer{n}@bench.example", first_name="C", last_name=f"{n}")
        membership = Membership.objects.create(user=user, practice=practice, is_clinician=True)
        ClinicianProfile.objects.create(membership=membership)
        clinicians.append(user)
    clients = Client.objects.bulk_create(
        Client(
            practice=practice,
            first_name="C",
            last_name=f"{j}",
            status="active",
            email=f"c{j}@bench.example",
            phone="+4930123456",
        )
        for j in range(count)
    )
    Episode.objects.bulk_create(
        Episode(client=client, clinician=clinicians[j % len(clinicians)])
        for j, client in enumerate(clients)
    )
    # Every session within 48 hours after `plan_at`, and 48 hours after booking: the one
    # sweep at `plan_at` plans each one's "48 hours before" reminders (email and SMS).
    # UTC: adding hours to a local time repeats an hour when the clocks change.
    plan_at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    plan_at += timedelta(days=3)

    def book() -> None:
        for j, client in enumerate(clients):
            start = plan_at + timedelta(hours=j // len(clinicians) + 1)
            appointment_book(
                clinician=clinicians[j % len(clinicians)],
                client=client,
                slot=Slot(starts_at=start, ends_at=start + SESSION),
                actor=clinicians[j % len(clinicians)],
                notify=False,
            )

    _, book_seconds = timed(book)
    planned, plan_seconds = timed(lambda: reminders.reminders_plan(now=plan_at))
    return {
        "seconds": book_seconds + plan_seconds,
        "booking_seconds": round(book_seconds, 3),
        "planning_seconds": round(plan_seconds, 4),
        "booked": count,
        "reminder_rows_planned": planned,
        "pending": ReminderDelivery.objects.filter(state="pending").count(),
    }


def ours_weekly_occurrences(clinicians: int) -> dict[str, Any]:
    start = datetime(2027, 1, 4, 9, tzinfo=UTC)
    until = (start + timedelta(days=365)).date()

    def expand() -> int:
        return sum(
            len(
                series_occurrences(
                    first_start=start,
                    tz=TZ,
                    frequency=AppointmentSeries.Frequency.WEEKLY,
                    interval=1,
                    until=until,
                    count=None,
                )
            )
            for _ in range(clinicians)
        )

    total, seconds = timed(expand)
    return {"seconds": seconds, "clinicians": clinicians, "occurrences": total}


def peers(dbname: str, *, bookings: int, clinicians: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ours = ours_book_with_reminders(dbname, bookings)
    theirs = _run_peer(
        "django-appointment",
        ["django-appointment", "django-q2", "psycopg[binary]"],
        "django_q,phonenumber_field,appointment",
        APPOINTMENT_SCRIPT,
        bookings,
        timeout=600,
    )
    out["django-appointment: book N with a reminder each"] = _compare(ours, theirs)
    ours_occ = ours_weekly_occurrences(clinicians)
    theirs_occ = _run_peer(
        "django-scheduler",
        ["django-scheduler", "psycopg[binary]"],
        "schedule",
        SCHEDULER_SCRIPT,
        clinicians,
        timeout=600,
    )
    out["django-scheduler: a year of weekly occurrences"] = _compare(ours_occ, theirs_occ)
    return out


def _compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"ours": ours, "theirs": theirs}
    if theirs.get("status") == "ok" and theirs.get("seconds"):
        row["ours_over_theirs"] = round(ours["seconds"] / theirs["seconds"], 3)
    else:
        row["ours_over_theirs"] = None
    return row


if __name__ == "__main__":
    sys.exit("run it through bench/run.py --only peers")
