"""Countertransference notes: only the author and the author's *current* supervisor read
them. Not a former supervisor, not an admin, not another clinician, not the next clinician
after a transfer, not the client, not an outsider: on the list page, the note page, the
supervision session page, and in the queryset itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import supervision
from alliance.models import CountertransferenceNote, SupervisionSession
from practice.models import AuditEvent, Client, Episode, Practice, User
from tests.conftest import login
from tests.factories import EpisodeFactory, PairingFactory, staff

pytestmark = pytest.mark.django_db

TEXT = "I felt irritated when she cancelled again, and wanted to rescue her."


@pytest.fixture
def note(clinician: User, client_record: Client) -> CountertransferenceNote:
    return supervision.countertransference_note_write(
        author=clinician, client=client_record, text=TEXT, now=timezone.now()
    )


@pytest.fixture
def former_supervisor(practice: Practice, clinician: User, supervisor: User) -> User:
    """Supervised the clinician before the current supervisor did."""
    user = staff(practice, "supervisor", email="fritz@lindenhof.example")
    today = timezone.localdate()
    PairingFactory.create(
        practice=practice,
        supervisor=user,
        supervisee=clinician,
        started_on=today - timedelta(days=400),
        ended_on=today - timedelta(days=90),  # the day the current pairing started
    )
    return user


@pytest.fixture
def next_clinician(
    practice: Practice, client_record: Client, clinician: User, note: CountertransferenceNote
) -> User:
    """The client was transferred: the first episode closed, a new one opened with her."""
    newcomer = staff(practice, "clinician", email="gina@lindenhof.example")
    first = client_record.episodes.get()
    first.close(reason=Episode.CloseReason.TRANSFERRED, on=timezone.localdate())
    EpisodeFactory.create(
        client=client_record,
        clinician=newcomer,
        transferred_from=first,
        opened_on=timezone.localdate(),
        handoff_note="Weekly, Tuesdays.",
    )
    return newcomer


READERS = ["clinician", "supervisor"]
NON_READERS = [
    "former_supervisor",
    "admin",
    "other_clinician",
    "next_clinician",
    "client_user",
    "outsider",
]


# --- The queryset ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", READERS)
def test_the_author_and_the_current_supervisor_can_read(
    request: pytest.FixtureRequest, persona: str, note: CountertransferenceNote
) -> None:
    user: User = request.getfixturevalue(persona)
    assert list(CountertransferenceNote.objects.readable_by(user)) == [note]


@pytest.mark.parametrize("persona", NON_READERS)
def test_nobody_else_can_read(
    request: pytest.FixtureRequest, persona: str, note: CountertransferenceNote
) -> None:
    user: User = request.getfixturevalue(persona)
    assert not CountertransferenceNote.objects.readable_by(user).exists()


def test_an_admin_who_is_not_the_supervisor_cannot_read_even_as_supervisor_elsewhere(
    practice: Practice, note: CountertransferenceNote, other_clinician: User
) -> None:
    boss = staff(practice, "admin", "supervisor")
    PairingFactory.create(practice=practice, supervisor=boss, supervisee=other_clinician)
    assert not CountertransferenceNote.objects.readable_by(boss).exists()


# --- The list page and the note page ----------------------------------------------------


@pytest.mark.parametrize("persona", READERS)
def test_readers_see_the_note_on_both_pages(
    request: pytest.FixtureRequest,
    persona: str,
    client_record: Client,
    note: CountertransferenceNote,
) -> None:
    http = login(request.getfixturevalue(persona))
    listing = http.get(reverse("countertransference_list", args=[client_record.pk]))
    assert listing.status_code == 200
    assert TEXT in listing.content.decode()
    detail = http.get(reverse("countertransference_detail", args=[note.pk]))
    assert detail.status_code == 200
    assert TEXT in detail.content.decode()
    assert AuditEvent.objects.filter(action="countertransference.view").count() == 1
    assert AuditEvent.objects.filter(action="countertransference.list").count() == 1


@pytest.mark.parametrize(
    "persona", ["former_supervisor", "admin", "other_clinician", "client_user", "outsider"]
)
def test_non_readers_get_404_on_both_pages(
    request: pytest.FixtureRequest,
    persona: str,
    client_record: Client,
    note: CountertransferenceNote,
) -> None:
    http = login(request.getfixturevalue(persona))
    assert http.get(reverse("countertransference_list", args=[client_record.pk])).status_code == 404
    assert http.get(reverse("countertransference_detail", args=[note.pk])).status_code == 404


def test_the_next_clinician_after_a_transfer_sees_only_their_own_notes(
    next_clinician: User, client_record: Client, note: CountertransferenceNote
) -> None:
    http = login(next_clinician)
    listing = http.get(reverse("countertransference_list", args=[client_record.pk]))
    # The client is in her caseload now, so she may write her own notes on this page…
    assert listing.status_code == 200
    assert TEXT not in listing.content.decode()
    assert "No notes you can read." in listing.content.decode()
    # …but never open the previous clinician's.
    assert http.get(reverse("countertransference_detail", args=[note.pk])).status_code == 404
    # She sees the past timeline, but not the notes.
    timeline = http.get(reverse("client_timeline", args=[client_record.pk]))
    assert timeline.status_code == 200
    assert TEXT not in timeline.content.decode()


def test_the_author_still_reads_their_notes_after_the_transfer(
    next_clinician: User, clinician: User, client_record: Client, note: CountertransferenceNote
) -> None:
    page = login(clinician).get(reverse("countertransference_list", args=[client_record.pk]))
    assert TEXT in page.content.decode()


# --- Writing -----------------------------------------------------------------------------


def test_the_clinician_writes_a_note_about_a_client_in_their_caseload(
    as_clinician: HttpClient, clinician: User, client_record: Client
) -> None:
    url = reverse("countertransference_list", args=[client_record.pk])
    assert "Write a note" in as_clinician.get(url).content.decode()
    reply = as_clinician.post(url, {"text": TEXT})
    assert reply.status_code == 302
    note = CountertransferenceNote.objects.get()
    assert (note.author, note.client, note.episode) == (
        clinician,
        client_record,
        client_record.episodes.get(),
    )


def test_an_empty_note_is_refused(as_clinician: HttpClient, client_record: Client) -> None:
    reply = as_clinician.post(
        reverse("countertransference_list", args=[client_record.pk]), {"text": "  "}
    )
    assert reply.status_code == 400
    assert not CountertransferenceNote.objects.exists()


def test_the_supervisor_reads_but_cannot_write(
    as_supervisor: HttpClient, client_record: Client, note: CountertransferenceNote
) -> None:
    url = reverse("countertransference_list", args=[client_record.pk])
    assert "Write a note" not in as_supervisor.get(url).content.decode()
    assert as_supervisor.post(url, {"text": "Mine"}).status_code == 403
    assert CountertransferenceNote.objects.count() == 1


@pytest.mark.parametrize("persona", ["as_admin", "as_other_clinician", "as_outsider", "as_client"])
def test_nobody_else_writes_about_the_client(
    request: pytest.FixtureRequest, persona: str, client_record: Client
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    reply = http.post(reverse("countertransference_list", args=[client_record.pk]), {"text": "x"})
    assert reply.status_code == 404
    assert not CountertransferenceNote.objects.exists()


# --- In the supervision session ----------------------------------------------------------


def test_the_current_supervisor_reads_the_notes_in_the_supervision_session(
    as_supervisor: HttpClient, supervisor: User, clinician: User, note: CountertransferenceNote
) -> None:
    session = supervision.supervision_session_create(
        supervisor=supervisor,
        supervisee=clinician,
        scheduled_for=timezone.now() + timedelta(days=2),
        now=timezone.now(),
    )
    page = as_supervisor.get(reverse("supervision_session_detail", args=[session.pk]))
    assert TEXT in page.content.decode()


def test_a_former_supervisor_no_longer_reads_them_in_an_old_session(
    former_supervisor: User, clinician: User, practice: Practice, note: CountertransferenceNote
) -> None:
    old = SupervisionSession.objects.create(
        practice=practice,
        supervisor=former_supervisor,
        supervisee=clinician,
        scheduled_for=timezone.now() - timedelta(days=120),
        attendance=SupervisionSession.Attendance.ATTENDED,
    )
    page = login(former_supervisor).get(reverse("supervision_session_detail", args=[old.pk]))
    assert page.status_code == 200  # their own record of the session…
    assert TEXT not in page.content.decode()  # …without the notes
