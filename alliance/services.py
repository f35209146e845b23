"""Alliance workflows: responses, the rupture and repair log, outreach, and endings.

Views, forms and tasks call these. Each runs in one transaction, so a refused step changes
nothing, and writes the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from alliance.flags import flags_raise_for_episode
from alliance.measures import measure_link_read
from alliance.models import (
    AlliancePolicy,
    EpisodeEnding,
    FlagEvent,
    Instrument,
    MeasurementPlan,
    MeasureRequest,
    OutreachAttempt,
    RepairAction,
    Response,
    RuptureFlag,
)
from alliance.scoring import score
from practice.models import Episode, Practice, User
from practice.services import audit_record
from scheduling.models import Appointment
from scheduling.services import Slot, appointment_book

Status = RuptureFlag.Status


# --- Responses ---------------------------------------------------------------------------


@transaction.atomic
def response_record(
    *,
    instrument: Instrument,
    answers: Mapping[str, object],
    episode: Episode,
    appointment: Appointment | None,
    via: str,
    now: datetime,
    request: MeasureRequest | None = None,
    given_by: User | None = None,
) -> Response:
    """Score and store one completed questionnaire, then run the rules on its episode at
    once, so that a safety answer alerts the clinician and supervisor without waiting for
    the sweep. An incomplete or invalid form raises ValidationError and stores nothing."""
    if not instrument.active:
        raise ValidationError("This questionnaire is no longer in use.")
    if instrument.practice_id not in (None, episode.client.practice_id):
        raise ValidationError("This questionnaire belongs to another practice.")
    if appointment is not None and appointment.episode_id != episode.pk:
        raise ValidationError("That session belongs to another episode.")
    result = score(instrument, answers)
    try:
        with transaction.atomic():
            response = Response.objects.create(
                instrument=instrument,
                instrument_version=instrument.version,
                client=episode.client,
                episode=episode,
                appointment=appointment,
                answers=result.answers,
                total=result.total,
                subscales=result.subscales,
                band=result.band,
                safety_triggered=result.safety_triggered,
                completed_at=now,
                collected_via=via,
                request=request,
                given_by=given_by,
                free_text=next((v for v in result.answers.values() if isinstance(v, str)), ""),
            )
    except IntegrityError as exc:
        # The one-to-one on request: a second answer to the same link.
        raise ValidationError("This questionnaire was already answered.") from exc
    audit_record(
        actor=given_by,
        action="response.record",
        obj=response,
        practice=episode.client.practice,
    )
    flags_raise_for_episode(episode.pk, now=now)
    return response


@transaction.atomic
def measure_link_answer(
    *, token: str, answers: Mapping[str, object], now: datetime, via: str = Response.Via.LINK
) -> Response:
    """Answer a measure link. The request row is locked, so two tabs submitting the same
    link at once give one response and one "already answered"."""
    request = measure_link_read(token, now=now, for_update=True)
    instrument = Instrument.objects.with_scoring_rules().get(pk=request.instrument_id)
    return response_record(
        instrument=instrument,
        answers=answers,
        episode=request.episode,
        appointment=request.appointment,
        via=via,
        now=now,
        request=request,
    )


@transaction.atomic
def response_record_in_session(
    *,
    instrument: Instrument,
    answers: Mapping[str, object],
    appointment: Appointment,
    clinician: User,
    now: datetime,
) -> Response:
    """A measure the client filled in on the clinician's screen. A link sent for the same
    session and questionnaire is used up by it, so the client is not asked twice."""
    request = (
        MeasureRequest.objects.select_for_update(of=("self",))
        .filter(appointment=appointment, instrument=instrument, response__isnull=True)
        .first()
    )
    if request is not None and request.state in (
        MeasureRequest.State.PENDING,
        MeasureRequest.State.SENDING,
    ):
        # Not sent yet: it never needs to be.
        MeasureRequest.objects.filter(pk=request.pk, state=MeasureRequest.State.PENDING).update(
            state=MeasureRequest.State.SKIPPED, detail="answered in session"
        )
    return response_record(
        instrument=instrument,
        answers=answers,
        episode=appointment.episode,
        appointment=appointment,
        via=Response.Via.IN_SESSION,
        now=now,
        request=request,
        given_by=clinician,
    )


@transaction.atomic
def measurement_plan_update(
    *,
    episode: Episode,
    actor: User,
    outcome_instrument: Instrument | None,
    outcome_every_n_sessions: int,
    session_feedback: bool,
) -> MeasurementPlan:
    if outcome_instrument is not None and outcome_instrument.kind != Instrument.Kind.OUTCOME:
        raise ValidationError({"outcome_instrument": "Choose an outcome measure."})
    if outcome_every_n_sessions < 1:
        raise ValidationError({"outcome_every_n_sessions": "Use 1 for every session, or more."})
    plan, _ = MeasurementPlan.objects.update_or_create(
        episode=episode,
        defaults={
            "outcome_instrument": outcome_instrument,
            "outcome_every_n_sessions": outcome_every_n_sessions,
            "session_feedback": session_feedback,
        },
    )
    audit_record(
        actor=actor, action="measurement_plan.update", obj=plan, practice=episode.client.practice
    )
    return plan


def measurement_plan_for(episode: Episode) -> MeasurementPlan:
    """The episode's plan, or the default one (unsaved): PHQ-9 before every session."""
    plan = (
        MeasurementPlan.objects.filter(episode=episode).select_related("outcome_instrument").first()
    )
    if plan is not None:
        return plan
    default = (
        Instrument.objects.shipped().active().filter(code="phq-9").order_by("-version").first()
    )
    return MeasurementPlan(episode=episode, outcome_instrument=default)


