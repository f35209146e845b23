"""Clinicians are reminded too: the daily agenda and the evening-before heads-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from smtplib import SMTPException
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from practice.models import Client, ClinicianProfile, Membership, Practice, User
from scheduling.agendas import agenda_send, agenda_sweep, heads_up_send, heads_up_sweep
from scheduling.models import ClinicianNotice, Kind, Status
from tests.factories import ClientFactory, EpisodeFactory, book

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NoticeKind = ClinicianNotice.Kind
# Monday 5 October 2026; the weekend before is Saturday 3 and Sunday 4 October.
MONDAY = date(2026, 10, 5)


@pytest.fixture(autouse=True)
def clock() -> Iterator[time_machine.Traveller]:
    # Sweeps take `now`; the sender's claim timestamp comes from the clock.
    with time_machine.travel(datetime(2026, 10, 3, 12, 0, tzinfo=BERLIN), tick=False) as t:
        yield t


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def profile_of(user: User) -> ClinicianProfile:
    return ClinicianProfile.objects.get(membership__user=user)


@pytest.fixture
def zora(practice: Practice, clinician: User) -> Client:
    record = ClientFactory.create(practice=practice, first_name="Zora", last_name="Quist")
    EpisodeFactory.create(client=record, clinician=clinician)
    return record


def sent() -> list[EmailMultiAlternatives]:
    return [m for m in mail.outbox if isinstance(m, EmailMultiAlternatives)]


def html_of(message: EmailMultiAlternatives) -> str:
    return str(message.alternatives[0][0])


def sweep_and_send_agendas(now: datetime) -> list[int]:
    ids = agenda_sweep(now=now)
    for notice_id in ids:
        agenda_send(notice_id=notice_id)
    return ids


# --- Daily agenda ------------------------------------------------------------------------


def test_the_agenda_waits_for_the_agenda_time(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(MONDAY, 10))

    assert agenda_sweep(now=at(MONDAY, 6, 59)) == []
    ids = agenda_sweep(now=at(MONDAY, 7, 0))

    notice = ClinicianNotice.objects.get(pk__in=ids)
    assert (notice.clinician, notice.kind, notice.for_date) == (
        clinician,
        NoticeKind.AGENDA,
        MONDAY,
    )
    assert notice.sent_at is None


def test_the_agenda_time_is_the_clinicians_choice(clinician: User, client_record: Client) -> None:
    profile = profile_of(clinician)
    profile.agenda_time = time(8, 30)
    profile.save()
    book(clinician, client_record, at(MONDAY, 10))

    assert agenda_sweep(now=at(MONDAY, 8, 29)) == []
    assert len(agenda_sweep(now=at(MONDAY, 8, 30))) == 1


def test_one_agenda_per_day_however_often_the_sweep_runs(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(MONDAY, 10))

    for minute in range(0, 60, 5):
        sweep_and_send_agendas(at(MONDAY, 7, minute))
    sweep_and_send_agendas(at(MONDAY, 18, 0))

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [clinician.email]
    assert ClinicianNotice.objects.count() == 1
    assert ClinicianNotice.objects.get().sent_at is not None


def test_an_unsent_notice_is_handed_out_again_until_it_is_sent(
    clinician: User, client_record: Client
) -> None:
    # The task for the first sweep was lost (Redis down): the next sweep offers it again.
    book(clinician, client_record, at(MONDAY, 10))
    first = agenda_sweep(now=at(MONDAY, 7, 0))
    assert agenda_sweep(now=at(MONDAY, 7, 1)) == first
    assert agenda_send(notice_id=first[0]) is True
    assert agenda_sweep(now=at(MONDAY, 7, 2)) == []


def test_the_agenda_follows_the_clinicians_time_zone(
    clinician: User, client_record: Client
) -> None:
    profile = profile_of(clinician)
    profile.timezone = "America/New_York"
    profile.save()
    book(clinician, client_record, at(MONDAY, 10, zone=NEW_YORK))

    # 07:00 in Berlin is 01:00 in New York: too early.
    assert agenda_sweep(now=at(MONDAY, 7, 0)) == []
    ids = sweep_and_send_agendas(at(MONDAY, 7, 0, zone=NEW_YORK))

    assert ClinicianNotice.objects.get(pk__in=ids).for_date == MONDAY
    body = mail.outbox[0].body
    assert "Monday 5 October 2026" in body
    assert "10:00–10:50" in body  # New York time, not Berlin's 16:00
    assert "America/New_York" in body


def test_a_sweep_that_was_down_sends_todays_agenda_not_yesterdays(
    practice: Practice, clinician: User, client_record: Client, zora: Client
) -> None:
    book(clinician, client_record, at(MONDAY, 10))
    book(clinician, zora, at(MONDAY + timedelta(days=1), 11))

    # Nothing ran on Monday; the first sweep is on Tuesday morning.
    sweep_and_send_agendas(at(MONDAY + timedelta(days=1), 7, 30))

    assert [n.for_date for n in ClinicianNotice.objects.all()] == [MONDAY + timedelta(days=1)]
    assert len(mail.outbox) == 1
    assert "Tuesday 6 October 2026" in mail.outbox[0].body
    assert "11:00–11:50" in mail.outbox[0].body


def test_a_free_day_sends_no_agenda(clinician: User, client_record: Client) -> None:
    cancelled = book(clinician, client_record, at(MONDAY, 10), status=Status.CANCELLED_BY_CLIENT)
    assert cancelled.pk
    assert agenda_sweep(now=at(MONDAY, 9, 0)) == []
    assert ClinicianNotice.objects.count() == 0


def test_inactive_clinicians_get_no_agenda(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(MONDAY, 10))
    Membership.objects.filter(user=clinician).update(is_active=False)
    assert agenda_sweep(now=at(MONDAY, 9, 0)) == []


def test_the_agenda_lists_the_day_and_flags_unconfirmed_sessions(
    practice: Practice, clinician: User, other_clinician: User, client_record: Client, zora: Client
) -> None:
    book(clinician, client_record, at(MONDAY, 9), status=Status.CONFIRMED)
    book(clinician, zora, at(MONDAY, 14), kind=Kind.INTAKE)
    book(clinician, zora, at(MONDAY, 16), status=Status.CANCELLED_BY_CLIENT)
    book(clinician, zora, at(MONDAY + timedelta(days=1), 9))
    carols = ClientFactory.create(practice=practice, first_name="Carl", last_name="Other")
    book(other_clinician, carols, at(MONDAY, 11))

    sweep_and_send_agendas(at(MONDAY, 7, 0))

    assert len(mail.outbox) == 2  # one each for Bob and Carol
    message = next(m for m in sent() if m.to == [clinician.email])
    assert message.subject == "Your agenda for Monday 5 October: 2 sessions"
    lines = [line for line in message.body.splitlines() if line.startswith("- ")]
    initials = client_record.initials
    assert lines == [
        f"- 09:00–09:50 · {initials} · Session",
        "- 14:00–14:50 · ZQ · Intake · not confirmed yet",
    ]
    assert "1 session not confirmed yet." in message.body
    html = html_of(message)
    assert "<strong>not confirmed yet</strong>" in html
    assert "http://testserver/calendar/day/?date=2026-10-05" in message.body
    assert "CO" not in "".join(lines)


def test_no_clinical_content_or_names_in_the_agenda(
    clinician: User, client_record: Client, zora: Client
) -> None:
    book(
        clinician,
        zora,
        at(MONDAY, 10),
        location="video",
        video_url="https://meet.example/zora-secret",
    )

    sweep_and_send_agendas(at(MONDAY, 7, 0))

    message = sent()[0]
    for text in (message.subject, message.body, html_of(message)):
        assert "Zora" not in text
        assert "Quist" not in text
        assert "meet.example" not in text
        assert "ZQ" in text or text == message.subject
    assert "Middle" not in message.body  # not even the episode's stage


def test_the_claim_prevents_a_second_send(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(MONDAY, 10))
    [notice_id] = agenda_sweep(now=at(MONDAY, 7, 0))

    assert agenda_send(notice_id=notice_id) is True
    assert agenda_send(notice_id=notice_id) is False
    assert len(mail.outbox) == 1


def test_a_worker_killed_mid_send_does_not_lose_the_days_agenda(
    clinician: User, client_record: Client, clock: time_machine.Traveller
) -> None:
    """A SIGKILL between claim and send leaves a claim without delivery: no `except` runs.
    Within 5 minutes it belongs to that worker; after that the sweep hands it out again."""
    book(clinician, client_record, at(MONDAY, 10))
    clock.move_to(at(MONDAY, 7, 0))
    [notice_id] = agenda_sweep(now=at(MONDAY, 7, 0))
    ClinicianNotice.objects.filter(pk=notice_id).update(sent_at=at(MONDAY, 7, 0))  # the claim
    assert agenda_sweep(now=at(MONDAY, 7, 4)) == []
    assert agenda_sweep(now=at(MONDAY, 7, 6)) == [notice_id]
    clock.move_to(at(MONDAY, 7, 6))
    assert agenda_send(notice_id=notice_id) is True
    assert len(sent()) == 1
    assert agenda_sweep(now=at(MONDAY, 7, 20)) == []
    assert agenda_send(notice_id=notice_id) is False


def test_a_failed_send_gives_the_claim_back(
    monkeypatch: pytest.MonkeyPatch, clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(MONDAY, 10))
    [notice_id] = agenda_sweep(now=at(MONDAY, 7, 0))

    def refuse(self: EmailMultiAlternatives, fail_silently: bool = False) -> int:
        raise SMTPException("451 try again later")

    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", refuse)
        with pytest.raises(SMTPException):
            agenda_send(notice_id=notice_id)

    assert ClinicianNotice.objects.get(pk=notice_id).sent_at is None
    # The retry (or the next sweep) sends it.
    assert agenda_sweep(now=at(MONDAY, 7, 5)) == [notice_id]
    assert agenda_send(notice_id=notice_id) is True
    assert len(mail.outbox) == 1


def test_the_agenda_sender_refuses_other_kinds(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(MONDAY - timedelta(days=1), 10))  # Sunday
    [notice_id] = heads_up_sweep(now=at(MONDAY - timedelta(days=2), 18, 0))
    assert agenda_send(notice_id=notice_id) is False
    assert heads_up_send(notice_id=notice_id) is True


# --- Evening-before heads-up -------------------------------------------------------------


SATURDAY, SUNDAY = MONDAY - timedelta(days=2), MONDAY - timedelta(days=1)


def test_a_sunday_session_brings_a_heads_up_on_saturday_evening(
    clinician: User, client_record: Client
) -> None:
    book(clinician, client_record, at(SUNDAY, 11))

    assert heads_up_sweep(now=at(SATURDAY, 17, 59)) == []
    ids = heads_up_sweep(now=at(SATURDAY, 18, 0))
    assert [heads_up_send(notice_id=n) for n in ids] == [True]

    notice = ClinicianNotice.objects.get(pk__in=ids)
    assert (notice.kind, notice.for_date) == (NoticeKind.HEADS_UP, SUNDAY)
    message = sent()[0]
    assert message.to == [clinician.email]
    assert message.subject == "Tomorrow, Sunday 4 October: 1 session outside your usual pattern"
    assert (
        f"- 11:00–11:50 · {client_record.initials} · Session: Sunday is a rest day" in message.body
    )
    assert "Sunday is a rest day" in html_of(message)
    assert client_record.last_name not in message.body + html_of(message)


def test_the_heads_up_goes_out_once(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(SUNDAY, 11))

    for hour, minute in [(18, 0), (18, 5), (21, 0), (23, 59)]:
        for notice_id in heads_up_sweep(now=at(SATURDAY, hour, minute)):
            heads_up_send(notice_id=notice_id)

    assert len(mail.outbox) == 1
    assert ClinicianNotice.objects.filter(kind=NoticeKind.HEADS_UP).count() == 1


def test_a_session_outside_working_hours_brings_a_heads_up(
    clinician: User, client_record: Client, zora: Client
) -> None:
    book(clinician, client_record, at(MONDAY + timedelta(days=1), 10))  # within hours
    book(clinician, zora, at(MONDAY + timedelta(days=1), 17, 30))

    ids = heads_up_sweep(now=at(MONDAY, 19, 0))
    assert heads_up_send(notice_id=ids[0]) is True

    body = sent()[0].body
    assert "Tuesday 6 October 2026" in body
    assert "- 17:30–18:20 · ZQ · Session: outside your working hours 09:00–17:00" in body
    assert "10:00" not in body  # the usual session is not mentioned


def test_a_day_off_from_the_working_pattern_brings_a_heads_up(
    clinician: User, client_record: Client
) -> None:
    profile = profile_of(clinician)
    profile.working_days = [1, 2, 3, 4]
    profile.save()
    friday = MONDAY + timedelta(days=4)
    book(clinician, client_record, at(friday, 10))

    [notice_id] = heads_up_sweep(now=at(friday - timedelta(days=1), 20, 0))
    heads_up_send(notice_id=notice_id)

    assert "Friday is not one of your working days" in sent()[0].body


def test_no_heads_up_for_a_normal_weekday_session(clinician: User, client_record: Client) -> None:
    book(clinician, client_record, at(MONDAY + timedelta(days=1), 10))
    assert heads_up_sweep(now=at(MONDAY, 18, 0)) == []
    assert heads_up_sweep(now=at(MONDAY, 23, 0)) == []
    assert ClinicianNotice.objects.count() == 0


def test_the_heads_up_is_in_the_clinicians_evening(clinician: User, client_record: Client) -> None:
    profile = profile_of(clinician)
    profile.timezone = "America/New_York"
    profile.save()
    book(clinician, client_record, at(SUNDAY, 11, zone=NEW_YORK))

    # 18:00 in Berlin is noon in New York.
    assert heads_up_sweep(now=at(SATURDAY, 18, 0)) == []
    [notice_id] = heads_up_sweep(now=at(SATURDAY, 18, 0, zone=NEW_YORK))
    heads_up_send(notice_id=notice_id)
    assert "- 11:00–11:50" in sent()[0].body


def test_the_heads_up_claim_prevents_a_second_send_and_a_cancelled_session_sends_nothing(
    clinician: User, client_record: Client
) -> None:
    session = book(clinician, client_record, at(SUNDAY, 11))
    [notice_id] = heads_up_sweep(now=at(SATURDAY, 18, 0))
    session.status = Status.CANCELLED_BY_CLIENT
    session.save()

    assert heads_up_send(notice_id=notice_id) is False
    assert heads_up_send(notice_id=notice_id) is False
    assert mail.outbox == []
    assert heads_up_sweep(now=at(SATURDAY, 19, 0)) == []
