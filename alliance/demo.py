"""The demo practice's measures and ruptures: a few weeks of practice, replayed. Idempotent.

``seed_demo`` discovers this module and calls ``seed(practice)`` after scheduling's demo
calendar exists. It does nothing when the practice has responses already.

What it adds, relative to now:

- Ordinary practice on scheduling's calendar: session feedback after most attended sessions
  (36 to 40 of 40), the PHQ-9 before them (weekly at most) and the GAD-7 for about a third
  of the clients, improving for most. These never trip a rule on their own: feedback stays
  within 4 points of 40, and a course is either below the clinical cut-off or reliably
  improved by the time "not on track" is judged.
- On a few of scheduling's episodes, chosen by what their calendar allows (see `_choose`):
  a drop in feedback (low alliance and alliance drop) that the clinician repairs at the
  next session; a "felt off" answer being repaired; a reliable deterioration on the PHQ-9;
  the overbooked clinician's longest-running client not on track; and a PHQ-9 answered in
  the last hours for a session within a day, with item 9 above 0 (safety).
- Two clients of its own (``CASES``) for histories the calendar never produces, all inside
  its four-week window, as weekly series like scheduling's:
  Marta Vogel withdraws after a strained session (low and dropping feedback, felt off, a
  rupture the clinician logs, then a no-show and a late cancel: missed after strain, two
  missed). Her earlier episode
  ended by voicemail and carries a closing review. Daniel Krüger's clinician cancelled his
  second session that morning (clinician-caused); he cancelled the next and never
  rebooked (dropout), and the clinician has left him one voicemail (outreach).

The rupture sweep is replayed at the moments it would have noticed the chosen histories,
with the clinicians' repairs, lifecycle steps and outreach in between, through the same
services the pages use, so flags, their history and the audit log read as they would in
a running practice. The last sweep runs at now.

Responses go in with ``bulk_create`` after `alliance.scoring.score`, not through
``response_record``: there are hundreds, and each would run the rules on its episode.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F, Prefetch, Value
from django.db.models.functions import Least
from django.utils import timezone

from alliance import services
from alliance.models import (
    AlliancePolicy,
    EpisodeEnding,
    Instrument,
    MeasureRequest,
    OutreachAttempt,
    RepairAction,
    Response,
    RuptureFlag,
)
from alliance.scoring import score
from alliance.sweeps import rupture_sweep
from practice.models import Client, Episode, Practice, User
from scheduling.demo import OVERBOOKED_EMAIL, SESSION, Planned
from scheduling.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatusChange,
    Kind,
    Location,
    Status,
)

Via = Response.Via
Rule = RuptureFlag.Rule
StaffVia = AppointmentStatusChange.Via

PHQ9, GAD7, FEEDBACK = "phq-9", "gad-7", "session-feedback"
FEEDBACK_KEYS = ("relationship", "goals_topics", "approach", "overall")

# The demo's clinician login (Nadia Keller): the cases that show the most are on her
# caseload, and her supervisor is the demo's supervisor login.
DEMO_CLINICIAN = "clinician@demo.practice"
# Who gets which chosen case first; the overbooked clinician's calendar is the only one long
# enough for "not on track", and is kept out of the others so that case stays alone there.
PREFERRED = {
    "drop": [DEMO_CLINICIAN],
    "felt_off": [DEMO_CLINICIAN],
    "safety": [DEMO_CLINICIAN],
    "deterioration": ["clinician2@demo.practice", "clinician3@demo.practice"],
}

WITHDRAWAL_EMAIL = "demo.withdrawal@example.org"
DROPOUT_EMAIL = "demo.dropout@example.org"


@dataclass(frozen=True)
class Case:
    email: str
    first_name: str
    last_name: str
    language: str
    needs: tuple[str, ...]
    at: time  # the weekly slot, outside the ordinary 9-to-5 grid so it never overlaps it


CASES = {
    "withdrawal": Case(WITHDRAWAL_EMAIL, "Marta", "Vogel", "German", ("depression",), time(17, 30)),
    "dropout": Case(DROPOUT_EMAIL, "Daniel", "Krüger", "German", ("anxiety",), time(12)),
}


@dataclass
class Entry:
    """One questionnaire before it is scored: who answered what, when and how."""

    code: str
    episode: Episode
    appointment: Appointment
    at: datetime
    via: str
    total: int
    item9: int = 0
    felt_off: bool = False
    felt_off_text: str = ""
    request: MeasureRequest | None = None
    response: Response | None = None  # set when scored


@dataclass
class Course:
    """One episode's history on the calendar: its attended sessions and its questionnaires."""

    episode: Episode
    attended: list[Appointment]
    entries: list[Entry] = field(default_factory=list)

    def feedback(self, appointment: Appointment) -> Entry | None:
        return next(
            (e for e in self.entries if e.code == FEEDBACK and e.appointment == appointment), None
        )

    def outcomes(self, code: str) -> list[Entry]:
        return [e for e in self.entries if e.code == code]


