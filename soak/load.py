"""Load: simulated clinicians, clients and supervisors against gunicorn, for a fixed time.

Plain threads and http.client, one thread per simulated user, a new loopback connection per
request (gunicorn closes idle keep-alive connections sooner than our think time). Each user
waits a random think time between requests, as a person would.

Staff sessions are created directly in the session store, as a login with password and TOTP
would leave them: the staff have TOTP enrolled, so the soak server keeps MFA_REQUIRED on and
the MFA gate runs on every request. Logging in 40 people through PBKDF2 at the start would
measure password hashing, not the practice's pages.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import uuid
import zoneinfo
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.urls import reverse
from django.utils import timezone

from alliance.models import FlagEvent, RuptureFlag
from practice.models import (
    Client,
    ClinicianProfile,
    Episode,
    Membership,
    Practice,
    SupervisionPairing,
    User,
)
from scheduling.links import client_link_token
from scheduling.models import Appointment
from soak.stats import CONNECTION_ERROR, EXPECTED, OK, SERVER_ERROR, UNEXPECTED, Stats

TZ = "Europe/Berlin"
HOURS = range(9, 17)  # bookable hours, local time
DAYS_AHEAD = 20  # working days with seeded sessions and booking attempts
THINK = (1.0, 3.0)  # seconds between a user's requests
LINK_REFUSALS = ("already used", "already cancelled", "expired when")
FLAG_RULES = [
    RuptureFlag.Rule.LOW_ALLIANCE,
    RuptureFlag.Rule.ALLIANCE_DROP,
    RuptureFlag.Rule.FELT_OFF,
]


@dataclass
class ClinicianSeat:
    session: str
    client_ids: list[int]


@dataclass
class SupervisorSeat:
    session: str
    flag_ids: list[int]


@dataclass
class Cast:
    clinicians: list[ClinicianSeat]
    supervisors: list[SupervisorSeat]
    link_paths: list[str]
    appointments: int


def split_users(users: int) -> tuple[int, int, int]:
    """Clinicians, clients, supervisors: 30/12/8 for 50 users."""
    supervisors = max(1, round(users * 0.16))
    clients = max(1, round(users * 0.24))
    return max(1, users - supervisors - clients), clients, supervisors


def working_days(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def _staff(practice: Practice, email: str, **roles: bool) -> User:
    user = User(email=email, first_name="Soak", last_name=email.split("@")[0])
    user.set_unusable_password()
    user.save()
    membership = Membership.objects.create(user=user, practice=practice, **roles)
    if membership.is_clinician:
        ClinicianProfile.objects.create(membership=membership)
    TOTP.activate(user, generate_totp_secret())
    return user


def _session_for(user: User) -> str:
    """What django.contrib.auth.login leaves in the session, minus the password check."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    assert store.session_key is not None
    return store.session_key