# --- Ruptures and repairs ----------------------------------------------------------------


@transaction.atomic
def rupture_log(
    *,
    episode: Episode,
    clinician: User,
    kind: str,
    marker: str,
    appointment: Appointment | None,
    note: str,
    now: datetime,
) -> RuptureFlag:
    """A rupture the clinician noticed, in Safran and Muran's terms."""
    errors: dict[str, str] = {}
    if kind not in RuptureFlag.Kind.values:
        errors["kind"] = "Choose withdrawal or confrontation."
    if marker not in RuptureFlag.Marker.values:
        errors["marker"] = "Choose the marker you saw."
    elif kind == RuptureFlag.Kind.WITHDRAWAL and marker not in RuptureFlag.WITHDRAWAL_MARKERS:
        errors["marker"] = "That is a confrontation marker; choose a withdrawal marker."
    elif kind == RuptureFlag.Kind.CONFRONTATION and marker in RuptureFlag.WITHDRAWAL_MARKERS:
        errors["marker"] = "That is a withdrawal marker; choose a confrontation marker."
    if appointment is not None and appointment.episode_id != episode.pk:
        errors["appointment"] = "That session belongs to another episode."
    if errors:
        raise ValidationError(errors)
    flag = RuptureFlag.objects.create(
        practice=episode.client.practice,
        episode=episode,
        client=episode.client,
        clinician=episode.clinician,
        rule=RuptureFlag.Rule.LOGGED,
        severity=RuptureFlag.SEVERITY[RuptureFlag.Rule.LOGGED],
        # Each logged rupture is its own event: two logged in one moment are two flags.
        trigger_key=f"logged:{episode.pk}:{uuid.uuid4().hex}",
        evidence={
            "summary": f"{RuptureFlag.Kind(kind).label} rupture logged by the clinician.",
            "appointment_id": appointment.pk if appointment else None,
            "starts_at": appointment.starts_at.isoformat() if appointment else None,
        },
        raised_at=now,
        kind=kind,
        marker=marker,
        appointment=appointment,
        note=note,
        logged_by=clinician,
    )
    FlagEvent.objects.create(
        flag=flag, at=now, by=clinician, action=FlagEvent.Action.RAISED, to_status="open", note=note
    )
    audit_record(actor=clinician, action="rupture.log", obj=flag, practice=flag.practice)
    return flag


def _locked(flag: RuptureFlag) -> RuptureFlag:
    return RuptureFlag.objects.select_for_update().get(pk=flag.pk)


@transaction.atomic
def flag_transition(
    *, flag: RuptureFlag, to_status: str, note: str, actor: User, now: datetime
) -> RuptureFlag:
    """Move a flag along its lifecycle. Every step needs a note, which the history keeps."""
    flag = _locked(flag)
    if to_status not in flag.allowed_transitions():
        raise ValidationError(
            {
                "to_status": f"A flag that is {flag.get_status_display().lower()} cannot become "
                f"{Status(to_status).label.lower() if to_status in Status.values else to_status}."
            }
        )
    if not note.strip():
        raise ValidationError({"note": "Say why, in a few words: the history keeps it."})
    from_status = flag.status
    flag.move_to(to_status, at=now)
    FlagEvent.objects.create(
        flag=flag,
        at=now,
        by=actor,
        action=FlagEvent.Action.STATUS,
        from_status=from_status,
        to_status=to_status,
        note=note.strip(),
    )
    audit_record(actor=actor, action=f"flag.{to_status}", obj=flag, practice=flag.practice)
    return flag


