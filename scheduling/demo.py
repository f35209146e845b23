"""The demo practice's calendar: eight weeks of sessions around today. Idempotent.

``seed_demo`` discovers this module (practice must not import scheduling) and calls
``seed(practice)`` after the people exist. Four weeks back and four ahead, in the practice's
zone: weekly and fortnightly series for every open episode, past sessions mostly attended
with some no-shows and cancellations, each with its status history, and one clinician
(Jan Kraus) deliberately overbooked, weekends included, so the workload views have
something to show.

Rows go in with ``bulk_create`` rather than through the booking services: there are
hundreds, the services would send a notice for each, and the slot grids below never overlap
(the exclusion constraints would refuse the whole seed if they did).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Least
from django.utils import timezone

from practice.models import Episode, Practice, User
from scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    Kind,
    Location,
    Status,
    series_occurrences,
)

Via = AppointmentStatusChange.Via

OVERBOOKED_EMAIL = "clinician4@demo.practice"
WEEKS_BACK = 4
WEEKS_AHEAD = 4
SESSION = timedelta(minutes=50)
DOUBLE_SESSION = timedelta(minutes=90)

# An ordinary clinician's weekly grid: Monday to Friday, on the hour, between 09:00 and 17:00.
ORDINARY_HOURS = [time(9), time(10), time(11), time(13), time(14), time(15), time(16)]

# Jan Kraus: 27 double sessions (40.5 hours) a week, from 08:00, into the evening and on
# both weekend days. ISO weekday, start. None of these overlap.
OVERBOOKED_GRID: list[tuple[int, time]] = [
    *((day, start) for day in range(1, 6) for start in (time(8), time(9, 40), time(11, 20))),
    *((day, time(14)) for day in range(1, 6)),
    *((day, time(18)) for day in range(1, 5)),
    (6, time(9)),
    (6, time(10, 40)),
    (7, time(10)),
]

CANCEL_REASONS = ["unwell", "work trip", "childcare fell through", "exam", ""]


@dataclass
class Planned:
    """One session before it is written, with the status history it will carry."""

    appointment: Appointment
    now: datetime
    changes: list[AppointmentStatusChange] = field(default_factory=list)

    def change(self, to_status: str, *, at: datetime, by: User | None, via: str, why: str) -> None:
        # Keep the history in order and in the past, whatever the dice said.
        if self.changes:
            at = max(at, self.changes[-1].at + timedelta(minutes=1))
        at = min(at, self.now)
        self.changes.append(
            AppointmentStatusChange(
                from_status=self.appointment.status if self.changes else "",
                to_status=to_status,
                changed_by=by,
                via=via,
                reason=why,
                at=at,
            )
        )
        self.appointment.status = to_status
        self.appointment.status_changed_at = at


def _weekly_slot(clinician_index: int, client_index: int) -> tuple[int, time]:
    """A free weekly slot in an ordinary clinician's grid for their n-th client."""
    weekday = client_index % 5 + 1
    start = ORDINARY_HOURS[(client_index // 5 + clinician_index) % len(ORDINARY_HOURS)]
    return weekday, start


def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.isoweekday()) % 7)