def seed(
    *, clinicians: int, supervisors: int, clients_each: int, flags_each: int, rng: random.Random
) -> Cast:
    """A practice with caseloads, a month of sessions, open flags and supervision pairings."""
    practice = Practice.objects.create(name="Soak practice", slug="soak", timezone=TZ)
    zone = zoneinfo.ZoneInfo(TZ)
    today = timezone.now().astimezone(zone).date()
    days = working_days(today, DAYS_AHEAD)
    cast = Cast(clinicians=[], supervisors=[], link_paths=[], appointments=0)
    supervisor_users = [
        _staff(practice, f"supervisor{n}@soak.example", is_supervisor=True)
        for n in range(supervisors)
    ]
    flags_of: dict[int, list[int]] = {s.pk: [] for s in supervisor_users}
    for n in range(clinicians):
        clinician = _staff(practice, f"clinician{n}@soak.example", is_clinician=True)
        supervisor = supervisor_users[n % supervisors]
        SupervisionPairing.objects.create(
            practice=practice,
            supervisor=supervisor,
            supervisee=clinician,
            started_on=today - timedelta(days=90),
        )
        clients = Client.objects.bulk_create(
            Client(
                practice=practice,
                first_name="Client",
                last_name=f"{n}-{c}",
                email=f"client{n}-{c}@soak.example",
            )
            for c in range(clients_each)
        )
        episodes = Episode.objects.bulk_create(
            Episode(client=c, clinician=clinician, stage=Episode.Stage.MIDDLE) for c in clients
        )
        # Two sessions per client on distinct slots of the clinician's month: no overlap.
        slots = rng.sample([(d, h) for d in days for h in HOURS], 2 * clients_each)
        appointments = Appointment.objects.bulk_create(
            Appointment(
                practice=practice,
                clinician=clinician,
                client=clients[i % clients_each],
                episode=episodes[i % clients_each],
                starts_at=datetime(d.year, d.month, d.day, h, tzinfo=zone),
                ends_at=datetime(d.year, d.month, d.day, h, 50, tzinfo=zone),
            )
            for i, (d, h) in enumerate(slots)
        )
        cast.appointments += len(appointments)
        cast.link_paths += [
            reverse("client_link", args=["confirm", client_link_token(a, "confirm")])
            for a in appointments
        ]
        raised = timezone.now() - timedelta(days=2)
        flags = RuptureFlag.objects.bulk_create(
            RuptureFlag(
                practice=practice,
                episode=episodes[f % clients_each],
                client=clients[f % clients_each],
                clinician=clinician,
                rule=FLAG_RULES[f % len(FLAG_RULES)],
                severity=RuptureFlag.SEVERITY[FLAG_RULES[f % len(FLAG_RULES)]],
                trigger_key=f"soak:{uuid.uuid4().hex}",
                evidence={"summary": "Seeded by the soak run.", "total": 24},
                raised_at=raised,
            )
            for f in range(flags_each)
        )
        FlagEvent.objects.bulk_create(
            FlagEvent(flag=f, at=raised, action=FlagEvent.Action.RAISED, to_status="open")
            for f in flags
        )
        flags_of[supervisor.pk] += [f.pk for f in flags]
        cast.clinicians.append(ClinicianSeat(_session_for(clinician), [c.pk for c in clients]))
    for supervisor in supervisor_users:
        rng.shuffle(flags_of[supervisor.pk])
        cast.supervisors.append(SupervisorSeat(_session_for(supervisor), flags_of[supervisor.pk]))
    rng.shuffle(cast.link_paths)
    return cast


# --- Simulated users ----------------------------------------------------------------------


@dataclass
class Shared:
    port: int
    stats: Stats
    deadline: float
    links: deque[str]
    used_links: list[str] = field(default_factory=list)
    booked: int = 0
    conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Browser:
    """One person: their cookies, a CSRF secret (Django accepts the unmasked secret as the
    form token), and a request helper that times and classifies every answer."""

    def __init__(self, shared: Shared, session: str | None, rng: random.Random) -> None:
        self.shared, self.rng = shared, rng
        self.csrf = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))
        self.cookie = f"csrftoken={self.csrf}" + (f"; sessionid={session}" if session else "")

    def go(
        self,
        kind: str,
        path: str,
        form: dict[str, str] | None = None,
        expected: tuple[int, ...] = (),
        because: tuple[str, ...] = (),
    ) -> int:
        """Send one request; a status in `expected` counts as expected only when the page
        says one of `because` (the refusal the mix provokes, not some other form error)."""
        headers = {"Cookie": self.cookie, "Connection": "close"}
        body = None
        if form is not None:
            body = urlencode({**form, "csrfmiddlewaretoken": self.csrf})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.shared.port, timeout=60)
        started = time.perf_counter()
        try:
            conn.request("POST" if form is not None else "GET", path, body, headers)
            response = conn.getresponse()
            page = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            self.shared.stats.record(kind, CONNECTION_ERROR, None, f"{path}: {exc!r}")
            return 0
        finally:
            conn.close()
        seconds = time.perf_counter() - started
        status, location = response.status, response.getheader("Location", "")
        if status >= 500:
            outcome = SERVER_ERROR
        elif status in expected and any(reason in page for reason in because):
            outcome = EXPECTED
        elif status >= 400 or "/accounts/login" in location or "/mfa-required" in location:
            outcome = UNEXPECTED
        else:
            outcome = OK
        self.shared.stats.record(kind, outcome, seconds, f"{status} {path} {location}")
        return status

    def think(self) -> bool:
        """Pause like a person; False once the run is over."""
        pause = self.rng.uniform(*THINK)
        remaining = self.shared.deadline - time.monotonic()
        time.sleep(max(0.0, min(pause, remaining)))
        return time.monotonic() < self.shared.deadline


