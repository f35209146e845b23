"""Supervision: the review queue, triage, supervision sessions, countertransference notes and
the supervisee overview.

Selectors read in a fixed number of queries, however many supervisees or flags there are.
Services write in one transaction each; every triage step on a flag is kept in the flag's
history (a `FlagEvent`), and every change is written to the audit log. A supervisor acts
only on the flags of their *current* supervisees (`SupervisionPairing.objects.current()`):
a pairing that ended takes the supervisor's reach with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import ClassVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef

from alliance import services
from alliance.models import (
    AgendaItem,
    AlliancePolicy,
    CountertransferenceNote,
    FlagEvent,
    FollowUp,
    RepairPlanRequest,
    Response,
    RuptureFlag,
    SupervisionSession,
)
from practice.models import (
    Client,
    ClinicianProfile,
    Episode,
    Practice,
    SupervisionPairing,
    User,
)
from practice.services import audit_record
from scheduling.models import Appointment, WorkloadAlert
from scheduling.workload import WEEKS_BACK

Rule = RuptureFlag.Rule
Attendance = SupervisionSession.Attendance


# --- What the queue holds ----------------------------------------------------------------


class QueueKind(models.TextChoices):
    SAFETY = "safety", "Safety"
    RUPTURE = "rupture", "Ruptures"
    NOT_ON_TRACK = "not_on_track", "Not on track"
    DROPOUT = "dropout", "Dropout"
    WORKLOAD = "workload", "Workload (burnout signal)"


# Which detection rules make up each kind a supervisor filters by. Reliable deterioration is
# an outcome signal like "not on track": both say the treatment, not the bond, is failing.
RULES_BY_KIND: dict[str, tuple[str, ...]] = {
    QueueKind.SAFETY: (Rule.SAFETY,),
    QueueKind.RUPTURE: (
        Rule.LOW_ALLIANCE,
        Rule.ALLIANCE_DROP,
        Rule.FELT_OFF,
        Rule.MISSED_AFTER_STRAIN,
        Rule.TWO_MISSED,
        Rule.CLINICIAN_CAUSED,
        Rule.LOGGED,
    ),
    QueueKind.NOT_ON_TRACK: (Rule.NOT_ON_TRACK, Rule.RELIABLE_DETERIORATION),
    QueueKind.DROPOUT: (Rule.DROPOUT,),
}
KIND_OF_RULE: dict[str, str] = {
    rule: kind for kind, rules in RULES_BY_KIND.items() for rule in rules
}

# Workload alerts ranked on the flags' severity scale (RuptureFlag.SEVERITY): a week without
# rest or over the hours cap is the seed article's road to a forgotten Sunday session, as
# serious as a missed session after strain; short breaks and late sessions weigh less. All
# stay below safety, which always comes first.
WORKLOAD_SEVERITY: dict[str, int] = {
    WorkloadAlert.Kind.WEEKLY_HOURS: 50,
    WorkloadAlert.Kind.NO_REST_DAY: 50,
    WorkloadAlert.Kind.REST_DAY_SESSIONS: 45,
    WorkloadAlert.Kind.DAILY_SESSIONS: 40,
    WorkloadAlert.Kind.SHORT_BREAKS: 30,
    WorkloadAlert.Kind.OUTSIDE_HOURS: 30,
}


@dataclass(frozen=True)
class QueueEntry:
    """One row of the review queue: an open flag or an open workload alert."""

    kind: str
    severity: int
    since: datetime
    supervisee: User
    flag: RuptureFlag | None = None
    alert: WorkloadAlert | None = None
    on_agenda: bool = False
    plan_requested: bool = False

    @property
    def kind_label(self) -> str:
        return QueueKind(self.kind).label

    @property
    def is_safety(self) -> bool:
        return self.kind == QueueKind.SAFETY

    def sort_key(self) -> tuple[int, int, datetime, int, int]:
        # Safety first whatever the numbers say, then severity, then the longest waiting.
        pk = self.flag.pk if self.flag else self.alert.pk if self.alert else 0
        return (0 if self.is_safety else 1, -self.severity, self.since, 0 if self.flag else 1, pk)


def current_supervisees(supervisor: User, practice: Practice) -> list[User]:
    """The supervisor's current supervisees, by name. One query."""
    pairings = (
        SupervisionPairing.objects.current()
        .in_practice(practice)
        .filter(supervisor=supervisor)
        .select_related("supervisee")
        .order_by("supervisee__last_name", "supervisee__first_name", "supervisee__pk")
    )
    return [pairing.supervisee for pairing in pairings]


