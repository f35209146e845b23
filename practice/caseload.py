"""The admin's caseload pages: the board, the waitlist and matching, assigning, transfers and
the CSV exports. Selectors (reads) and services (writes, `<entity>_<action>(*, ...)`).

A top-layer page module, like practice/home.py. The practice core (practice/models.py,
services.py, access.py, views.py) never imports scheduling or alliance; this module sits
above all three apps and composes them: reads through their QuerySet methods
(`Appointment.objects.booked_hours_by_clinician()`, `.no_show_rates()`,
`WorkloadAlert.objects.open()`, `RuptureFlag.objects.open().counts_by_clinician()`), writes
through their services (`scheduling.services.appointment_cancel`) and the core's own
(`practice.services.episode_open`, `episode_close`, `audit_record`).

Admins see operational data only (DESIGN.md, Privacy): the board shows open flags as counts,
never a client's name next to a flag nor the evidence behind it, and the exports carry no
clinical content (no scores, answers, notes, flags or free-text reasons).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from alliance.models import RuptureFlag
from alliance.services import flags_follow_transfer
from practice.matching import ClientWishes, ClinicianFacts, Suggestion, rank
from practice.models import (
    Client,
    ClientQuerySet,
    ClinicianProfile,
    Episode,
    Membership,
    MembershipQuerySet,
    Practice,
    User,
)
from practice.services import audit_record, episode_close, episode_open
from scheduling.models import (
    Appointment,
    AppointmentQuerySet,
    AppointmentStatusChange,
    Status,
    WorkloadAlert,
)
from scheduling.services import appointment_cancel
from scheduling.workload import WEEKS_BACK

if TYPE_CHECKING:
    from django.http import HttpRequest

TRANSFER_REASON = "transferred to {name}"


def display_name(user: User) -> str:
    return user.get_full_name() or user.email


def local_today(practice: Practice, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(practice.tz).date()


# --- The board -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Weeks:
    """This week and next, Monday to Monday in the practice's time zone."""

    this_monday: date
    this_starts: datetime
    next_starts: datetime
    after_starts: datetime

    @property
    def next_monday(self) -> date:
        return self.this_monday + timedelta(days=7)


def weeks_around(practice: Practice, now: datetime) -> Weeks:
    today = local_today(practice, now)
    monday = today - timedelta(days=today.weekday())
    # Each Monday gets its own UTC offset: a week across a DST change is 167 or 169 hours.
    starts = [
        datetime.combine(monday + timedelta(days=7 * n), time.min, tzinfo=practice.tz)
        for n in range(3)
    ]
    return Weeks(
        this_monday=monday,
        this_starts=starts[0],
        next_starts=starts[1],
        after_starts=starts[2],
    )


@dataclass(frozen=True)
class BoardRow:
    """One clinician on the caseload board: operational numbers and counts, nothing clinical."""

    clinician_id: int
    membership_id: int
    name: str
    sort_name: str
    email: str
    active_episodes: int
    capacity: int
    hours_this_week: float
    hours_next_week: float
    hours_cap: int
    sessions_90_days: int
    no_shows_90_days: int
    no_show_rate: float | None
    open_alerts: int
    open_flags: int
    open_safety_flags: int

    @property
    def free_places(self) -> int:
        return self.capacity - self.active_episodes

    @property
    def over_capacity(self) -> bool:
        return self.active_episodes > self.capacity

    @property
    def full(self) -> bool:
        return self.active_episodes >= self.capacity

    @property
    def over_hours_this_week(self) -> bool:
        return self.hours_this_week > self.hours_cap

    @property
    def over_hours_next_week(self) -> bool:
        return self.hours_next_week > self.hours_cap

    @property
    def over_hours(self) -> bool:
        return self.over_hours_this_week or self.over_hours_next_week

    @property
    def load(self) -> float:
        """Share of capacity in use; a capacity of 0 with any episode is infinitely loaded."""
        if self.capacity > 0:
            return self.active_episodes / self.capacity
        return float("inf") if self.active_episodes else 0.0

    @property
    def no_show_percent(self) -> int | None:
        return None if self.no_show_rate is None else round(100 * self.no_show_rate)


def _no_show_key(row: BoardRow) -> float:
    # A clinician with no sessions due has no rate: below every real one, even 0 %.
    return -1.0 if row.no_show_rate is None else row.no_show_rate


