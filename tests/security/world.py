"""One practice with a bit of everything, for the security tests: every named URL that takes
an id gets a real one, and every persona has something to see (or to be refused)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from alliance import supervision
from alliance.measures import measure_link_token
from alliance.models import (
    AgendaItem,
    CountertransferenceNote,
    FollowUp,
    Instrument,
    MeasureRequest,
    OutreachAttempt,
    RepairAction,
    RepairPlanRequest,
    Response,
    RuptureFlag,
    SupervisionSession,
)
from practice.models import (
    Client,
    Episode,
    ImportRun,
    Invitation,
    Membership,
    Practice,
    SupervisionPairing,
    User,
)
from practice.services import invitation_create, invitation_token
from scheduling.links import client_link_token
from scheduling.models import Appointment, CalendarFeed, ShortLink, Status, TimeOff, WorkloadAlert
from tests.alliance.helpers import feedback_answers
from tests.alliance.supervision_helpers import make_alert, make_flag
from tests.alliance.test_rules import respond
from tests.factories import ClientFactory, EpisodeFactory, PairingFactory, UserFactory, book, staff


@dataclass
class World:
    practice: Practice
    admin: User
    clinician: User
    other_clinician: User
    supervisor: User
    client_user: User
    outsider: User
    client: Client
    episode: Episode
    waitlisted: Client
    upcoming: Appointment
    past: Appointment
    response: Response
    flag: RuptureFlag
    repair: RepairAction
    outreach: OutreachAttempt
    plan_request: RepairPlanRequest
    pairing: SupervisionPairing
    session: SupervisionSession
    agenda_item: AgendaItem
    follow_up: FollowUp
    note: CountertransferenceNote
    import_run: ImportRun
    alert: WorkloadAlert
    invitation: Invitation
    time_off: TimeOff
    feed: CalendarFeed
    short_link: ShortLink
    measure_request: MeasureRequest
    feedback: Instrument

    @property
    def personas(self) -> dict[str, User | None]:
        return {
            "admin": self.admin,
            "clinician": self.clinician,
            "other_clinician": self.other_clinician,
            "supervisor": self.supervisor,
            "client": self.client_user,
            "outsider": self.outsider,
            "anonymous": None,
        }


def build_world() -> World:
    now = timezone.now()
    practice = Practice.objects.create(name="Lindenhof", slug="lindenhof", timezone="Europe/Berlin")
    other_practice = Practice.objects.create(
        name="Elsewhere", slug="elsewhere", timezone="Europe/Berlin"
    )
    admin = staff(practice, "admin", email="alice@lindenhof.example")
    clinician = staff(practice, "clinician", email="bob@lindenhof.example")
    other_clinician = staff(practice, "clinician", email="carol@lindenhof.example")
    supervisor = staff(practice, "supervisor", email="dora@lindenhof.example")
    pairing = PairingFactory.create(practice=practice, supervisor=supervisor, supervisee=clinician)
    outsider = staff(
        other_practice, "admin", "clinician", "supervisor", email="mallory@else.example"
    )
    client_user = UserFactory.create(email="erin@example.org")
    client = ClientFactory.create(practice=practice, user=client_user)
    episode = EpisodeFactory.create(client=client, clinician=clinician)
    waitlisted = ClientFactory.create(practice=practice, status=Client.Status.WAITLIST)

    tomorrow = (now + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    upcoming = book(clinician, client, tomorrow, status=Status.SCHEDULED)
    past = book(
        clinician,
        client,
        now - timedelta(days=2),
        status=Status.ATTENDED,
        status_changed_at=now - timedelta(days=2) + timedelta(minutes=55),
    )
    response = respond(
        episode, "session-feedback", feedback_answers(22), now - timedelta(days=2), past
    )
    feedback = response.instrument

    flag = make_flag(episode, RuptureFlag.Rule.LOW_ALLIANCE)
    repair = RepairAction.objects.create(
        flag=flag,
        by=clinician,
        performed_at=now - timedelta(days=1),
        appointment=past,
        strategy=RepairAction.Strategy.INVITE_EXPLORATION,
        description="Asked what felt off last time.",
        client_response="Said the homework felt like a test.",
    )
    outreach = OutreachAttempt.objects.create(
        episode=episode,
        flag=flag,
        by=clinician,
        attempted_at=now - timedelta(hours=5),
        channel=OutreachAttempt.Channel.PHONE,
        outcome=OutreachAttempt.Outcome.VOICEMAIL,
    )
    plan_request = supervision.repair_plan_request(
        flag=flag, supervisor=supervisor, note="How will you repair?", now=now
    )
    session = supervision.supervision_session_create(
        supervisor=supervisor, supervisee=clinician, scheduled_for=now + timedelta(days=3), now=now
    )
    agenda_item = supervision.flag_add_to_agenda(flag=flag, supervisor=supervisor, now=now)
    follow_up = supervision.follow_up_add(
        session=session,
        supervisor=supervisor,
        description="Bring a recording.",
        owner=clinician,
        due_by=(now + timedelta(days=10)).date(),
    )
    note = supervision.countertransference_note_write(
        author=clinician, client=client, text="I wanted to rescue her.", now=now
    )
    import_run = ImportRun.objects.create(
        practice=practice,
        started_by=admin,
        files={},
        state=ImportRun.State.QUEUED,
    )
    alert = make_alert(clinician)
    invitation = invitation_create(
        practice=practice, invited_by=admin, email="newcomer@example.org", roles=("clinician",)
    )
    time_off = TimeOff.objects.create(
        clinician=clinician,
        starts_at=now + timedelta(days=20),
        ends_at=now + timedelta(days=21),
        reason="Conference",
    )
    feed = CalendarFeed.objects.create(clinician=clinician)
    short_link = ShortLink.objects.create(
        code="abc123",
        target=f"/c/confirm/{client_link_token(upcoming, 'confirm')}/",
        expires_at=now + timedelta(days=1),
    )
    measure_request = MeasureRequest.objects.create(
        purpose=MeasureRequest.Purpose.FEEDBACK,
        instrument=feedback,
        client=client,
        episode=episode,
        appointment=past,
        channel="email",
        state=MeasureRequest.State.SENT,
        due_at=now - timedelta(hours=1),
        expires_at=now + timedelta(days=2),
        sent_at=now - timedelta(hours=1),
    )
    assert Membership.objects.filter(practice=practice).count() == 4
    return World(
        practice=practice,
        admin=admin,
        clinician=clinician,
        other_clinician=other_clinician,
        supervisor=supervisor,
        client_user=client_user,
        outsider=outsider,
        client=client,
        episode=episode,
        waitlisted=waitlisted,
        upcoming=upcoming,
        past=past,
        response=response,
        flag=flag,
        repair=repair,
        outreach=outreach,
        plan_request=plan_request,
        pairing=pairing,
        session=session,
        agenda_item=agenda_item,
        follow_up=follow_up,
        note=note,
        import_run=import_run,
        alert=alert,
        invitation=invitation,
        time_off=time_off,
        feed=feed,
        short_link=short_link,
        measure_request=measure_request,
        feedback=feedback,
    )


def url_args(world: World) -> dict[str, list[object]]:
    """The arguments that make each named URL concrete, by URL name. A URL without
    parameters needs no entry."""
    w = world
    membership = Membership.objects.get(user=w.clinician)
    return {
        "invitation_accept": [invitation_token(w.invitation)],
        "member_edit": [membership.pk],
        "clinician_profile_edit": [membership.pk],
        "invitation_resend": [w.invitation.pk],
        "invitation_revoke": [w.invitation.pk],
        "client_detail": [w.client.pk],
        "client_edit": [w.client.pk],
        "client_invite": [w.client.pk],
        "episode_open": [w.client.pk],
        "episode_stage": [w.episode.pk],
        "episode_close": [w.episode.pk],
        "pairing_end": [w.pairing.pk],
        # scheduling
        "appointment_detail": [w.upcoming.pk],
        "appointment_reschedule": [w.upcoming.pk],
        "appointment_cancel": [w.upcoming.pk],
        "appointment_attendance": [w.past.pk],
        "time_off_delete": [w.time_off.pk],
        "calendar_feed_ics": [w.feed.token],
        "client_link": ["confirm", client_link_token(w.upcoming, "confirm")],
        "portal_appointment_action": [w.upcoming.pk, "confirm"],
        "short_link": [w.short_link.code],
        "noshow_review_action": [w.past.pk],
        # alliance
        "client_timeline": [w.client.pk],
        "response_detail": [w.response.pk],
        "flag_detail": [w.flag.pk],
        "flag_transition": [w.flag.pk],
        "repair_action_new": [w.flag.pk],
        "rupture_log_new": [w.episode.pk],
        "outreach": [w.episode.pk],
        "ending_plan": [w.episode.pk],
        "termination_offer": [w.episode.pk],
        "ending_close": [w.episode.pk],
        "measurement_plan_edit": [w.episode.pk],
        "in_session_start": [w.past.pk],
        "in_session_done": [w.past.pk],
        "in_session_form": [w.past.pk, w.feedback.pk],
        "measure_link": [measure_link_token(w.measure_request)],
        # supervision
        "supervision_flag_acknowledge": [w.flag.pk],
        "supervision_flag_agenda": [w.flag.pk],
        "supervision_repair_plan_request": [w.flag.pk],
        "supervision_flag_close": [w.flag.pk],
        "supervision_workload_agenda": [w.alert.pk],
        "supervision_session_detail": [w.session.pk],
        "supervision_session_record": [w.session.pk],
        "supervision_topic_add": [w.session.pk],
        "supervision_follow_up_new": [w.session.pk],
        "supervision_agenda_decide": [w.agenda_item.pk],
        "supervision_follow_up_done": [w.follow_up.pk],
        "supervision_flag_export_download": ["csv"],
        "repair_plan_answer": [w.plan_request.pk],
        "countertransference_list": [w.client.pk],
        "countertransference_detail": [w.note.pk],
        # caseload
        "waitlist_client": [w.waitlisted.pk],
        "client_assign": [w.waitlisted.pk],
        "episode_transfer": [w.episode.pk],
        "episode_transferred": [w.episode.pk],
        # imports
        "import_detail": [w.import_run.pk],
        "import_status": [w.import_run.pk],
    }