def is_current_supervisor(supervisor: User, supervisee_id: int) -> bool:
    return (
        SupervisionPairing.objects.current()
        .filter(supervisor=supervisor, supervisee_id=supervisee_id)
        .exists()
    )


def practice_week_start(practice: Practice, now: datetime) -> datetime:
    """Monday 00:00 of the current week in the practice's time zone."""
    today = now.astimezone(practice.tz).date()
    return datetime.combine(today - timedelta(days=today.weekday()), time.min, tzinfo=practice.tz)


def queue_flags(supervisor: User) -> models.QuerySet[RuptureFlag]:
    """Open flags about the supervisor's current supervisees, with what a queue row shows:
    whether the flag waits on an agenda and whether a repair plan is asked for."""
    return (
        RuptureFlag.objects.open()
        .for_supervisor(supervisor)
        .select_related("client", "episode__clinician", "acknowledged_by")
        .annotate(
            on_agenda=Exists(AgendaItem.objects.pending().filter(flag=OuterRef("pk"))),
            plan_requested=Exists(
                RepairPlanRequest.objects.unanswered().filter(flag=OuterRef("pk"))
            ),
        )
    )


def queue_workload_alerts(
    supervisor: User, practice: Practice, *, now: datetime
) -> models.QuerySet[WorkloadAlert]:
    """Open workload alerts of current supervisees, for the weeks the sweep keeps current
    (older open alerts are frozen, not news: the same window as the workload page)."""
    since = practice_week_start(practice, now).date() - timedelta(weeks=WEEKS_BACK)
    supervisees = (
        SupervisionPairing.objects.current().in_practice(practice).filter(supervisor=supervisor)
    )
    return (
        WorkloadAlert.objects.open()
        .in_practice(practice)
        .filter(clinician__in=supervisees.values("supervisee"), week_start__gte=since)
        .select_related("clinician")
        .annotate(
            on_agenda=Exists(AgendaItem.objects.pending().filter(workload_alert=OuterRef("pk")))
        )
    )


def review_queue(
    *,
    supervisor: User,
    practice: Practice,
    now: datetime,
    supervisee: User | None = None,
    kind: str | None = None,
) -> list[QueueEntry]:
    """Every open flag and workload alert about the supervisor's current supervisees:
    safety first, then by severity, then the oldest first. Two queries."""
    entries: list[QueueEntry] = []
    if kind != QueueKind.WORKLOAD:
        flags = queue_flags(supervisor)
        if kind:
            flags = flags.filter(rule__in=RULES_BY_KIND[kind])
        if supervisee is not None:
            flags = flags.filter(episode__clinician=supervisee)
        entries += [
            QueueEntry(
                kind=KIND_OF_RULE.get(flag.rule, QueueKind.RUPTURE),
                severity=flag.severity,
                since=flag.raised_at,
                supervisee=flag.episode.clinician,
                flag=flag,
                on_agenda=getattr(flag, "on_agenda", False),
                plan_requested=getattr(flag, "plan_requested", False),
            )
            for flag in flags
        ]
    if kind in (None, "", QueueKind.WORKLOAD):
        alerts = queue_workload_alerts(supervisor, practice, now=now)
        if supervisee is not None:
            alerts = alerts.filter(clinician=supervisee)
        entries += [
            QueueEntry(
                kind=QueueKind.WORKLOAD,
                severity=WORKLOAD_SEVERITY.get(alert.kind, 30),
                since=alert.opened_at,
                supervisee=alert.clinician,
                alert=alert,
                on_agenda=getattr(alert, "on_agenda", False),
            )
            for alert in alerts
        ]
    return sorted(entries, key=QueueEntry.sort_key)


# --- Triage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriageState:
    on_agenda: bool
    plan_requested: bool