# Sort keys of the board's columns; "-key" sorts the same column descending. Ties keep the
# name order, because rows are sorted by name first and Python's sort is stable.
BOARD_SORTS: dict[str, tuple[str, Callable[[BoardRow], Any]]] = {
    "name": ("Clinician", lambda r: r.sort_name),
    "episodes": ("Active episodes / capacity", lambda r: (r.load, r.active_episodes)),
    "this_week": ("Booked hours this week", lambda r: r.hours_this_week),
    "next_week": ("Booked hours next week", lambda r: r.hours_next_week),
    "no_shows": ("No-show rate (90 days)", _no_show_key),
    "alerts": ("Open workload alerts", lambda r: r.open_alerts),
    "flags": ("Open flags", lambda r: (r.open_flags, r.open_safety_flags)),
}


@dataclass(frozen=True)
class BoardFilters:
    query: str = ""
    over_capacity: bool = False
    over_hours: bool = False
    with_flags: bool = False
    with_alerts: bool = False
    sort: str = "name"

    def keep(self, row: BoardRow) -> bool:
        return (
            (not self.over_capacity or row.over_capacity)
            and (not self.over_hours or row.over_hours)
            and (not self.with_flags or row.open_flags > 0)
            and (not self.with_alerts or row.open_alerts > 0)
        )


def active_clinicians(practice: Practice) -> MembershipQuerySet:
    """The practice's active clinicians, with everything a board row or a match reads."""
    return (
        Membership.objects.active()
        .in_practice(practice)
        .clinicians()
        .select_related("user", "practice", "clinician_profile")
        .order_by("user__last_name", "user__first_name", "pk")
    )


def open_episode_counts(practice: Practice) -> dict[int, int]:
    """{clinician id: open episodes}. One grouped query."""
    rows = (
        Episode.objects.active().in_practice(practice).values("clinician").annotate(n=Count("pk"))
    )
    return {row["clinician"]: row["n"] for row in rows.order_by()}


def open_alert_counts(practice: Practice, weeks: Weeks) -> dict[int, int]:
    """{clinician id: open workload alerts} for the weeks the sweep keeps current, as on the
    workload page: an older alert left open is frozen, not news. One grouped query."""
    since = weeks.this_monday - timedelta(weeks=WEEKS_BACK)
    rows = (
        WorkloadAlert.objects.open()
        .in_practice(practice)
        .filter(week_start__gte=since)
        .values("clinician")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["clinician"]: row["n"] for row in rows}


def _profile(membership: Membership) -> ClinicianProfile | None:
    try:
        return membership.clinician_profile
    except ClinicianProfile.DoesNotExist:
        return None


def _capacity(membership: Membership) -> int:
    profile = _profile(membership)
    if profile is not None:
        return profile.effective_capacity
    return membership.practice.default_caseload_capacity


def caseload_board(
    *, practice: Practice, now: datetime, filters: BoardFilters | None = None
) -> list[BoardRow]:
    """One row per active clinician, filtered and sorted.

    A fixed number of queries whatever the size of the practice: the clinicians, then one
    grouped query per measure (open episodes, booked hours this week and next, no-shows,
    workload alerts, open flags). Filtering and sorting then happen in memory, on numbers
    that come from different apps and would not sort in one SQL statement.
    """
    filters = filters or BoardFilters()
    members = active_clinicians(practice)
    if filters.query:
        members = members.annotate(
            full_name=Concat("user__first_name", Value(" "), "user__last_name")
        ).filter(Q(full_name__icontains=filters.query) | Q(user__email__icontains=filters.query))
    weeks = weeks_around(practice, now)
    appointments = Appointment.objects.in_practice(practice)
    episodes = open_episode_counts(practice)
    this_week = appointments.booked_hours_by_clinician(weeks.this_starts, weeks.next_starts)
    next_week = appointments.booked_hours_by_clinician(weeks.next_starts, weeks.after_starts)
    no_shows = {row["clinician"]: row for row in appointments.no_show_rates("clinician", now=now)}
    alerts = open_alert_counts(practice, weeks)
    flags = RuptureFlag.objects.open().filter(practice=practice).counts_by_clinician()

    rows = []
    for member in members:
        user = member.user
        attendance = no_shows.get(user.pk, {})
        flag_counts = flags.get(user.pk, {})
        rows.append(
            BoardRow(
                clinician_id=user.pk,
                membership_id=member.pk,
                name=display_name(user),
                sort_name=f"{user.last_name} {user.first_name} {user.email}".casefold(),
                email=user.email,
                active_episodes=episodes.get(user.pk, 0),
                capacity=_capacity(member),
                hours_this_week=round(this_week.get(user.pk, 0.0), 2),
                hours_next_week=round(next_week.get(user.pk, 0.0), 2),
                hours_cap=practice.weekly_hours_cap,
                sessions_90_days=attendance.get("sessions", 0),
                no_shows_90_days=attendance.get("no_shows", 0),
                no_show_rate=attendance.get("no_show_rate"),
                open_alerts=alerts.get(user.pk, 0),
                open_flags=sum(flag_counts.values()),
                open_safety_flags=flag_counts.get(RuptureFlag.Rule.SAFETY, 0),
            )
        )
    kept = sorted((row for row in rows if filters.keep(row)), key=lambda r: r.sort_name)
    key = BOARD_SORTS[filters.sort.lstrip("-")][1]
    return sorted(kept, key=key, reverse=filters.sort.startswith("-"))