@transaction.atomic
def seed(practice: Practice) -> None:
    """Add the demo calendar to ``practice``; does nothing if it has appointments already."""
    if Appointment.objects.in_practice(practice).exists():
        return
    rng = random.Random(20261122)  # noqa: S311 - demo data, not security
    zone = practice.tz
    now = timezone.now()
    today = timezone.localdate(timezone=zone)
    window_start = today - timedelta(weeks=WEEKS_BACK)
    window_end = today + timedelta(weeks=WEEKS_AHEAD) - timedelta(days=1)

    episodes = (
        Episode.objects.active()
        .in_practice(practice)
        .select_related("client", "clinician")
        .order_by("clinician__email", "pk")
    )
    by_clinician: dict[User, list[Episode]] = {}
    for episode in episodes:
        by_clinician.setdefault(episode.clinician, []).append(episode)

    # (episode, weekday, start, length, every n weeks) for every series to create.
    plans: list[tuple[Episode, int, time, timedelta, int]] = []
    for clinician_index, (clinician, caseload) in enumerate(by_clinician.items()):
        if clinician.email == OVERBOOKED_EMAIL:
            for slot_index, (weekday, start) in enumerate(OVERBOOKED_GRID):
                episode = caseload[slot_index % len(caseload)]
                plans.append((episode, weekday, start, DOUBLE_SESSION, 1))
            continue
        for client_index, episode in enumerate(caseload):
            weekday, start = _weekly_slot(clinician_index, client_index)
            # Clients nearing the end come fortnightly, as do a few others.
            fortnightly = episode.stage == Episode.Stage.ENDING or client_index % 4 == 3
            plans.append((episode, weekday, start, SESSION, 2 if fortnightly else 1))

    series_rows: list[AppointmentSeries] = []
    starts_per_series: list[list[datetime]] = []
    for episode, weekday, start, length, interval in plans:
        first_day = _first_on_or_after(max(window_start, episode.opened_on), weekday)
        first_start = datetime.combine(first_day, start, tzinfo=zone)
        starts = series_occurrences(
            first_start=first_start,
            tz=practice.timezone,
            frequency=AppointmentSeries.Frequency.WEEKLY,
            interval=interval,
            until=window_end,
            count=None,
        )
        if not starts:
            continue
        series_rows.append(
            AppointmentSeries(
                practice=practice,
                clinician=episode.clinician,
                client=episode.client,
                episode=episode,
                frequency=AppointmentSeries.Frequency.WEEKLY,
                interval=interval,
                first_start=first_start,
                duration=length,
                timezone=practice.timezone,
                until=window_end,
                created_by=episode.clinician,
            )
        )
        starts_per_series.append(starts)
    AppointmentSeries.objects.bulk_create(series_rows)

    # An episode's first session in the window is its intake when it opened in the window;
    # an ending episode's last one there is its (free) termination session.
    first_of: dict[int, datetime] = {}
    last_of: dict[int, datetime] = {}
    for series, starts in zip(series_rows, starts_per_series, strict=True):
        first_of[series.episode_id] = min(first_of.get(series.episode_id, starts[0]), starts[0])
        last_of[series.episode_id] = max(last_of.get(series.episode_id, starts[-1]), starts[-1])

    planned: list[Planned] = []
    for series, starts in zip(series_rows, starts_per_series, strict=True):
        episode = series.episode
        video = episode.client_id % 4 == 0
        for starts_at in starts:
            kind = Kind.SESSION
            if starts_at == first_of[episode.pk] and episode.opened_on >= window_start:
                kind = Kind.INTAKE
            elif starts_at == last_of[episode.pk] and episode.stage == Episode.Stage.ENDING:
                kind = Kind.TERMINATION
            appointment = Appointment(
                practice=practice,
                clinician=series.clinician,
                client=series.client,
                episode=episode,
                series=series,
                starts_at=starts_at,
                ends_at=starts_at + series.duration,
                kind=kind,
                fee_waived=kind == Kind.TERMINATION,
                location=Location.VIDEO if video else Location.IN_PERSON,
                video_url=f"https://meet.demo.practice/lindenhof-{episode.client_id}"
                if video
                else "",
                created_by=series.clinician,
            )
            plan = Planned(appointment, now)
            booked_at = min(series.first_start - timedelta(days=10), now)
            plan.change(
                Status.SCHEDULED, at=booked_at, by=series.clinician, via=Via.STAFF, why="booked"
            )
            _history(plan, rng, now, overbooked=series.clinician.email == OVERBOOKED_EMAIL)
            planned.append(plan)

    Appointment.objects.bulk_create([plan.appointment for plan in planned])
    # created_at is set on insert; the demo's sessions were booked well before they happen,
    # so reminders fall due for them as they would in a real calendar.
    Appointment.objects.in_practice(practice).update(
        created_at=Least(F("starts_at") - timedelta(days=14), Value(now))
    )
    changes: list[AppointmentStatusChange] = []
    for plan in planned:
        for change in plan.changes:
            change.appointment = plan.appointment
            changes.append(change)
    AppointmentStatusChange.objects.bulk_create(changes)


def _history(plan: Planned, rng: random.Random, now: datetime, *, overbooked: bool) -> None:
    """What happened to one session by ``now``: a realistic mix, told as status changes."""
    appointment = plan.appointment
    clinician = appointment.clinician
    starts_at, ends_at = appointment.starts_at, appointment.ends_at
    roll = rng.random()

    if ends_at <= now:
        if rng.random() < 0.5:
            plan.change(
                Status.CONFIRMED,
                at=starts_at - timedelta(days=2),
                by=None,
                via=Via.CLIENT_LINK,
                why="confirmed by the client",
            )
        if roll < 0.78:
            plan.change(
                Status.ATTENDED,
                at=ends_at + timedelta(minutes=10),
                by=clinician,
                via=Via.STAFF,
                why="attendance recorded",
            )
        elif roll < 0.86:
            plan.change(
                Status.NO_SHOW,
                at=starts_at + timedelta(minutes=20),
                by=clinician,
                via=Via.STAFF,
                why="attendance recorded",
            )
        elif roll < 0.92:
            plan.change(
                Status.LATE_CANCELLED,
                at=starts_at - timedelta(hours=rng.randint(1, 20)),
                by=clinician,
                via=Via.STAFF,
                why=f"client phoned: {rng.choice(CANCEL_REASONS) or 'no reason given'}",
            )
        elif roll < 0.97:
            plan.change(
                Status.CANCELLED_BY_CLIENT,
                at=starts_at - timedelta(days=rng.randint(2, 6)),
                by=None,
                via=Via.CLIENT_LINK,
                why=rng.choice(CANCEL_REASONS),
            )
        else:
            plan.change(
                Status.CANCELLED_BY_CLINICIAN,
                at=starts_at - timedelta(days=rng.randint(1, 5)),
                by=clinician,
                via=Via.STAFF,
                why="clinician unwell",
            )
        return

    # Not yet over. A few clients have already called off a later session (the overbooked
    # calendar stays full: that is its point); those within a week often confirmed.
    if not overbooked and roll < 0.04 and starts_at - now > timedelta(days=2):
        plan.change(
            Status.CANCELLED_BY_CLIENT,
            at=now - timedelta(hours=rng.randint(1, 48)),
            by=None,
            via=Via.CLIENT_LINK,
            why=rng.choice(CANCEL_REASONS),
        )
    elif starts_at - now < timedelta(days=7) and rng.random() < 0.6:
        plan.change(
            Status.CONFIRMED,
            at=min(starts_at - timedelta(days=2), now - timedelta(hours=rng.randint(1, 24))),
            by=None,
            via=Via.CLIENT_LINK,
            why="confirmed by the client",
        )