def flag_triage_state(flag: RuptureFlag, *, supervisor: User) -> TriageState | None:
    """What the flag page offers its supervisor, or None when `supervisor` does not oversee
    the flag now (the clinician, a former supervisor). One query."""
    state = (
        RuptureFlag.objects.for_supervisor(supervisor)
        .filter(pk=flag.pk)
        .annotate(
            on_agenda=Exists(AgendaItem.objects.pending().filter(flag=OuterRef("pk"))),
            plan_requested=Exists(
                RepairPlanRequest.objects.unanswered().filter(flag=OuterRef("pk"))
            ),
        )
        .values("on_agenda", "plan_requested")
        .first()
    )
    return TriageState(**state) if state else None


def _locked_flag(flag: RuptureFlag, supervisor: User) -> RuptureFlag:
    """The flag, locked, after checking that `supervisor` oversees it now."""
    locked = (
        RuptureFlag.objects.select_for_update(of=("self",))
        .select_related("episode__clinician", "practice")
        .get(pk=flag.pk)
    )
    if not RuptureFlag.objects.for_supervisor(supervisor).filter(pk=locked.pk).exists():
        raise PermissionDenied("Only the clinician's current supervisor can triage this flag.")
    return locked


def _require_open(flag: RuptureFlag) -> None:
    if not flag.is_open:
        raise ValidationError(
            f"This flag is {flag.get_status_display().lower()} already; nothing to triage."
        )


@transaction.atomic
def flag_acknowledge(
    *, flag: RuptureFlag, supervisor: User, now: datetime, note: str = ""
) -> RuptureFlag:
    """The supervisor has seen the flag. It stays open: the clinician still works on it."""
    flag = _locked_flag(flag, supervisor)
    _require_open(flag)
    if flag.acknowledged_at is not None:
        raise ValidationError("You have already acknowledged this flag.")
    flag.acknowledge(by=supervisor, at=now)
    FlagEvent.objects.create(
        flag=flag, at=now, by=supervisor, action=FlagEvent.Action.ACKNOWLEDGED, note=note.strip()
    )
    audit_record(actor=supervisor, action="flag.acknowledge", obj=flag, practice=flag.practice)
    return flag


def next_planned_session(
    supervisor: User, supervisee: User, *, now: datetime
) -> SupervisionSession | None:
    return (
        SupervisionSession.objects.for_supervisor(supervisor)
        .for_supervisee(supervisee)
        .upcoming(now)
        .order_by("scheduled_for", "pk")
        .first()
    )


def _agenda_note(session: SupervisionSession | None) -> str:
    if session is None:
        return "For the next supervision session; none is planned yet."
    local = session.scheduled_for.astimezone(session.practice.tz)
    return f"For the supervision session on {local:%d %b %Y %H:%M}."


@transaction.atomic
def flag_add_to_agenda(
    *, flag: RuptureFlag, supervisor: User, now: datetime, topic: str = ""
) -> AgendaItem:
    """Put the flag on the supervisee's next planned supervision session, or keep it
    waiting for the next session to be created, which picks it up."""
    flag = _locked_flag(flag, supervisor)
    _require_open(flag)
    supervisee = flag.episode.clinician
    if AgendaItem.objects.pending().filter(flag=flag).exists():
        raise ValidationError("This flag is already on the agenda of a coming session.")
    session = next_planned_session(supervisor, supervisee, now=now)
    item = AgendaItem.objects.create(
        session=session,
        supervisor=supervisor,
        supervisee=supervisee,
        flag=flag,
        topic=topic.strip()[:200],
        added_by=supervisor,
        added_at=now,
    )
    FlagEvent.objects.create(
        flag=flag, at=now, by=supervisor, action=FlagEvent.Action.AGENDA, note=_agenda_note(session)
    )
    audit_record(actor=supervisor, action="flag.agenda", obj=flag, practice=flag.practice)
    return item