@transaction.atomic
def repair_action_log(
    *,
    flag: RuptureFlag,
    actor: User,
    strategy: str,
    description: str,
    client_response: str,
    performed_at: datetime,
    appointment: Appointment | None,
    now: datetime,
) -> RepairAction:
    """Record a 3RS repair step. An open flag moves to "in repair" with it."""
    flag = _locked(flag)
    errors: dict[str, str] = {}
    if strategy not in RepairAction.Strategy.values:
        errors["strategy"] = "Choose one of the six strategies."
    if not description.strip():
        errors["description"] = "Say what you said or did."
    if not client_response.strip():
        errors["client_response"] = "Say how the client responded, even if it was unclear."
    if performed_at > now + timedelta(minutes=5):
        errors["performed_at"] = "A repair cannot be logged for a time still ahead."
    if appointment is not None and appointment.episode_id != flag.episode_id:
        errors["appointment"] = "That session belongs to another episode."
    if not flag.is_open:
        errors["__all__"] = "This flag is finished. Reopen it first to log more repair work."
    if errors:
        raise ValidationError(errors)
    action = RepairAction.objects.create(
        flag=flag,
        by=actor,
        performed_at=performed_at,
        appointment=appointment,
        strategy=strategy,
        description=description.strip(),
        client_response=client_response.strip(),
        created_at=now,
    )
    FlagEvent.objects.create(
        flag=flag,
        at=now,
        by=actor,
        action=FlagEvent.Action.REPAIR,
        note=f"{action.get_strategy_display()}: {action.description}",
    )
    if flag.status == Status.OPEN:
        flag.move_to(Status.IN_REPAIR, at=now)
        FlagEvent.objects.create(
            flag=flag,
            at=now,
            by=actor,
            action=FlagEvent.Action.STATUS,
            from_status=Status.OPEN,
            to_status=Status.IN_REPAIR,
            note="Repair begun.",
        )
    audit_record(actor=actor, action="repair.log", obj=action, practice=flag.practice)
    return action


@transaction.atomic
def flags_follow_transfer(*, previous: Episode, episode: Episode, actor: User) -> list[int]:
    """Open flags move with a transferred episode, so the new clinician can repair them and
    the supervisor's queue and the caseload board count them where the work now is. The
    history says who moved them and to whom. Returns the moved flags' ids."""
    flags = RuptureFlag.objects.open().filter(episode=previous).select_for_update()
    ids = list(flags.values_list("pk", flat=True))
    if not ids:
        return []
    RuptureFlag.objects.filter(pk__in=ids).update(episode=episode, clinician=episode.clinician)
    name = episode.clinician.get_full_name() or episode.clinician.email
    FlagEvent.objects.bulk_create(
        FlagEvent(
            flag_id=pk,
            by=actor,
            action=FlagEvent.Action.NOTE,
            note=f"Moved with the transferred episode to {name}.",
        )
        for pk in ids
    )
    return ids


# --- Outreach ----------------------------------------------------------------------------


def outreach_allowance(episode: Episode, *, now: datetime) -> dict[str, Any]:
    """What the outreach page explains: attempts made, the limit, and when the next may be."""
    practice = episode.client.practice
    policy = AlliancePolicy.for_practice(practice)
    attempts = list(OutreachAttempt.objects.for_episode(episode).order_by("attempted_at"))
    next_at = (
        attempts[-1].attempted_at + timedelta(days=policy.outreach_spacing_days)
        if attempts
        else None
    )
    made = len(attempts)
    return {
        "made": made,
        "limit": practice.outreach_limit,
        "spacing_days": policy.outreach_spacing_days,
        "remaining": max(0, practice.outreach_limit - made),
        "next_at": next_at,
        "may_try_now": made < practice.outreach_limit and (next_at is None or next_at <= now),
        "exhausted": made >= practice.outreach_limit,
    }