@dataclass
class Replay:
    """What happened after the questionnaires, in time order: sweeps and clinicians' steps."""

    now: datetime
    steps: list[tuple[datetime, int, Callable[[datetime], object]]] = field(default_factory=list)

    def at(self, moment: datetime, step: Callable[[datetime], object]) -> None:
        # The counter keeps steps at the same moment in the order they were added.
        self.steps.append((min(moment, self.now), len(self.steps), step))

    def sweep(self, moment: datetime) -> None:
        self.at(moment, lambda at: rupture_sweep(now=at))

    def run(self) -> None:
        for moment, _, step in sorted(self.steps, key=lambda s: (s[0], s[1])):
            step(moment)


@transaction.atomic
def seed(practice: Practice) -> None:
    """Add the demo's measures, flags, repairs and outreach to ``practice``; does nothing if
    it has responses already, or no calendar to attach them to."""
    if Response.objects.filter(client__practice=practice).exists():
        return
    if not Appointment.objects.in_practice(practice).exists():
        return
    rng = random.Random(20261123)  # noqa: S311 - demo data, not security
    now = timezone.now()
    instruments = {
        i.code: i
        for i in Instrument.objects.with_scoring_rules()
        .shipped()
        .active()
        .filter(code__in=[PHQ9, GAD7, FEEDBACK])
        .order_by("version")
    }
    policy = AlliancePolicy.for_practice(practice)

    courses = _ordinary_courses(practice, rng, now)
    replay = Replay(now)
    _choose(courses, policy, instruments[PHQ9], replay, rng, now)
    cases = _cases(practice, rng, now, replay)

    entries = [entry for course in [*courses, *cases] for entry in course.entries]
    Response.objects.bulk_create(_response(entry, instruments, rng) for entry in entries)
    replay.sweep(now)
    replay.run()


# Ordinary practice on scheduling's calendar


def _ordinary_courses(practice: Practice, rng: random.Random, now: datetime) -> list[Course]:
    episodes = (
        Episode.objects.active()
        .in_practice(practice)
        .select_related("client", "clinician")
        .prefetch_related(
            Prefetch("appointments", queryset=Appointment.objects.order_by("starts_at", "pk"))
        )
        .order_by("pk")
    )
    courses = []
    for episode in episodes:
        attended = [
            a
            for a in episode.appointments.all()
            if a.status == Status.ATTENDED and a.ends_at <= now
        ]
        course = Course(episode, attended)
        _feedback_history(course, rng, now)
        _outcome_history(course, PHQ9, rng, baseline=rng.randint(7, 19))
        if episode.client_id % 3 == 0 or "anxiety" in episode.client.needs:
            _outcome_history(course, GAD7, rng, baseline=rng.randint(6, 16))
        courses.append(course)
    return courses


def _via(episode: Episode, rng: random.Random, in_session: float) -> str:
    roll = rng.random()
    if roll < in_session:
        return Via.IN_SESSION
    if episode.client.user_id is not None and roll < 0.6:
        return Via.PORTAL
    return Via.LINK


def _feedback_history(course: Course, rng: random.Random, now: datetime) -> None:
    """Feedback after most attended sessions: 36 to 40, so never 5 below the client's mean."""
    for appointment in course.attended:
        if rng.random() < 0.15:
            continue  # the link expired unanswered
        via = _via(course.episode, rng, in_session=0.15)
        at = (
            appointment.ends_at - timedelta(minutes=4)
            if via == Via.IN_SESSION
            else appointment.ends_at + timedelta(minutes=rng.randint(20, 18 * 60))
        )
        if at > now:
            continue  # not answered yet; the sweep will send the link
        total = rng.choices([40, 39, 38, 37, 36], weights=[30, 25, 20, 15, 10])[0]
        course.entries.append(Entry(FEEDBACK, course.episode, appointment, at, via, total))