@transaction.atomic
def workload_alert_add_to_agenda(
    *, alert: WorkloadAlert, supervisor: User, now: datetime
) -> AgendaItem:
    """A burnout signal for the supervision agenda, like a flag."""
    alert = WorkloadAlert.objects.select_for_update().select_related("clinician").get(pk=alert.pk)
    if not is_current_supervisor(supervisor, alert.clinician_id):
        raise PermissionDenied("Only the clinician's current supervisor can do this.")
    if alert.resolved_at is not None:
        raise ValidationError("This workload alert has cleared; nothing to discuss.")
    if AgendaItem.objects.pending().filter(workload_alert=alert).exists():
        raise ValidationError("This workload alert is already on the agenda of a coming session.")
    session = next_planned_session(supervisor, alert.clinician, now=now)
    item = AgendaItem.objects.create(
        session=session,
        supervisor=supervisor,
        supervisee=alert.clinician,
        workload_alert=alert,
        topic=f"Workload: {alert.get_kind_display()} (week of {alert.week_start:%d %b %Y})",
        added_by=supervisor,
        added_at=now,
    )
    audit_record(actor=supervisor, action="workload_alert.agenda", obj=alert)
    return item


@transaction.atomic
def repair_plan_request(
    *, flag: RuptureFlag, supervisor: User, note: str, now: datetime
) -> RepairPlanRequest:
    """Ask the clinician how they plan to repair. They see it on their home page."""
    flag = _locked_flag(flag, supervisor)
    _require_open(flag)
    if RepairPlanRequest.objects.unanswered().filter(flag=flag).exists():
        raise ValidationError("A repair plan is already asked for and not answered yet.")
    plan_request = RepairPlanRequest.objects.create(
        flag=flag, requested_by=supervisor, requested_at=now, note=note.strip()
    )
    FlagEvent.objects.create(
        flag=flag,
        at=now,
        by=supervisor,
        action=FlagEvent.Action.PLAN_REQUESTED,
        note=note.strip(),
    )
    audit_record(
        actor=supervisor, action="repair_plan.request", obj=plan_request, practice=flag.practice
    )
    return plan_request


@transaction.atomic
def repair_plan_answer(
    *, plan_request: RepairPlanRequest, clinician: User, plan: str, now: datetime
) -> RepairPlanRequest:
    """The clinician answers with their plan; the flag's history keeps it."""
    plan_request = (
        RepairPlanRequest.objects.select_for_update(of=("self",))
        .select_related("flag__episode", "flag__practice")
        .get(pk=plan_request.pk)
    )
    flag = plan_request.flag
    if flag.episode.clinician_id != clinician.pk:
        raise PermissionDenied("Only the client's clinician answers a repair-plan request.")
    if plan_request.answered_at is not None:
        raise ValidationError("This request was answered already.")
    if not plan.strip():
        raise ValidationError({"plan": "Say how you plan to repair, in a few sentences."})
    plan_request.plan = plan.strip()
    plan_request.answered_at = now
    plan_request.save(update_fields=["plan", "answered_at"])
    FlagEvent.objects.create(
        flag=flag, at=now, by=clinician, action=FlagEvent.Action.PLAN_GIVEN, note=plan.strip()
    )
    audit_record(
        actor=clinician, action="repair_plan.answer", obj=plan_request, practice=flag.practice
    )
    return plan_request


@transaction.atomic
def flag_close_by_supervisor(
    *, flag: RuptureFlag, supervisor: User, note: str, now: datetime
) -> RuptureFlag:
    """Close a flag that needs no more work (a false alarm, a handled concern), with a note,
    through the flag's own lifecycle."""
    flag = _locked_flag(flag, supervisor)
    _require_open(flag)
    return services.flag_transition(
        flag=flag, to_status=RuptureFlag.Status.CLOSED, note=note, actor=supervisor, now=now
    )


# --- Supervision sessions ----------------------------------------------------------------