# --- The waitlist and matching -------------------------------------------------------------


def waitlist(practice: Practice) -> ClientQuerySet:
    """Clients waiting for a clinician, who has waited longest first."""
    return Client.objects.in_practice(practice).waitlisted().order_by("created_at", "pk")


def wishes_of(client: Client) -> ClientWishes:
    return ClientWishes(
        preferred_language=client.preferred_language,
        needs=tuple(client.needs),
        preferred_clinician_gender=client.preferred_clinician_gender,
        cultural_background=client.cultural_background,
        faith_background=client.faith_background,
        preferred_times=tuple(client.preferred_times),
    )


def clinician_facts(practice: Practice) -> list[ClinicianFacts]:
    """What matching needs about every active clinician. Two queries."""
    episodes = open_episode_counts(practice)
    facts = []
    for member in active_clinicians(practice):
        profile = _profile(member)
        facts.append(
            ClinicianFacts(
                clinician_id=member.user_id,
                name=display_name(member.user),
                capacity=_capacity(member),
                active_episodes=episodes.get(member.user_id, 0),
                languages=tuple(profile.languages) if profile else (),
                specialties=tuple(profile.specialties) if profile else (),
                gender=profile.gender if profile else "",
                backgrounds=tuple(profile.backgrounds) if profile else (),
                work_starts=profile.work_starts if profile else time(9, 0),
                work_ends=profile.work_ends if profile else time(17, 0),
            )
        )
    return facts


def suggestions_for(
    client: Client, facts: Iterable[ClinicianFacts] | None = None
) -> list[Suggestion]:
    """Every active clinician ranked for this client, best first, each with its reasons."""
    return rank(wishes_of(client), facts if facts is not None else clinician_facts(client.practice))


def _place_with(*, practice: Practice, clinician: User, over_capacity_reason: str) -> str:
    """Claim a place in the clinician's caseload: the reason to keep, or "" when there is room.

    The clinician's profile row is locked first, so two admins assigning to the same
    clinician at the same moment queue here and the second counts the first's episode:
    neither can slip past capacity without being asked for a reason.
    """
    clinicians = Membership.objects.active().in_practice(practice).clinicians()
    profile = (
        ClinicianProfile.objects.select_for_update(of=("self",))
        .select_related("membership__practice")
        .filter(membership__in=clinicians, membership__user=clinician)
        .first()
    )
    if profile is None:
        raise ValidationError({"clinician": "Choose an active clinician of this practice."})
    taken = Episode.objects.active().for_clinician(clinician).count()
    capacity = profile.effective_capacity
    if taken < capacity:
        return ""
    reason = over_capacity_reason.strip()
    if not reason:
        raise ValidationError(
            {
                "over_capacity_reason": (
                    f"{display_name(clinician)} already has {taken} of {capacity} places "
                    "taken. Give a reason to assign over capacity."
                )
            }
        )
    return reason


@transaction.atomic
def client_assign(
    *,
    client: Client,
    clinician: User,
    actor: User,
    over_capacity_reason: str = "",
    request: HttpRequest | None = None,
) -> Episode:
    """Assign a waitlisted client to a clinician: open an episode at intake (the client
    becomes active). Past the clinician's capacity this needs a reason, which is kept on
    the episode and audited."""
    # Lock the client: two admins assigning the same client queue here, and the second
    # finds them no longer waiting instead of an integrity error.
    locked = Client.objects.select_for_update().select_related("practice").get(pk=client.pk)
    if locked.status != Client.Status.WAITLIST:
        raise ValidationError(f"{locked.full_name} is no longer on the waitlist.")
    reason = _place_with(
        practice=locked.practice, clinician=clinician, over_capacity_reason=over_capacity_reason
    )
    episode = episode_open(
        client=locked,
        clinician=clinician,
        actor=actor,
        opened_on=local_today(locked.practice),
        stage=Episode.Stage.INTAKE,
    )
    if reason:
        episode.over_capacity_reason = reason
        episode.save(update_fields=["over_capacity_reason"])
    audit_record(
        actor=actor,
        action="episode.assign_over_capacity" if reason else "episode.assign",
        obj=episode,
        practice=locked.practice,
        request=request,
    )
    client.status = Client.Status.ACTIVE
    return episode