@transaction.atomic
def outreach_log(
    *,
    episode: Episode,
    actor: User,
    channel: str,
    outcome: str,
    note: str,
    attempted_at: datetime,
    now: datetime,
) -> OutreachAttempt:
    """Log one outreach attempt, within the practice's limit and spacing.

    The episode row is locked first, so two attempts logged at once cannot both squeeze
    under the limit.
    """
    episode = (
        Episode.objects.select_for_update().select_related("client__practice").get(pk=episode.pk)
    )
    if not episode.is_open:
        raise ValidationError("This episode is closed; outreach is over.")
    allowance = outreach_allowance(episode, now=now)
    errors: dict[str, str] = {}
    if channel not in OutreachAttempt.Channel.values:
        errors["channel"] = "Choose how you reached out."
    if outcome not in OutreachAttempt.Outcome.values:
        errors["outcome"] = "Choose what came of it."
    if attempted_at > now + timedelta(minutes=5):
        errors["attempted_at"] = "An attempt cannot be logged for a time still ahead."
    if allowance["exhausted"]:
        errors["__all__"] = (
            f"The practice allows {allowance['limit']} outreach "
            f"attempt{pluralize(allowance['limit'])} per episode, and "
            f"{allowance['made']} {'has' if allowance['made'] == 1 else 'have'} been made. "
            "Offer a termination session or close the episode as dropped out."
        )
    elif allowance["next_at"] is not None and attempted_at < allowance["next_at"]:
        # In the practice's time, which is the clinician's, not the server's UTC.
        next_at = timezone.localtime(allowance["next_at"], episode.client.practice.tz)
        errors["attempted_at"] = (
            f"Attempts are spaced at least {allowance['spacing_days']} days apart; the next "
            f"may be made from {next_at:%d %b %Y %H:%M}."
        )
    if errors:
        raise ValidationError(errors)
    flag = (
        RuptureFlag.objects.open()
        .filter(episode=episode, rule=RuptureFlag.Rule.DROPOUT)
        .order_by("-raised_at")
        .first()
    )
    attempt = OutreachAttempt.objects.create(
        episode=episode,
        flag=flag,
        by=actor,
        attempted_at=attempted_at,
        channel=channel,
        outcome=outcome,
        note=note.strip(),
    )
    if flag is not None:
        FlagEvent.objects.create(
            flag=flag,
            at=now,
            by=actor,
            action=FlagEvent.Action.NOTE,
            note=f"Outreach by {attempt.get_channel_display().lower()}: "
            f"{attempt.get_outcome_display().lower()}.",
        )
    audit_record(actor=actor, action="outreach.log", obj=attempt, practice=episode.client.practice)
    return attempt


# --- Endings -----------------------------------------------------------------------------


def _scores(episode: Episode, *, last: bool) -> dict[str, Any]:
    """The first (or last) total per instrument in the episode, for the closing review."""
    found: dict[str, Any] = {}
    responses = Response.objects.for_episode(episode).select_related("instrument")
    for response in responses.order_by(
        *(("-completed_at", "-pk") if last else ("completed_at", "pk"))
    ):
        code = response.instrument.code
        if code not in found:
            found[code] = {
                "name": response.instrument.name,
                "total": response.total,
                "band": response.band,
                "completed_at": response.completed_at.isoformat(),
            }
    return found


def _ending_planned(
    episode: Episode, *, kind: str, last_session: Appointment, actor: User, note: str
) -> EpisodeEnding:
    """Record the planned last session and move the episode into its ending stage."""
    ending, _ = EpisodeEnding.objects.update_or_create(
        episode=episode,
        defaults={
            "kind": kind,
            "last_session": last_session,
            "planned_by": actor,
            "note": note.strip(),
        },
    )
    episode.move_to_stage(Episode.Stage.ENDING)
    return ending


@transaction.atomic
def episode_ending_plan(
    *, episode: Episode, actor: User, last_session: Appointment, note: str
) -> EpisodeEnding:
    """Move the episode into its ending stage with a planned last session."""
    episode = Episode.objects.select_for_update().get(pk=episode.pk)
    if not episode.is_open:
        raise ValidationError("This episode is already closed.")
    if (
        last_session.episode_id != episode.pk
        or not last_session.is_open
        or last_session.starts_at <= timezone.now()
    ):
        raise ValidationError({"last_session": "Choose an upcoming session of this episode."})
    ending = _ending_planned(
        episode, kind=EpisodeEnding.Kind.PLANNED, last_session=last_session, actor=actor, note=note
    )
    audit_record(
        actor=actor, action="episode.ending_planned", obj=episode, practice=episode.client.practice
    )
    return ending