@transaction.atomic
def supervision_agenda_fill(*, session: SupervisionSession, now: datetime) -> list[AgendaItem]:
    """Fill a planned session's agenda by itself: the items added while no session was
    planned, and every open safety flag about the supervisee's clients, each once.

    The session row is locked, so two people opening the page at once add each flag once.
    A session that took place, or whose pairing has ended, is left as it is.
    """
    session = SupervisionSession.objects.select_for_update().get(pk=session.pk)
    if session.attendance != Attendance.PLANNED or not is_current_supervisor(
        session.supervisor, session.supervisee_id
    ):
        return []
    on_agenda = AgendaItem.objects.filter(session=session, flag__isnull=False).values("flag")
    AgendaItem.objects.waiting().between(session.supervisor, session.supervisee).exclude(
        flag__in=on_agenda
    ).update(session=session)
    safety = (
        RuptureFlag.objects.open()
        .safety()
        .filter(episode__clinician=session.supervisee, episode__closed_on__isnull=True)
        .exclude(pk__in=on_agenda)
        .order_by("raised_at", "pk")
    )
    added: list[AgendaItem] = []
    note = (
        "Joined the supervision agenda by itself: an open safety flag is on every session. "
        + _agenda_note(session)
    )
    for flag in safety:
        added.append(
            AgendaItem.objects.create(
                session=session,
                supervisor=session.supervisor,
                supervisee=session.supervisee,
                flag=flag,
                added_at=now,
                automatic=True,
            )
        )
        # No person added it: like the sweep's own events, `by` stays empty.
        FlagEvent.objects.create(flag=flag, at=now, action=FlagEvent.Action.AGENDA, note=note)
    return added


@transaction.atomic
def supervision_session_create(
    *, supervisor: User, supervisee: User, scheduled_for: datetime, now: datetime
) -> SupervisionSession:
    """Plan a supervision session with a current supervisee; its agenda fills itself."""
    pairing = (
        SupervisionPairing.objects.current()
        .filter(supervisor=supervisor, supervisee=supervisee)
        .select_related("practice")
        .first()
    )
    if pairing is None:
        raise ValidationError({"supervisee": "Choose one of your current supervisees."})
    session = SupervisionSession.objects.create(
        practice=pairing.practice,
        supervisor=supervisor,
        supervisee=supervisee,
        scheduled_for=scheduled_for,
        created_at=now,
    )
    audit_record(actor=supervisor, action="supervision_session.create", obj=session)
    supervision_agenda_fill(session=session, now=now)
    return session


def _locked_session(session: SupervisionSession, supervisor: User) -> SupervisionSession:
    locked = SupervisionSession.objects.select_for_update().get(pk=session.pk)
    if locked.supervisor_id != supervisor.pk:
        raise PermissionDenied("Only the supervisor records the session.")
    return locked


@transaction.atomic
def supervision_session_record(
    *, session: SupervisionSession, supervisor: User, attendance: str, notes: str
) -> SupervisionSession:
    """Record whether the session took place, and the supervisor's notes."""
    session = _locked_session(session, supervisor)
    if attendance not in Attendance.values:
        raise ValidationError({"attendance": "Choose whether the session took place."})
    session.attendance = attendance
    session.notes = notes.strip()
    session.save(update_fields=["attendance", "notes"])
    audit_record(actor=supervisor, action="supervision_session.record", obj=session)
    return session


@transaction.atomic
def agenda_topic_add(
    *, session: SupervisionSession, supervisor: User, topic: str, now: datetime
) -> AgendaItem:
    """A topic of the supervisor's own: a case to think through, the clinician's own mistake."""
    session = _locked_session(session, supervisor)
    if not topic.strip():
        raise ValidationError({"topic": "Name the topic."})
    item = AgendaItem.objects.create(
        session=session,
        supervisor=supervisor,
        supervisee=session.supervisee,
        topic=topic.strip()[:200],
        added_by=supervisor,
        added_at=now,
    )
    audit_record(actor=supervisor, action="agenda_item.add", obj=item, practice=session.practice)
    return item


@transaction.atomic
def agenda_item_decide(
    *, item: AgendaItem, supervisor: User, decision: str, now: datetime
) -> AgendaItem:
    """What supervision decided about one agenda item; a flag's history keeps it too."""
    item = (
        AgendaItem.objects.select_for_update(of=("self",)).select_related("session").get(pk=item.pk)
    )
    if item.session is None or item.session.supervisor_id != supervisor.pk:
        raise PermissionDenied("Only the supervisor of the session records its decisions.")
    if not decision.strip():
        raise ValidationError({"decision": "Write the decision, or leave the item open."})
    item.decision = decision.strip()
    item.save(update_fields=["decision"])
    if item.flag_id is not None:
        FlagEvent.objects.create(
            flag_id=item.flag_id,
            at=now,
            by=supervisor,
            action=FlagEvent.Action.NOTE,
            note=f"Supervision decision: {item.decision}",
        )
    audit_record(
        actor=supervisor, action="agenda_item.decide", obj=item, practice=item.session.practice
    )
    return item