def _outcome_history(course: Course, code: str, rng: random.Random, *, baseline: int) -> None:
    """An outcome measure before attended sessions, at most weekly, improving.

    The overbooked calendar has three sessions a week; once a week is what a practice asks.
    From the fourth session on, each score is either below the clinical cut-off or a
    reliable improvement on the baseline, so "not on track" (judged after 8 sessions) and
    "reliable deterioration" stay for the chosen cases.
    """
    change = 6 if code == PHQ9 else 4
    target = max(1, baseline - rng.randint(change, change + 4))
    previous: datetime | None = None
    skipped = False
    scores: list[int] = []
    for index, appointment in enumerate(course.attended):
        if previous is not None and appointment.starts_at - previous < timedelta(days=6):
            continue
        if scores and not skipped and rng.random() < 0.1:
            skipped = True  # not answered this time; never twice running
            continue
        skipped = False
        value = target + (baseline - target) * 0.72 ** len(scores)
        total = round(value) + (rng.choice((-1, 0, 0, 1)) if scores else 0)
        total = max(0, min(total, baseline + 1))
        if index >= 3:
            total = min(total, max(baseline - change, 9))
        via = _via(course.episode, rng, in_session=0.1)
        at = (
            appointment.starts_at + timedelta(minutes=3)
            if via == Via.IN_SESSION
            else appointment.starts_at - timedelta(minutes=rng.randint(60, 20 * 60))
        )
        previous = appointment.starts_at
        scores.append(total)
        course.entries.append(Entry(code, course.episode, appointment, at, via, total))


# The chosen cases on scheduling's calendar


def _ranked(courses: Iterable[Course], key: str) -> list[Course]:
    order = {email: rank for rank, email in enumerate(PREFERRED.get(key, []))}
    return sorted(
        (c for c in courses if c.episode.clinician.email != OVERBOOKED_EMAIL),
        key=lambda c: (order.get(c.episode.clinician.email, len(order)), c.episode.pk),
    )


def _choose(
    courses: list[Course],
    policy: AlliancePolicy,
    phq9: Instrument,
    replay: Replay,
    rng: random.Random,
    now: datetime,
) -> None:
    """Give each rule that scores can trip one episode whose calendar allows its story."""
    taken: set[int] = set()

    def pick(candidates: Sequence[Course], fits: Callable[[Course], bool]) -> Course | None:
        course = next((c for c in candidates if c.episode.pk not in taken and fits(c)), None)
        if course is not None:
            taken.add(course.episode.pk)
        return course

    def settled(course: Course) -> bool:
        # Three sessions attended, the last a day ago: time for its feedback to come in.
        return len(course.attended) >= 3 and course.attended[-1].ends_at <= now - timedelta(days=1)

    overbooked = sorted(
        (c for c in courses if c.episode.clinician.email == OVERBOOKED_EMAIL),
        key=lambda c: (-len(c.attended), c.episode.pk),
    )
    stuck = pick(overbooked, lambda c: len(c.attended) >= policy.not_on_track_after_sessions)
    if stuck is not None:
        _not_on_track(stuck, rng)
    dropped = pick(_ranked(courses, "drop"), settled)
    if dropped is not None:
        _drop_and_repair(dropped, replay)
    felt = pick(
        _ranked(courses, "felt_off"),
        lambda c: len(c.attended) >= 2 and c.attended[-1].ends_at <= now - timedelta(hours=3),
    )
    if felt is not None:
        _felt_off_in_repair(felt, replay)
    worse = pick(_ranked(courses, "deterioration"), lambda c: len(c.attended) >= 3)
    if worse is not None:
        _deterioration(worse, rng)
    _safety(courses, taken, phq9, now)


def _force_feedback(course: Course, appointment: Appointment, total: int) -> Entry:
    """The feedback after ``appointment``, answered by link two hours after the session."""
    entry = course.feedback(appointment)
    if entry is None:
        entry = Entry(FEEDBACK, course.episode, appointment, appointment.ends_at, Via.LINK, 0)
        course.entries.append(entry)
    entry.at, entry.via, entry.total = appointment.ends_at + timedelta(hours=2), Via.LINK, total
    return entry