def _some_day(rng: random.Random) -> date:
    return rng.choice(working_days(timezone.localdate(), DAYS_AHEAD))


def clinician_user(shared: Shared, seat: ClinicianSeat, rng: random.Random) -> None:
    me = Browser(shared, seat.session, rng)
    while me.think():
        roll = rng.random()
        if roll < 0.3:
            me.go("week_view", f"/calendar/?date={_some_day(rng).isoformat()}")
        elif roll < 0.55:
            me.go("day_view", f"/calendar/day/?date={_some_day(rng).isoformat()}")
        elif roll < 0.75:
            me.go("client_timeline", f"/clients/{rng.choice(seat.client_ids)}/timeline/")
        else:
            day, hour = _some_day(rng), rng.choice(HOURS)
            me.go("booking_form", f"/appointments/new/?date={day.isoformat()}&time={hour:02}:00")
            if not me.think():
                return
            # A taken slot is refused with the form and a 400: expected, counted apart.
            status = me.go(
                "booking_post",
                "/appointments/new/",
                {
                    "client": str(rng.choice(seat.client_ids)),
                    "day": day.isoformat(),
                    "start_time": f"{hour:02}:00",
                    "duration": "50",
                    "kind": "session",
                    "location": "in_person",
                    "repeat": "none",
                    "interval": "1",
                    "book_anyway": "on",
                    "override_reason": "Soak run.",
                },
                expected=(400,),
                because=("already has a session", "just taken by another booking"),
            )
            with shared.lock:
                shared.booked += status == 302
                shared.conflicts += status == 400


def client_user(shared: Shared, rng: random.Random) -> None:
    me = Browser(shared, None, rng)
    while me.think():
        with shared.lock:
            fresh = bool(shared.links)
            path = shared.links.pop() if fresh else rng.choice(shared.used_links or [""])
            if fresh:
                shared.used_links.append(path)
        if not path:
            continue
        # 410: a link already used (only once the fresh ones run out) or the session was
        # cancelled by a clinician meanwhile. Both are the link doing its job.
        me.go("confirm_page", path, expected=(410,), because=LINK_REFUSALS)
        if not me.think():
            return
        me.go("confirm_post", path, {}, expected=(410,), because=LINK_REFUSALS)


def supervisor_user(shared: Shared, seat: SupervisorSeat, rng: random.Random) -> None:
    me = Browser(shared, seat.session, rng)
    pending = list(seat.flag_ids)
    while me.think():
        me.go("review_queue", "/supervision/queue/")
        if rng.random() < 0.6 and seat.flag_ids:
            if not me.think():
                return
            # Once every flag is acknowledged, acknowledging again is refused with a 400.
            flag = pending.pop() if pending else rng.choice(seat.flag_ids)
            me.go(
                "acknowledge_post",
                f"/supervision/flags/{flag}/acknowledge/",
                {"note": "Seen; discuss in supervision.", "next": "/supervision/queue/"},
                expected=(400,),
                because=("already acknowledged",),
            )


def run_users(*, port: int, cast: Cast, clients: int, seconds: float, seed_: int) -> dict[str, Any]:
    shared = Shared(
        port=port, stats=Stats(), deadline=time.monotonic() + seconds, links=deque(cast.link_paths)
    )
    threads: list[threading.Thread] = []
    for n, seat in enumerate(cast.clinicians):
        rng = random.Random(seed_ * 1000 + n)  # noqa: S311
        threads.append(threading.Thread(target=clinician_user, args=(shared, seat, rng)))
    for n in range(clients):
        rng = random.Random(seed_ * 1000 + 500 + n)  # noqa: S311
        threads.append(threading.Thread(target=client_user, args=(shared, rng)))
    for n, sup in enumerate(cast.supervisors):
        rng = random.Random(seed_ * 1000 + 800 + n)  # noqa: S311
        threads.append(threading.Thread(target=supervisor_user, args=(shared, sup, rng)))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.monotonic() - began
    summary = shared.stats.summary(elapsed)
    return {
        "users": len(threads),
        "seconds": round(elapsed, 1),
        "think_time_s": list(THINK),
        "bookings_made": shared.booked,
        "booking_conflicts": shared.conflicts,
        "links_used": len(shared.used_links),
        "hung_users": sum(thread.is_alive() for thread in threads),
        **summary,
    }