# --- Transfers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    episode: Episode
    previous: Episode
    cancelled: list[Appointment]


def sessions_to_cancel(episode: Episode, now: datetime | None = None) -> AppointmentQuerySet:
    """The episode's sessions still to come: a transfer cancels them for rebooking."""
    return (
        Appointment.objects.open()
        .upcoming(now)
        .filter(episode=episode)
        .select_related("clinician")
        .order_by("starts_at", "pk")
    )


def sessions_to_rebook(episode: Episode, now: datetime | None = None) -> AppointmentQuerySet:
    """After a transfer: the previous episode's future sessions that the transfer cancelled."""
    if episode.transferred_from_id is None:
        return Appointment.objects.none()
    return (
        Appointment.objects.cancelled()
        .upcoming(now)
        .filter(
            episode_id=episode.transferred_from_id,
            status=Status.CANCELLED_BY_CLINICIAN,
            status_changes__reason__startswith=TRANSFER_REASON.format(name=""),
        )
        .distinct()
        .order_by("starts_at", "pk")
    )


@transaction.atomic
def episode_transfer(
    *,
    episode: Episode,
    to_clinician: User,
    actor: User,
    handoff_note: str,
    over_capacity_reason: str = "",
    request: HttpRequest | None = None,
) -> Transfer:
    """Move an open episode to another clinician, in one transaction.

    The old episode closes as "transferred" and stays in the record; a new one opens with
    the new clinician, pointing back to it, with the handoff note and the stage the client
    had reached. The old episode's future sessions are cancelled as cancelled by the
    clinician ("transferred to …"), which frees the old clinician's slots and keeps every
    row; the new clinician rebooks them (the transfer page lists them). They are not moved
    to the new clinician as they are: that calendar was never asked, and a silent move
    would promise the client times nobody agreed to.

    Taking the new clinician past capacity needs a reason, as assigning does. Open flags
    move to the new episode with a note in their history.
    """
    locked = (
        Episode.objects.select_for_update(of=("self",))
        .select_related("client__practice", "clinician")
        .get(pk=episode.pk)
    )
    if not locked.is_open:
        raise ValidationError("This episode is already closed.")
    if to_clinician.pk == locked.clinician_id:
        raise ValidationError({"clinician": "Choose a clinician other than the current one."})
    note = handoff_note.strip()
    if not note:
        raise ValidationError({"handoff_note": "Write a handoff note for the new clinician."})
    client = locked.client
    practice = client.practice
    reason = _place_with(
        practice=practice, clinician=to_clinician, over_capacity_reason=over_capacity_reason
    )
    # Never before the old episode opened: one opened "today" by a clock in another zone
    # still closes and hands over cleanly.
    today = max(local_today(practice), locked.opened_on)
    stage = locked.stage
    cancel_reason = TRANSFER_REASON.format(name=display_name(to_clinician))
    cancelled: list[Appointment] = []
    for appointment in sessions_to_cancel(locked):
        cancelled += appointment_cancel(
            appointment=appointment,
            by_client=False,
            actor=actor,
            via=AppointmentStatusChange.Via.STAFF,
            reason=cancel_reason,
        )
    episode_close(episode=locked, actor=actor, reason=Episode.CloseReason.TRANSFERRED, on=today)
    new = episode_open(
        client=client, clinician=to_clinician, actor=actor, opened_on=today, stage=stage
    )
    new.transferred_from = locked
    new.handoff_note = note
    new.over_capacity_reason = reason
    new.save(update_fields=["transferred_from", "handoff_note", "over_capacity_reason"])
    flags_follow_transfer(previous=locked, episode=new, actor=actor)
    audit_record(
        actor=actor, action="episode.transfer", obj=new, practice=practice, request=request
    )
    if reason:
        audit_record(actor=actor, action="episode.assign_over_capacity", obj=new, practice=practice)
    return Transfer(episode=new, previous=locked, cancelled=cancelled)


# --- Exports -------------------------------------------------------------------------------