def _flag(rule: str, entry: Entry) -> RuptureFlag:
    # Responses get their ids in bulk_create, before the replay looks their flags up.
    assert entry.response is not None
    return RuptureFlag.objects.get(rule=rule, trigger_key=f"response:{entry.response.pk}")


def _drop_and_repair(course: Course, replay: Replay) -> None:
    """Feedback falls to 30 after a strained session; the clinician acknowledges her part at
    the next one, the score recovers, and the flag is marked repaired."""
    strained, repaired_in = course.attended[-2:]
    # At least one earlier score, for the running mean the drop is measured against.
    for appointment in course.attended[:-2]:
        if course.feedback(appointment) is None:
            _force_feedback(course, appointment, 39)
    drop = _force_feedback(course, strained, 30)
    after = _force_feedback(course, repaired_in, 38)
    clinician = course.episode.clinician

    def repair(at: datetime) -> None:
        services.repair_action_log(
            flag=_flag(Rule.ALLIANCE_DROP, drop),
            actor=clinician,
            strategy=RepairAction.Strategy.ACKNOWLEDGE_OWN_CONTRIBUTION,
            description="Said I had pushed the exposure homework too fast last week, and asked "
            "what that had been like.",
            client_response="Relieved: had felt like a student failing a test. We agreed the "
            "client sets the pace of the exposures from now on.",
            performed_at=repaired_in.starts_at + timedelta(minutes=15),
            appointment=repaired_in,
            now=at,
        )

    def resolve(at: datetime) -> None:
        services.flag_transition(
            flag=_flag(Rule.ALLIANCE_DROP, drop),
            to_status=RuptureFlag.Status.REPAIRED,
            note="Feedback back to 38 of 40; the client named the strain unprompted.",
            actor=clinician,
            now=at,
        )
        services.flag_transition(
            flag=_flag(Rule.LOW_ALLIANCE, drop),
            to_status=RuptureFlag.Status.CLOSED,
            note="Same session as the alliance drop; repaired there.",
            actor=clinician,
            now=at,
        )

    replay.sweep(drop.at + timedelta(hours=1))
    replay.at(repaired_in.ends_at + timedelta(minutes=30), repair)
    replay.at(after.at + timedelta(hours=1), resolve)


def _felt_off_in_repair(course: Course, replay: Replay) -> None:
    """ "Something felt off", explored at the next session; the repair is still under way."""
    said, next_session = course.attended[-2:]
    entry = _force_feedback(course, said, 37)
    entry.felt_off = True
    entry.felt_off_text = "When we talked about my mother it felt like you were taking her side."
    _force_feedback(course, next_session, 38)
    clinician = course.episode.clinician

    def repair(at: datetime) -> None:
        services.repair_action_log(
            flag=_flag(Rule.FELT_OFF, entry),
            actor=clinician,
            strategy=RepairAction.Strategy.CLARIFY_MISUNDERSTANDING,
            description="Brought up the feedback. My question about the client's mother had "
            "been heard as blame; I said what I had meant and that I could see why it landed "
            "that way.",
            client_response="Said that helped, and that being judged is a familiar fear. "
            "Still a little guarded.",
            performed_at=next_session.starts_at + timedelta(minutes=5),
            appointment=next_session,
            now=at,
        )

    replay.sweep(entry.at + timedelta(hours=1))
    replay.at(next_session.ends_at + timedelta(minutes=30), repair)


def _deterioration(course: Course, rng: random.Random) -> None:
    """The PHQ-9 before every session, rising 7 points from a mild baseline."""
    course.entries = [e for e in course.entries if e.code != PHQ9]
    steps = len(course.attended) - 1
    for index, appointment in enumerate(course.attended):
        at = appointment.starts_at - timedelta(hours=rng.randint(2, 20))
        total = 8 + round(7 * index / steps)
        course.entries.append(Entry(PHQ9, course.episode, appointment, at, Via.LINK, total))


def _not_on_track(course: Course, rng: random.Random) -> None:
    """Weekly PHQ-9 scores that hover around 15 however many sessions the client attends."""
    for entry in course.outcomes(PHQ9):
        entry.total = 15 + rng.choice((-1, 0, 0, 1))
    for entry in course.outcomes(GAD7):
        course.entries.remove(entry)