def next_session_after(session: SupervisionSession) -> SupervisionSession | None:
    """The next planned session of the same supervisor and supervisee, after this one."""
    return (
        SupervisionSession.objects.for_supervisor(session.supervisor)
        .for_supervisee(session.supervisee)
        .filter(scheduled_for__gt=session.scheduled_for, attendance=Attendance.PLANNED)
        .order_by("scheduled_for", "pk")
        .first()
    )


@transaction.atomic
def follow_up_add(
    *,
    session: SupervisionSession,
    supervisor: User,
    description: str,
    owner: User,
    due_by: date | None,
) -> FollowUp:
    """Something to do before the next session. Due by the next session's date unless
    another date is given; with no next session planned, a date is needed."""
    session = _locked_session(session, supervisor)
    errors: dict[str, str] = {}
    if not description.strip():
        errors["description"] = "Say what is to be done."
    if owner.pk not in (session.supervisor_id, session.supervisee_id):
        errors["owner"] = "The supervisor or the supervisee owns a follow-up."
    if due_by is None:
        following = next_session_after(session)
        if following is None:
            errors["due_by"] = "No later session is planned yet: choose a due date."
        else:
            due_by = following.scheduled_for.astimezone(session.practice.tz).date()
    if errors:
        raise ValidationError(errors)
    assert due_by is not None
    follow_up = FollowUp.objects.create(
        session=session, description=description.strip()[:300], owner=owner, due_by=due_by
    )
    audit_record(actor=supervisor, action="follow_up.add", obj=follow_up, practice=session.practice)
    return follow_up


@transaction.atomic
def follow_up_done(*, follow_up: FollowUp, actor: User, now: datetime) -> FollowUp:
    follow_up = (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("session")
        .get(pk=follow_up.pk)
    )
    if actor.pk not in (follow_up.session.supervisor_id, follow_up.owner_id):
        raise PermissionDenied("The supervisor or the follow-up's owner marks it done.")
    if follow_up.done_at is not None:
        raise ValidationError("This follow-up is done already.")
    follow_up.done_at = now
    follow_up.save(update_fields=["done_at"])
    audit_record(
        actor=actor, action="follow_up.done", obj=follow_up, practice=follow_up.session.practice
    )
    return follow_up


# --- Countertransference notes -----------------------------------------------------------


def countertransference_episode(author: User, client: Client) -> Episode | None:
    """The author's episode with the client the note belongs to: the open one, else the
    latest (a clinician may still reflect on a client who has moved on)."""
    return (
        Episode.objects.for_clinician(author)
        .filter(client=client)
        .order_by(models.F("closed_on").desc(nulls_first=True), "-opened_on", "-pk")
        .first()
    )


@transaction.atomic
def countertransference_note_write(
    *, author: User, client: Client, text: str, now: datetime
) -> CountertransferenceNote:
    """A clinician's private note about their own reactions to a client in their caseload.
    Only they and their current supervisor will read it."""
    episode = countertransference_episode(author, client)
    if episode is None:
        raise PermissionDenied("Only a clinician who treats the client writes about them.")
    if not text.strip():
        raise ValidationError({"text": "Write what you noticed in yourself."})
    note = CountertransferenceNote.objects.create(
        author=author, client=client, episode=episode, written_at=now, text=text.strip()
    )
    audit_record(
        actor=author, action="countertransference.write", obj=note, practice=client.practice
    )
    return note


# --- The supervisee overview -------------------------------------------------------------