# (column, what it holds). Shown on the export page and in docs/caseload.md.
BOARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("clinician", "The clinician's name."),
    ("email", "The clinician's sign-in email."),
    ("active_episodes", "Open episodes of care."),
    ("capacity", "Caseload capacity (the clinician's own, or the practice default)."),
    ("free_places", "Capacity minus open episodes; negative when over capacity."),
    ("hours_this_week", "Booked hours this week (Monday to Sunday, practice time zone)."),
    ("hours_next_week", "Booked hours next week."),
    ("weekly_hours_cap", "The practice's cap on booked hours per week."),
    ("sessions_90_days", "Sessions that fell due in the last 90 days (attended or no-show)."),
    ("no_shows_90_days", "No-shows among them."),
    ("no_show_rate_90_days", "No-shows / sessions, 0 to 1, empty without sessions."),
    ("open_workload_alerts", "Open workload alerts (overbooking, rest days, breaks)."),
    ("open_flags", "Open alliance flags, as a count."),
    ("open_safety_flags", "Of which safety flags, as a count."),
)

APPOINTMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("appointment_id", "The session's id in this app."),
    ("external_id", "The session's id in a system it was imported from, if any."),
    ("date", "Local date, YYYY-MM-DD, in the practice's time zone."),
    ("starts", "Local start time, HH:MM."),
    ("ends", "Local end time, HH:MM."),
    ("timezone", "The practice's time zone, which the local times are in."),
    ("starts_at_utc", "Start as ISO 8601 in UTC."),
    ("duration_minutes", "Length in minutes."),
    ("kind", "intake, session or termination."),
    ("location", "in_person or video."),
    (
        "status",
        "scheduled, confirmed, attended, no_show, cancelled_client, "
        "cancelled_clinician or late_cancelled.",
    ),
    ("fee_waived", "yes for a free termination session, else no."),
    ("clinician", "The clinician's name."),
    ("clinician_email", "The clinician's sign-in email."),
    ("client_id", "The client's id in this app."),
    ("client_external_id", "The client's id in a system imported from, if any."),
    ("client", "The client's name."),
    ("episode_id", "The episode of care the session belongs to."),
)

# A spreadsheet runs a cell that starts with one of these as a formula; names and ids come
# from people, so an exported cell never starts with one (OWASP's "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields lines."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(list(columns))
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


def board_csv_rows(rows: Iterable[BoardRow]) -> Iterator[list[object]]:
    for row in rows:
        yield [
            row.name,
            row.email,
            row.active_episodes,
            row.capacity,
            row.free_places,
            f"{row.hours_this_week:.2f}",
            f"{row.hours_next_week:.2f}",
            row.hours_cap,
            row.sessions_90_days,
            row.no_shows_90_days,
            "" if row.no_show_rate is None else f"{row.no_show_rate:.3f}",
            row.open_alerts,
            row.open_flags,
            row.open_safety_flags,
        ]


def appointments_for_export(
    *, practice: Practice, first_day: date, last_day: date, clinician: User | None = None
) -> AppointmentQuerySet:
    """Sessions starting from `first_day` through `last_day`, local days of the practice."""
    starts = datetime.combine(first_day, time.min, tzinfo=practice.tz)
    ends = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=practice.tz)
    appointments = Appointment.objects.in_practice(practice).filter(
        starts_at__gte=starts, starts_at__lt=ends
    )
    if clinician is not None:
        appointments = appointments.for_clinician(clinician)
    return appointments.select_related("clinician", "client").order_by("starts_at", "pk")


def appointment_csv_rows(
    appointments: AppointmentQuerySet, practice: Practice
) -> Iterator[list[object]]:
    """Operational columns only: never reasons, notes, messages, video links or scores."""
    tz = practice.tz
    # A server-side cursor: a year of a large practice streams without filling memory.
    for a in appointments.iterator(chunk_size=2000):
        local_start, local_end = a.starts_at.astimezone(tz), a.ends_at.astimezone(tz)
        yield [
            a.pk,
            a.external_id,
            local_start.date().isoformat(),
            f"{local_start:%H:%M}",
            f"{local_end:%H:%M}",
            practice.timezone,
            a.starts_at.astimezone(UTC).isoformat(),
            int(a.duration.total_seconds() // 60),
            a.kind,
            a.location,
            a.status,
            "yes" if a.fee_waived else "no",
            display_name(a.clinician),
            a.clinician.email,
            a.client_id,
            a.client.external_id,
            a.client.full_name,
            a.episode_id,
        ]