def _safety(courses: list[Course], taken: set[int], phq9: Instrument, now: datetime) -> None:
    """A PHQ-9 answered in the last hours for a session within a day, item 9 above 0.

    The outcome link goes out 24 hours before a session, so the session must start within
    the next 23 hours and 40 minutes. The overbooked calendar has one in any such stretch,
    weekends included, so some episode always fits.
    """
    overbooked = [c for c in courses if c.episode.clinician.email == OVERBOOKED_EMAIL]
    # On a Sunday night the only such session may belong to a case chosen already (the
    # overbooked calendar has one Sunday session): a second story on it beats none.
    candidates = [c for c in _ranked(courses, "safety") + overbooked if c.episode.pk not in taken]
    candidates += [c for c in courses if c.episode.pk in taken]
    soon = (now + timedelta(minutes=10), now + timedelta(hours=23, minutes=40))
    for course in candidates:
        upcoming = [
            a
            for a in course.episode.appointments.all()
            if a.is_open and soon[0] < a.starts_at <= soon[1]
        ]
        if not upcoming:
            continue
        appointment = upcoming[0]
        sent = appointment.starts_at - timedelta(hours=24)
        answered = max(sent + timedelta(minutes=20), now - timedelta(hours=2))
        request = MeasureRequest.objects.create(
            purpose=MeasureRequest.Purpose.OUTCOME,
            instrument=phq9,
            client=course.episode.client,
            episode=course.episode,
            appointment=appointment,
            channel="email",
            state=MeasureRequest.State.SENT,
            due_at=sent,
            expires_at=appointment.starts_at,
            attempts=1,
            sent_at=sent,
            created_at=sent,
        )
        earlier = course.outcomes(PHQ9)
        baseline = earlier[0].total if earlier else 13
        course.entries.append(
            Entry(
                PHQ9,
                course.episode,
                appointment,
                answered,
                Via.LINK,
                min(baseline + 3, 24),
                item9=1,
                request=request,
            )
        )
        return


# The two clients of the demo's own


def _cases(practice: Practice, rng: random.Random, now: datetime, replay: Replay) -> list[Course]:
    clinician = User.objects.get(email=DEMO_CLINICIAN)
    zone = practice.tz
    today = timezone.localdate(timezone=zone)
    # The first weekday in scheduling's four-week window: a case's first session is at
    # least 25 days ago, so a dropout after it is past the 21 days whatever today is.
    first = today - timedelta(days=27)
    while first.isoweekday() > 5:
        first += timedelta(days=1)
    withdrawal = _withdrawal(practice, clinician, first, rng, now, replay)
    dropout = _dropout(practice, clinician, first, now, replay)
    return [withdrawal, dropout]


def _client(practice: Practice, case: Case, number: int) -> Client:
    return Client.objects.create(
        practice=practice,
        first_name=case.first_name,
        last_name=case.last_name,
        email=case.email,
        phone=f"+4930987{number:04d}",
        preferred_language=case.language,
        needs=list(case.needs),
        status=Client.Status.ACTIVE,
    )


def _series(
    practice: Practice,
    episode: Episode,
    first: date,
    slot: time,
    history: list[Callable[[Planned], None]],
    now: datetime,
) -> list[Appointment]:
    """A weekly series from ``first``, one session per step; each step tells its history."""
    zone = practice.tz
    starts = [
        datetime.combine(first + timedelta(weeks=n), slot, tzinfo=zone) for n in range(len(history))
    ]
    series = AppointmentSeries.objects.create(
        practice=practice,
        clinician=episode.clinician,
        client=episode.client,
        episode=episode,
        frequency=AppointmentSeries.Frequency.WEEKLY,
        interval=1,
        first_start=starts[0],
        duration=SESSION,
        timezone=practice.timezone,
        until=starts[-1].astimezone(zone).date(),
        created_by=episode.clinician,
    )
    planned = []
    for starts_at, tell in zip(starts, history, strict=True):
        plan = Planned(
            Appointment(
                practice=practice,
                clinician=episode.clinician,
                client=episode.client,
                episode=episode,
                series=series,
                starts_at=starts_at,
                ends_at=starts_at + SESSION,
                kind=Kind.INTAKE if starts_at == starts[0] else Kind.SESSION,
                location=Location.IN_PERSON,
                created_by=episode.clinician,
            ),
            now,
        )
        plan.change(
            Status.SCHEDULED,
            at=min(starts[0] - timedelta(days=10), now),
            by=episode.clinician,
            via=StaffVia.STAFF,
            why="booked",
        )
        tell(plan)
        planned.append(plan)
    appointments = Appointment.objects.bulk_create(p.appointment for p in planned)
    Appointment.objects.filter(series=series).update(
        created_at=Least(F("starts_at") - timedelta(days=14), Value(now))
    )
    changes = []
    for plan in planned:
        for change in plan.changes:
            change.appointment = plan.appointment
            changes.append(change)
    AppointmentStatusChange.objects.bulk_create(changes)
    return appointments