@dataclass
class SuperviseeOverview:
    supervisee: User
    caseload: int
    capacity: int
    hours_this_week: float
    hours_next_week: float
    hours_cap: int
    sessions_90_days: int
    no_shows_90_days: int
    feedback_answered: int
    feedback_low: int
    open_flags: dict[str, int] = field(default_factory=dict)
    open_workload_alerts: int = 0

    KINDS: ClassVar[list[tuple[str, str]]] = [
        (k.value, k.label) for k in QueueKind if k != QueueKind.WORKLOAD
    ]

    @property
    def no_show_rate(self) -> float | None:
        return self.no_shows_90_days / self.sessions_90_days if self.sessions_90_days else None

    @property
    def low_alliance_share(self) -> float | None:
        return self.feedback_low / self.feedback_answered if self.feedback_answered else None

    @property
    def over_capacity(self) -> bool:
        return self.caseload > self.capacity

    @property
    def flags_by_kind(self) -> list[tuple[str, int]]:
        return [(label, self.open_flags.get(kind, 0)) for kind, label in self.KINDS]


ALLIANCE_TREND_WEEKS = 8
NO_SHOW_DAYS = 90


def supervisee_overview(
    *, supervisor: User, practice: Practice, now: datetime
) -> list[SuperviseeOverview]:
    """Per current supervisee: caseload against capacity, booked hours this week and next
    against the cap, no-shows over 90 days, open flags by kind, and the alliance trend (the
    share of session feedback below the practice's threshold over the last 8 weeks).
    A fixed number of grouped queries, however many supervisees."""
    pairings = list(
        SupervisionPairing.objects.current()
        .in_practice(practice)
        .filter(supervisor=supervisor)
        .select_related("supervisee")
        .order_by("supervisee__last_name", "supervisee__first_name", "supervisee__pk")
    )
    ids = [p.supervisee_id for p in pairings]
    profiles = {
        profile.membership.user_id: profile
        for profile in ClinicianProfile.objects.filter(membership__user_id__in=ids).select_related(
            "membership__practice"
        )
    }
    caseloads = dict(
        Episode.objects.active()
        .filter(clinician_id__in=ids)
        .values_list("clinician")
        .annotate(n=Count("pk"))
        .order_by()
    )
    week = practice_week_start(practice, now)
    next_week, after = week + timedelta(days=7), week + timedelta(days=14)
    appointments = Appointment.objects.in_practice(practice).filter(clinician_id__in=ids)
    this_hours = appointments.booked_hours_by_clinician(week, next_week)
    next_hours = appointments.booked_hours_by_clinician(next_week, after)
    no_shows = {
        row["clinician"]: (row["sessions"], row["no_shows"])
        for row in appointments.no_show_rates(by="clinician", now=now, days=NO_SHOW_DAYS)
    }
    policy = AlliancePolicy.for_practice(practice)
    trend = Response.objects.filter(episode__clinician_id__in=ids).alliance_trend_by_clinician(
        since=now - timedelta(weeks=ALLIANCE_TREND_WEEKS), below=policy.low_alliance_below
    )
    flag_counts: dict[int, dict[str, int]] = {}
    rows = (
        RuptureFlag.objects.open()
        .for_supervisor(supervisor)
        .values("episode__clinician", "rule")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        kinds = flag_counts.setdefault(row["episode__clinician"], {})
        kind = KIND_OF_RULE.get(row["rule"], QueueKind.RUPTURE)
        kinds[kind] = kinds.get(kind, 0) + row["n"]
    alerts = dict(
        queue_workload_alerts(supervisor, practice, now=now)
        .values_list("clinician")
        .annotate(n=Count("pk"))
        .order_by()
    )
    overview = []
    for pairing in pairings:
        pk = pairing.supervisee_id
        profile = profiles.get(pk)
        sessions, missed = no_shows.get(pk, (0, 0))
        answered, low = trend.get(pk, (0, 0))
        overview.append(
            SuperviseeOverview(
                supervisee=pairing.supervisee,
                caseload=caseloads.get(pk, 0),
                capacity=(
                    profile.effective_capacity if profile else practice.default_caseload_capacity
                ),
                hours_this_week=round(this_hours.get(pk, 0.0), 2),
                hours_next_week=round(next_hours.get(pk, 0.0), 2),
                hours_cap=practice.weekly_hours_cap,
                sessions_90_days=sessions,
                no_shows_90_days=missed,
                feedback_answered=answered,
                feedback_low=low,
                open_flags=flag_counts.get(pk, {}),
                open_workload_alerts=alerts.get(pk, 0),
            )
        )
    return overview
