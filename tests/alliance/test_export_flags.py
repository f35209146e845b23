"""`manage.py export_flags` and the supervisor's download: every flag with its rule, client
reference (id and initials, never the name), clinician, status, evidence and history."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance import supervision
from alliance.models import RuptureFlag
from practice.models import AuditEvent, Client, Episode, Practice, User
from tests.alliance.supervision_helpers import make_flag
from tests.factories import ClientFactory, EpisodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def flag(client_record: Client, supervisor: User) -> RuptureFlag:
    flag = make_flag(
        client_record.episodes.get(),
        RuptureFlag.Rule.LOW_ALLIANCE,
        summary="Session feedback 24/40 is below the threshold of 36.",
    )
    supervision.flag_acknowledge(flag=flag, supervisor=supervisor, note="Seen.", now=timezone.now())
    supervision.flag_close_by_supervisor(
        flag=flag, supervisor=supervisor, note='=HYPERLINK("x")', now=timezone.now()
    )
    return flag


@pytest.fixture
def stranger_flag(practice: Practice, other_clinician: User) -> RuptureFlag:
    """A flag about a clinician the supervisor does not supervise."""
    client = ClientFactory.create(practice=practice, first_name="Zelda", last_name="Quist")
    return make_flag(EpisodeFactory.create(client=client, clinician=other_clinician))


@pytest.fixture
def elsewhere_flag(other_practice: Practice, outsider: User) -> RuptureFlag:
    client = ClientFactory.create(practice=other_practice)
    return make_flag(EpisodeFactory.create(client=client, clinician=outsider))


def _export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_flags", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_csv_has_each_flag_with_its_history_and_no_client_name(
    flag: RuptureFlag, client_record: Client, clinician: User
) -> None:
    text = _export("--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["flag_id"] == str(flag.pk)
    assert (row["rule"], row["status"], row["practice"]) == ("low_alliance", "closed", "lindenhof")
    assert (row["client_id"], row["client_initials"]) == (
        str(client_record.pk),
        client_record.initials,
    )
    assert row["clinician"] == clinician.get_full_name()
    assert json.loads(row["evidence"])["total"] == 24
    history = json.loads(row["history"])
    assert [e["action"] for e in history] == ["raised", "acknowledged", "status"]
    assert history[0]["by"] == "system"
    assert history[2]["to_status"] == "closed"
    assert client_record.last_name not in text
    assert client_record.full_name not in text


def test_the_json_holds_the_same_records(flag: RuptureFlag, client_record: Client) -> None:
    [record] = json.loads(_export("--format", "json"))
    assert record["flag_id"] == flag.pk
    assert record["client_initials"] == client_record.initials
    assert record["summary"] == "Session feedback 24/40 is below the threshold of 36."
    assert [e["action"] for e in record["history"]] == ["raised", "acknowledged", "status"]
    assert record["resolved_at"] is not None


def test_an_empty_export_is_valid(db: None) -> None:
    assert json.loads(_export("--format", "json")) == []
    assert _export("--format", "csv").startswith("flag_id,practice,rule")


def test_it_covers_every_practice_unless_one_is_named(
    flag: RuptureFlag, elsewhere_flag: RuptureFlag
) -> None:
    everything = {r["flag_id"] for r in json.loads(_export("--format", "json"))}
    assert everything == {flag.pk, elsewhere_flag.pk}
    ours = json.loads(_export("--format", "json", "--practice", "lindenhof"))
    assert [r["flag_id"] for r in ours] == [flag.pk]


def test_an_unknown_practice_or_format_is_a_clear_error(db: None) -> None:
    with pytest.raises(CommandError, match="No practice with the slug 'nowhere'"):
        _export("--practice", "nowhere")
    with pytest.raises(CommandError, match="invalid choice"):
        _export("--format", "xml")


def test_the_export_is_audited(flag: RuptureFlag) -> None:
    _export("--format", "csv", "--practice", "lindenhof")
    assert AuditEvent.objects.filter(action="flags.export.csv").count() == 1


def test_a_formula_in_a_cell_is_neutralised(client_record: Client, supervisor: User) -> None:
    make_flag(client_record.episodes.get(), summary="=cmd|' /C calc'!A0")
    [row] = list(csv.DictReader(io.StringIO(_export("--format", "csv"))))
    assert row["summary"] == "'=cmd|' /C calc'!A0"


# --- The supervisor's download -----------------------------------------------------------


def test_the_supervisor_downloads_csv_limited_to_supervisees(
    as_supervisor: HttpClient, flag: RuptureFlag, stranger_flag: RuptureFlag
) -> None:
    assert as_supervisor.get(reverse("supervision_flag_export")).status_code == 200
    reply = as_supervisor.get(reverse("supervision_flag_export_download", args=["csv"]))
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("text/csv")
    assert "attachment" in reply["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.content.decode())))
    assert [r["flag_id"] for r in rows] == [str(flag.pk)]
    assert "Zelda" not in reply.content.decode()
    assert AuditEvent.objects.filter(action="flags.export.csv").count() == 1


def test_the_supervisor_downloads_json(
    as_supervisor: HttpClient, flag: RuptureFlag, stranger_flag: RuptureFlag
) -> None:
    reply = as_supervisor.get(reverse("supervision_flag_export_download", args=["json"]))
    assert reply["Content-Type"] == "application/json"
    assert [r["flag_id"] for r in json.loads(reply.content)] == [flag.pk]


def test_the_download_and_the_command_share_one_format(
    as_supervisor: HttpClient, flag: RuptureFlag
) -> None:
    download = json.loads(
        as_supervisor.get(reverse("supervision_flag_export_download", args=["json"])).content
    )
    assert download == json.loads(_export("--format", "json"))


def test_an_unknown_format_is_404(as_supervisor: HttpClient, flag: RuptureFlag) -> None:
    reply = as_supervisor.get(reverse("supervision_flag_export_download", args=["xml"]))
    assert reply.status_code == 404


@pytest.mark.parametrize("persona", ["as_admin", "as_clinician", "as_other_clinician", "as_client"])
def test_only_supervisors_download(
    request: pytest.FixtureRequest, persona: str, flag: RuptureFlag
) -> None:
    http: HttpClient = request.getfixturevalue(persona)
    assert http.get(reverse("supervision_flag_export")).status_code == 404
    assert http.get(reverse("supervision_flag_export_download", args=["csv"])).status_code == 404


def test_an_outsider_supervisor_downloads_none_of_ours(
    as_outsider: HttpClient, flag: RuptureFlag
) -> None:
    reply = as_outsider.get(reverse("supervision_flag_export_download", args=["json"]))
    assert json.loads(reply.content) == []


def test_a_supervisees_closed_episode_leaves_the_download(
    as_supervisor: HttpClient, flag: RuptureFlag, client_record: Client
) -> None:
    """The supervisor's reach is their supervisees' open cases, as on every other page."""
    client_record.episodes.get().close(
        reason=Episode.CloseReason.COMPLETED, on=timezone.localdate()
    )
    reply = as_supervisor.get(reverse("supervision_flag_export_download", args=["json"]))
    assert json.loads(reply.content) == []
