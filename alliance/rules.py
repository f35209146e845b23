"""Rupture detection rules: each reads one episode's history and says what it would flag.

A rule is a function ``rule_<name>(episode, *, now) -> list[Finding]``. It reads only
``episode.responses.all()`` and ``episode.appointments.all()`` (prefetched by the sweep, so
a rule adds no queries) and ignores anything after ``now``. Each finding names the event
that triggered it (``trigger_key``), so the sweep raises one flag per rule per event however
often it runs, and carries the evidence the rule saw for a supervisor to judge.

The thresholds are the practice's `AlliancePolicy` (36 of 40, 5 points, 21 days, 8
sessions… by default), passed in as ``policy``; without one a rule uses the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from alliance.models import AlliancePolicy, Instrument, Response, RuptureFlag
from practice.models import Episode
from scheduling.models import OPEN_STATUSES, Appointment, Status

Rule = RuptureFlag.Rule

# The session-feedback instrument the alliance rules read, and its alert threshold.
FEEDBACK_CODE = "session-feedback"
# Totals at or above these are in the clinical range (the published cut-offs).
CLINICAL_CUTOFF = {"phq-9": 10, "gad-7": 10}

# Sessions that fell due: the client attended, did not come, or cancelled too late.
DUE_STATUSES = (Status.ATTENDED, Status.NO_SHOW, Status.LATE_CANCELLED)
MISSED_STATUSES = (Status.NO_SHOW, Status.LATE_CANCELLED)


@dataclass(frozen=True)
class Finding:
    rule: str
    trigger_key: str
    severity: int
    evidence: dict[str, Any] = field(default_factory=dict)


RuleFunction = Callable[..., list[Finding]]


def _finding(rule: str, trigger_key: str, summary: str, **evidence: Any) -> Finding:
    return Finding(
        rule=rule,
        trigger_key=trigger_key,
        severity=RuptureFlag.SEVERITY[rule],
        evidence={"summary": summary, **evidence},
    )


def _p(policy: AlliancePolicy | None) -> AlliancePolicy:
    """The practice's policy, or the defaults (an unsaved policy, no query)."""
    return policy if policy is not None else AlliancePolicy()


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# Reading the prefetched history


def _responses(episode: Episode, now: datetime) -> list[Response]:
    rows = [r for r in episode.responses.all() if r.completed_at <= now]
    return sorted(rows, key=lambda r: (r.completed_at, r.pk))


def _feedback(episode: Episode, now: datetime) -> list[Response]:
    return [r for r in _responses(episode, now) if r.instrument.code == FEEDBACK_CODE]


def _outcomes_by_code(episode: Episode, now: datetime) -> dict[str, list[Response]]:
    """Outcome responses per instrument code, oldest (the baseline) first."""
    grouped: dict[str, list[Response]] = {}
    for response in _responses(episode, now):
        if response.instrument.kind == Instrument.Kind.OUTCOME:
            grouped.setdefault(response.instrument.code, []).append(response)
    return grouped


def _appointments(episode: Episode) -> list[Appointment]:
    return sorted(episode.appointments.all(), key=lambda a: (a.starts_at, a.pk))


def _due_sessions(episode: Episode, now: datetime) -> list[Appointment]:
    return [a for a in _appointments(episode) if a.starts_at <= now and a.status in DUE_STATUSES]


def _score(response: Response) -> dict[str, Any]:
    return {
        "response_id": response.pk,
        "instrument": response.instrument.code,
        "total": response.total,
        "completed_at": response.completed_at.isoformat(),
        "appointment_id": response.appointment_id,
    }


def _session(appointment: Appointment) -> dict[str, Any]:
    return {
        "appointment_id": appointment.pk,
        "starts_at": appointment.starts_at.isoformat(),
        "status": appointment.status,
    }


def _strain(feedback: Sequence[Response], p: AlliancePolicy) -> list[tuple[Response, str]]:
    """Feedback that was low, or dropped against the running mean, with the reason."""
    strained: list[tuple[Response, str]] = []
    for index, response in enumerate(feedback):
        if response.total < p.low_alliance_below:
            strained.append((response, "low"))
            continue
        previous = [r.total for r in feedback[:index]]
        if previous and sum(previous) / len(previous) - response.total >= p.alliance_drop_points:
            strained.append((response, "drop"))
    return strained


# The rules