def _attended(plan: Planned) -> None:
    a = plan.appointment
    plan.change(
        Status.ATTENDED,
        at=a.ends_at + timedelta(minutes=10),
        by=a.clinician,
        via=StaffVia.STAFF,
        why="attendance recorded",
    )


def _no_show(plan: Planned) -> None:
    a = plan.appointment
    plan.change(
        Status.NO_SHOW,
        at=a.starts_at + timedelta(minutes=20),
        by=a.clinician,
        via=StaffVia.STAFF,
        why="attendance recorded",
    )


def _booked(plan: Planned) -> None:
    pass


def _withdrawal(
    practice: Practice,
    clinician: User,
    first: date,
    rng: random.Random,
    now: datetime,
    replay: Replay,
) -> Course:
    """Marta Vogel, back with Nadia after an earlier episode that ended by voicemail."""
    case = CASES["withdrawal"]
    client = _client(practice, case, 1)
    today = timezone.localdate(timezone=practice.tz)
    earlier = Episode.objects.create(
        client=client,
        clinician=clinician,
        opened_on=today - timedelta(days=430),
        stage=Episode.Stage.MIDDLE,
    )
    closed_on = today - timedelta(days=310)
    closed_at = datetime.combine(closed_on, time(18), tzinfo=practice.tz)
    services.episode_close_with_review(
        episode=earlier,
        actor=clinician,
        kind=EpisodeEnding.Kind.VOICEMAIL_ONLY,
        goals_and_progress="Came for low mood after a redundancy. Back at work part-time, "
        "sleeping better, and keeping up the activity plan on her own.",
        what_helps_on_return="She goes quiet rather than disagree. Ask early and directly "
        "about the pace and the homework; a short check at the end of each session helps.",
        note="Left a voicemail after session 14: feeling well enough to stop, thanks.",
        closed_on=closed_on,
        now=closed_at,
    )
    EpisodeEnding.objects.filter(episode=earlier).update(planned_at=closed_at)

    episode = Episode.objects.create(
        client=client, clinician=clinician, opened_on=first, stage=Episode.Stage.BEGINNING
    )

    def late_cancel(plan: Planned) -> None:
        plan.change(
            Status.LATE_CANCELLED,
            at=plan.appointment.starts_at - timedelta(hours=5),
            by=clinician,
            via=StaffVia.STAFF,
            why="client phoned: too much on at work",
        )

    sessions = _series(
        practice,
        episode,
        first,
        case.at,
        [_attended, _attended, _no_show, late_cancel, _booked],
        now,
    )
    intake, strained = sessions[0], sessions[1]
    course = Course(episode, [intake, strained])
    for appointment, phq9 in ((intake, 14), (strained, 15)):
        at = appointment.starts_at - timedelta(hours=rng.randint(3, 20))
        course.entries.append(Entry(PHQ9, episode, appointment, at, Via.LINK, phq9))
    _force_feedback(course, intake, 38)
    low = _force_feedback(course, strained, 27)
    low.felt_off = True
    low.felt_off_text = "It felt like we were going through the motions today."

    def log(at: datetime) -> None:
        services.rupture_log(
            episode=episode,
            clinician=clinician,
            kind=RuptureFlag.Kind.WITHDRAWAL,
            marker=RuptureFlag.Marker.MINIMAL_RESPONSE,
            appointment=strained,
            note="Short answers all session; said the week had been 'fine' and changed the "
            "subject when I asked about the homework.",
            now=at,
        )

    replay.at(strained.ends_at + timedelta(minutes=15), log)
    replay.sweep(low.at + timedelta(hours=1))
    replay.sweep(sessions[3].starts_at + timedelta(hours=1))
    return course