@transaction.atomic
def termination_session_offer(
    *,
    episode: Episode,
    actor: User,
    starts_at: datetime,
    ends_at: datetime,
    location: str,
    video_url: str,
    note: str,
    now: datetime,
) -> EpisodeEnding:
    """After outreach, book a fee-waived termination session and plan the ending around it."""
    episode = (
        Episode.objects.select_for_update().select_related("client", "clinician").get(pk=episode.pk)
    )
    if not episode.is_open:
        raise ValidationError("This episode is already closed.")
    if not OutreachAttempt.objects.for_episode(episode).exists():
        raise ValidationError(
            "A fee-waived termination session is offered after outreach. Log the outreach first."
        )
    if starts_at <= now:
        raise ValidationError({"starts_at": "Choose a time still ahead."})
    appointment = appointment_book(
        clinician=episode.clinician,
        client=episode.client,
        slot=Slot(
            starts_at=starts_at,
            ends_at=ends_at,
            kind="termination",
            location=location,
            video_url=video_url,
            fee_waived=True,
        ),
        actor=actor,
    )
    ending = _ending_planned(
        episode,
        kind=EpisodeEnding.Kind.TERMINATION_SESSION,
        last_session=appointment,
        actor=actor,
        note=note,
    )
    audit_record(
        actor=actor,
        action="episode.termination_offered",
        obj=episode,
        practice=episode.client.practice,
    )
    return ending


@transaction.atomic
def episode_close_with_review(
    *,
    episode: Episode,
    actor: User,
    kind: str,
    goals_and_progress: str,
    what_helps_on_return: str,
    note: str,
    closed_on: date,
    now: datetime,
) -> EpisodeEnding:
    """Close the episode with its closing review: goals and progress, the first and last
    scores, and what helps if the client returns. How it ended is recorded as it was: with a
    last session, without one, by voicemail only, or as a dropout after outreach."""
    episode = (
        Episode.objects.select_for_update().select_related("client__practice").get(pk=episode.pk)
    )
    errors: dict[str, str] = {}
    if not episode.is_open:
        raise ValidationError("This episode is already closed.")
    if kind not in EpisodeEnding.Kind.values:
        errors["kind"] = "Choose how the episode ended."
    existing = EpisodeEnding.objects.filter(episode=episode).first()
    last_session = existing.last_session if existing else None
    needs_last_session = kind in (
        EpisodeEnding.Kind.PLANNED,
        EpisodeEnding.Kind.TERMINATION_SESSION,
    )
    if needs_last_session and (last_session is None or last_session.status != "attended"):
        errors["kind"] = (
            "No last session was attended. Choose “closed without a last session”, "
            "“voicemail only” or “dropped out”, or mark the last session attended first."
        )
    if kind == EpisodeEnding.Kind.DROPPED_OUT and not note.strip():
        errors["note"] = "Closing as dropped out needs a note."
    if not goals_and_progress.strip() and kind != EpisodeEnding.Kind.DROPPED_OUT:
        errors["goals_and_progress"] = "Summarise the goals and the progress made."
    if closed_on < episode.opened_on:
        errors["closed_on"] = "An episode cannot close before it opened."
    if errors:
        raise ValidationError(errors)
    ending, _ = EpisodeEnding.objects.update_or_create(
        episode=episode,
        defaults={
            "kind": kind,
            "last_session": last_session if needs_last_session else None,
            "planned_by": existing.planned_by if existing else actor,
            "goals_and_progress": goals_and_progress.strip(),
            "first_scores": _scores(episode, last=False),
            "last_scores": _scores(episode, last=True),
            "what_helps_on_return": what_helps_on_return.strip(),
            "note": note.strip() or (existing.note if existing else ""),
            "closed_at": now,
        },
    )
    # The episode's close reason stays coarse (dropped out after outreach, or completed);
    # the ending's kind keeps how it really ended, e.g. by voicemail only.
    reason = (
        Episode.CloseReason.DROPPED_OUT
        if kind == EpisodeEnding.Kind.DROPPED_OUT
        else Episode.CloseReason.COMPLETED
    )
    episode.close(reason=reason, on=closed_on)
    # Flags about a finished episode need no more attention; the history says why.
    for flag in RuptureFlag.objects.open().filter(episode=episode).select_for_update():
        from_status = flag.status
        flag.move_to(Status.CLOSED, at=now)
        FlagEvent.objects.create(
            flag=flag,
            at=now,
            by=actor,
            action=FlagEvent.Action.STATUS,
            from_status=from_status,
            to_status=Status.CLOSED,
            note=f"Episode closed ({ending.get_kind_display().lower()}).",
        )
    audit_record(
        actor=actor, action="episode.close_review", obj=episode, practice=episode.client.practice
    )
    return ending


# --- Practice policy ---------------------------------------------------------------------


@transaction.atomic
def alliance_policy_update(*, practice: Practice, actor: User, **values: Any) -> AlliancePolicy:
    policy, _ = AlliancePolicy.objects.get_or_create(practice=practice)
    for name, value in values.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    audit_record(actor=actor, action="alliance_policy.update", obj=policy, practice=practice)
    return policy