def rule_low_alliance(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """A session-feedback total below the alert threshold (36 of 40)."""
    return [
        _finding(
            Rule.LOW_ALLIANCE,
            f"response:{response.pk}",
            f"Session feedback {response.total}/40 is below the threshold of "
            f"{_p(policy).low_alliance_below}.",
            threshold=_p(policy).low_alliance_below,
            **_score(response),
        )
        for response in _feedback(episode, now)
        if response.total < _p(policy).low_alliance_below
    ]


def rule_alliance_drop(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """A total at least 5 points below the mean of the client's previous feedback totals.

    A client who always scores 30 is not dropping at 30: the client's own mean is the
    baseline, which catches a change that a fixed threshold misses.
    """
    findings = []
    feedback = _feedback(episode, now)
    for index, response in enumerate(feedback[1:], start=1):
        previous = feedback[:index]
        mean = sum(r.total for r in previous) / len(previous)
        drop = mean - response.total
        if drop >= _p(policy).alliance_drop_points:
            findings.append(
                _finding(
                    Rule.ALLIANCE_DROP,
                    f"response:{response.pk}",
                    f"Session feedback {response.total}/40 is {drop:.1f} points below the "
                    f"client's mean of {mean:.1f} over {len(previous)} earlier sessions.",
                    running_mean=round(mean, 2),
                    drop=round(drop, 2),
                    drop_threshold=_p(policy).alliance_drop_points,
                    previous=[
                        {
                            "response_id": r.pk,
                            "total": r.total,
                            "completed_at": r.completed_at.isoformat(),
                        }
                        for r in previous
                    ],
                    **_score(response),
                )
            )
    return findings


def rule_felt_off(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """The client answered yes to "did anything today feel off?".

    The evidence says whether the client wrote something, not what: the words stay in the
    response, behind its own access rules.
    """
    return [
        _finding(
            Rule.FELT_OFF,
            f"response:{response.pk}",
            "The client said something in the session felt off.",
            comment_given=bool(response.answers.get("felt_off_text")),
            **_score(response),
        )
        for response in _feedback(episode, now)
        if response.answers.get("felt_off") is True
    ]


def rule_safety(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """Any response with a safety item answered at or above its threshold."""
    findings = []
    for response in _responses(episode, now):
        if not response.safety_triggered:
            continue
        items = [
            {
                "item": rule.item.key,
                "position": rule.item.position,
                "answer": response.answers.get(rule.item.key),
                "threshold": rule.threshold,
            }
            for rule in response.instrument.safety_rules.all()
            if isinstance(response.answers.get(rule.item.key), int)
            and response.answers[rule.item.key] >= rule.threshold
        ]
        findings.append(
            _finding(
                Rule.SAFETY,
                f"response:{response.pk}",
                f"Safety item answered on the {response.instrument.name} "
                f"({', '.join(i['item'] for i in items) or 'see response'}).",
                safety_items=items,
                **_score(response),
            )
        )
    return findings


def rule_two_missed(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """Two sessions in a row that fell due and were missed (no-show or late cancel).

    One flag per run of misses, raised by its second miss: a third miss in the same run
    is the same rupture, not a new one.
    """
    findings = []
    due = _due_sessions(episode, now)
    for index in range(1, len(due)):
        first, second = due[index - 1], due[index]
        run_starts_here = index == 1 or due[index - 2].status not in MISSED_STATUSES
        if first.status in MISSED_STATUSES and second.status in MISSED_STATUSES and run_starts_here:
            findings.append(
                _finding(
                    Rule.TWO_MISSED,
                    f"appointment:{second.pk}",
                    f"Two sessions missed in a row: {first.starts_at:%Y-%m-%d} and "
                    f"{second.starts_at:%Y-%m-%d}.",
                    sessions=[_session(first), _session(second)],
                )
            )
    return findings


def rule_missed_after_strain(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """A no-show or late cancel within the 2 sessions after a low or dropping score."""
    due = _due_sessions(episode, now)
    findings: dict[int, Finding] = {}
    for response, reason in _strain(_feedback(episode, now), _p(policy)):
        window = [a for a in due if a.starts_at > response.completed_at][
            : _p(policy).strain_window_sessions
        ]
        for missed in window:
            # One flag per missed session, citing the most recent strain before it.
            if missed.status in MISSED_STATUSES:
                findings[missed.pk] = _finding(
                    Rule.MISSED_AFTER_STRAIN,
                    f"appointment:{missed.pk}",
                    f"Session on {missed.starts_at:%Y-%m-%d} was {missed.get_status_display()} "
                    f"after a {reason} feedback score of {response.total}/40.",
                    strain={"reason": reason, **_score(response)},
                    window=[_session(a) for a in window],
                    missed=_session(missed),
                )
    return list(findings.values())


def rule_dropout(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """An open episode with no future session and nothing attended for 21 days.

    Keyed on the date of the last contact, so a client who comes back and then drops out
    again raises a new flag.
    """
    if not episode.is_open:
        return []
    appointments = _appointments(episode)
    if any(a.starts_at > now and a.status in OPEN_STATUSES for a in appointments):
        return []
    attended = [a for a in appointments if a.starts_at <= now and a.status == Status.ATTENDED]
    last = attended[-1] if attended else None
    if last is not None:
        since = last.starts_at
        last_contact: date = timezone.localdate(last.starts_at, episode.client.practice.tz)
    else:
        # Never attended: count from the day the episode opened.
        last_contact = episode.opened_on
        since = datetime.combine(
            last_contact, datetime.min.time(), tzinfo=episode.client.practice.tz
        )
    days = (now - since).days
    if now - since < timedelta(days=_p(policy).dropout_after_days):
        return []
    return [
        _finding(
            Rule.DROPOUT,
            f"episode:{episode.pk}:{last_contact.isoformat()}",
            f"No session attended for {days} days and none booked.",
            last_attended=_session(last) if last else None,
            opened_on=episode.opened_on.isoformat(),
            days_without_session=days,
            threshold_days=_p(policy).dropout_after_days,
            checked_at=now.isoformat(),
        )
    ]


def rule_reliable_deterioration(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """An outcome total up from the episode's baseline by the instrument's reliable change.

    Raised by the first response that crosses the line; later scores that stay there are
    the same deterioration, and a new crossing after recovery is a new one.
    """
    findings = []
    for responses in _outcomes_by_code(episode, now).values():
        baseline = responses[0]
        change = baseline.instrument.reliable_change
        if change is None:
            continue
        was_deteriorated = False
        for response in responses[1:]:
            rise = response.total - baseline.total
            deteriorated = rise >= change
            if deteriorated and not was_deteriorated:
                findings.append(
                    _finding(
                        Rule.RELIABLE_DETERIORATION,
                        f"response:{response.pk}",
                        f"{response.instrument.name} rose from {baseline.total} to "
                        f"{response.total} (reliable change is {_number(change)}).",
                        baseline=_score(baseline),
                        rise=rise,
                        reliable_change=_number(change),
                        **_score(response),
                    )
                )
            was_deteriorated = deteriorated
    return findings


def rule_not_on_track(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """After 8 attended sessions, no reliable improvement and still in the clinical range.

    One flag per episode and baseline: a client who stays stuck is one concern for the
    supervisor, not a new flag with every score. The evidence is the score that first
    showed it.
    """
    attended = [
        a for a in _appointments(episode) if a.starts_at <= now and a.status == Status.ATTENDED
    ]
    if len(attended) < _p(policy).not_on_track_after_sessions:
        return []
    findings = []
    for code, responses in _outcomes_by_code(episode, now).items():
        cutoff = CLINICAL_CUTOFF.get(code)
        baseline, latest = responses[0], responses[-1]
        change = baseline.instrument.reliable_change
        if cutoff is None or change is None or latest.pk == baseline.pk:
            continue
        improvement = baseline.total - latest.total
        if improvement < change and latest.total >= cutoff:
            findings.append(
                _finding(
                    Rule.NOT_ON_TRACK,
                    f"episode:{episode.pk}:{code}:baseline:{baseline.pk}",
                    f"After {len(attended)} sessions the {latest.instrument.name} is "
                    f"{latest.total} (baseline {baseline.total}), still at or above {cutoff}.",
                    baseline=_score(baseline),
                    improvement=improvement,
                    reliable_change=_number(change),
                    clinical_cutoff=cutoff,
                    sessions_attended=len(attended),
                    **_score(latest),
                )
            )
    return findings


def rule_clinician_caused(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """A session the clinician cancelled less than 24 hours before it, or after its start.

    A clinician who did not show is recorded as a clinician cancel after the start time.
    """
    findings = []
    for appointment in _appointments(episode):
        if appointment.status != Status.CANCELLED_BY_CLINICIAN:
            continue
        cancelled_at = appointment.status_changed_at
        notice = appointment.starts_at - cancelled_at
        if cancelled_at > now or notice >= timedelta(hours=_p(policy).clinician_short_notice_hours):
            continue
        hours = round(notice.total_seconds() / 3600, 1)
        summary = (
            f"The clinician cancelled {hours} hours before the session."
            if notice > timedelta(0)
            else "The clinician cancelled after the session's start (missed it)."
        )
        findings.append(
            _finding(
                Rule.CLINICIAN_CAUSED,
                f"appointment:{appointment.pk}",
                summary,
                cancelled_at=cancelled_at.isoformat(),
                notice_hours=hours,
                threshold_hours=_p(policy).clinician_short_notice_hours,
                **_session(appointment),
            )
        )
    return findings


RULES: tuple[RuleFunction, ...] = (
    rule_safety,
    rule_low_alliance,
    rule_alliance_drop,
    rule_felt_off,
    rule_two_missed,
    rule_missed_after_strain,
    rule_dropout,
    rule_reliable_deterioration,
    rule_not_on_track,
    rule_clinician_caused,
)


def findings_for(
    episode: Episode, *, now: datetime, policy: AlliancePolicy | None = None
) -> list[Finding]:
    """Every rule's findings for one episode, whose history must be prefetched."""
    return [finding for rule in RULES for finding in rule(episode, now=now, policy=policy)]