def _dropout(
    practice: Practice, clinician: User, first: date, now: datetime, replay: Replay
) -> Course:
    """Daniel Krüger: intake, then Nadia cancels his second session that morning; he cancels
    the third and does not rebook."""
    case = CASES["dropout"]
    client = _client(practice, case, 2)
    episode = Episode.objects.create(
        client=client, clinician=clinician, opened_on=first, stage=Episode.Stage.INTAKE
    )

    def clinician_cancel(plan: Planned) -> None:
        plan.change(
            Status.CANCELLED_BY_CLINICIAN,
            at=plan.appointment.starts_at - timedelta(hours=3),
            by=clinician,
            via=StaffVia.STAFF,
            why="clinician unwell",
        )

    def client_cancel(plan: Planned) -> None:
        plan.change(
            Status.CANCELLED_BY_CLIENT,
            at=plan.appointment.starts_at - timedelta(days=2),
            by=None,
            via=StaffVia.CLIENT_LINK,
            why="I'll call to rebook",
        )

    intake, _, _ = _series(
        practice, episode, first, case.at, [_attended, clinician_cancel, client_cancel], now
    )
    course = Course(episode, [intake])
    before = intake.starts_at - timedelta(hours=6)
    course.entries.append(Entry(PHQ9, episode, intake, before, Via.LINK, 16))
    course.entries.append(Entry(GAD7, episode, intake, before, Via.LINK, 13))
    _force_feedback(course, intake, 37)

    def reach_out(at: datetime) -> None:
        services.outreach_log(
            episode=episode,
            actor=clinician,
            channel=OutreachAttempt.Channel.PHONE,
            outcome=OutreachAttempt.Outcome.VOICEMAIL,
            note="Left a short message: we would like to hear how he is, and he can book a "
            "last session free of charge if he would rather stop.",
            attempted_at=at - timedelta(minutes=5),
            now=at,
        )

    # The sweep notices three weeks without a session; Nadia calls the next morning.
    noticed = intake.starts_at + timedelta(days=21, hours=3)
    replay.sweep(noticed)
    replay.at(noticed + timedelta(hours=20), reach_out)
    return course


# Scoring


def _spread(rng: random.Random, total: int, items: int, most: int) -> list[int]:
    """``total`` points over ``items`` answers of 0 to ``most``, unevenly, as people answer."""
    total = max(0, min(total, items * most))
    answers = [0] * items
    for _ in range(total):
        answers[rng.choice([i for i in range(items) if answers[i] < most])] += 1
    return answers


def _answers(entry: Entry, rng: random.Random) -> dict[str, object]:
    if entry.code == FEEDBACK:
        # Feedback sits near the top: even the answers, then shift a point or two.
        parts = [entry.total // 4 + (1 if n < entry.total % 4 else 0) for n in range(4)]
        for _ in range(2):
            up, down = rng.sample(range(4), 2)
            if parts[up] < 10 and parts[down] > 0:
                parts[up], parts[down] = parts[up] + 1, parts[down] - 1
        answers: dict[str, object] = dict(zip(FEEDBACK_KEYS, parts, strict=True))
        answers["felt_off"] = entry.felt_off
        if entry.felt_off_text:
            answers["felt_off_text"] = entry.felt_off_text
        return answers
    if entry.code == PHQ9:
        parts = _spread(rng, entry.total - entry.item9, 8, 3)
        return {f"phq9_{n}": v for n, v in enumerate([*parts, entry.item9], start=1)}
    return {f"gad7_{n}": v for n, v in enumerate(_spread(rng, entry.total, 7, 3), start=1)}


def _response(entry: Entry, instruments: dict[str, Instrument], rng: random.Random) -> Response:
    instrument = instruments[entry.code]
    result = score(instrument, _answers(entry, rng))
    response = Response(
        instrument=instrument,
        instrument_version=instrument.version,
        client=entry.episode.client,
        episode=entry.episode,
        appointment=entry.appointment,
        answers=result.answers,
        total=result.total,
        subscales=result.subscales,
        band=result.band,
        safety_triggered=result.safety_triggered,
        completed_at=entry.at,
        collected_via=entry.via,
        free_text=entry.felt_off_text,
        request=entry.request,
        given_by=entry.appointment.clinician if entry.via == Via.IN_SESSION else None,
    )
    entry.response = response
    return response
