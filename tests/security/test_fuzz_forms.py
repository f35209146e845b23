"""Fuzzing every form-handling view and the CSV import with hypothesis: no 500, and a
refused request writes nothing.

Each target is a URL, the persona allowed to use it, and its field names: those of the
form the page renders (parsed from its GET), plus any a POST-only view reads. Hypothesis
posts garbage under those names (text, huge strings, unicode, NUL bytes, numbers far out of
range, malformed dates, real and unreal ids). Each example runs in a savepoint that is
rolled back, so the examples do not see each other's writes.

Bounded: a few examples per target, so that the file runs in about a minute. Raise
FUZZ_EXAMPLES in the environment for a longer run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.measures import measure_link_token
from practice import imports
from practice.imports import ImportFailed, ImportInvalid
from scheduling.links import client_link_token
from tests.practice.import_helpers import APPOINTMENTS, CLIENTS, CLINICIANS, RESPONSES, csv_text
from tests.security.world import World, build_world, url_args

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- Garbage ---------------------------------------------------------------------------

BAD_DATES = [
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "0001-01-01",
    "9999-12-31",
    "99999-01-01",
    "2026-11-16T25:61",
    "2026-11-16 24:00",
    "16/11/2026",
    "-1",
    "1e309",
    "tomorrow",
    "2026-03-29 02:30",  # does not exist in Berlin
    "2026-10-25 02:30",  # exists twice in Berlin
]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["0", "-0", "-1", "1e309", "nan", "inf", "-inf", "0x10", "1_000", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.just("\x00"),
    st.text(max_size=10).map(lambda s: s + "\x00" + s),
    st.builds(lambda s, n: (s or "x") * n, st.text(max_size=3), st.integers(2_000, 60_000)),
    st.sampled_from(["<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "\u202e"]),
)


def values(ids: list[str]) -> st.SearchStrategy[str | list[str]]:
    one = st.one_of(TEXT, NUMBERS, st.sampled_from(BAD_DATES), st.sampled_from(ids))
    return st.one_of(one, st.lists(one, min_size=0, max_size=3))


# --- Targets ---------------------------------------------------------------------------

# url name -> (persona, method, extra field names a POST-only view reads)
TARGETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "appointment_new": ("clinician", "post", ()),
    "appointment_reschedule": ("clinician", "post", ()),
    "appointment_cancel": ("clinician", "post", ()),
    "appointment_attendance": ("clinician", "post", ("status",)),
    "time_off": ("clinician", "post", ()),
    "noshow_review_action": ("clinician", "post", ("attended",)),
    "calendar_feed_settings": ("clinician", "post", ("action",)),
    "calendar_week": ("clinician", "get", ("week", "clinician", "start")),
    "calendar_day": ("clinician", "get", ("day", "date", "clinician")),
    "client_new": ("admin", "post", ()),
    "client_edit": ("admin", "post", ()),
    "client_invite": ("admin", "post", ()),
    "episode_open": ("admin", "post", ()),
    "episode_stage": ("clinician", "post", ("stage",)),
    "episode_close": ("clinician", "post", ()),
    "member_invite": ("admin", "post", ()),
    "member_edit": ("admin", "post", ()),
    "clinician_profile_edit": ("admin", "post", ()),
    "pairing_new": ("admin", "post", ()),
    "pairing_end": ("admin", "post", ()),
    "alliance_policy_edit": ("admin", "post", ()),
    "measurement_plan_edit": ("clinician", "post", ()),
    "measure_link": ("anonymous", "post", ()),
    "client_link": ("anonymous", "post", ("message", "reason")),
    "invitation_accept": ("anonymous", "post", ()),
    "portal_appointment_action": ("client", "post", ("message", "reason")),
    "in_session_start": ("clinician", "get", ("instrument",)),
    "in_session_form": ("clinician", "post", ()),
    "repair_action_new": ("clinician", "post", ()),
    "rupture_log_new": ("clinician", "post", ()),
    "outreach": ("clinician", "post", ()),
    "flag_transition": ("clinician", "post", ("status", "to", "note")),
    "ending_plan": ("clinician", "post", ()),
    "termination_offer": ("clinician", "post", ()),
    "ending_close": ("clinician", "post", ()),
    "repair_plan_answer": ("clinician", "post", ()),
    "supervision_flag_acknowledge": ("supervisor", "post", ("note",)),
    "supervision_flag_agenda": ("supervisor", "post", ("topic",)),
    "supervision_repair_plan_request": ("supervisor", "post", ("note",)),
    "supervision_flag_close": ("supervisor", "post", ("note", "reason")),
    "supervision_workload_agenda": ("supervisor", "post", ("topic",)),
    "supervision_session_new": ("supervisor", "post", ()),
    "supervision_session_record": ("supervisor", "post", ("attendance", "notes")),
    "supervision_topic_add": ("supervisor", "post", ("topic",)),
    "supervision_follow_up_new": ("supervisor", "post", ("description", "owner", "due_by")),
    "supervision_agenda_decide": ("supervisor", "post", ("decision",)),
    "supervision_flag_export": ("supervisor", "get", ("since", "until", "format")),
    "review_queue": ("supervisor", "get", ("sort", "filter")),
    "caseload_board": ("admin", "get", ("clinician", "status", "sort", "q")),
    "caseload_board_csv": ("admin", "get", ("clinician", "status", "sort", "q")),
    "waitlist": ("admin", "get", ("q", "language", "sort")),
    "client_assign": ("admin", "post", ("clinician", "over_capacity_reason")),
    "episode_transfer": ("admin", "post", ()),
    "appointments_export": ("admin", "get", ()),
    "audit_log": ("admin", "get", ("action", "actor", "page")),
}

NAME = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"')


def field_names(http: HttpClient, url: str, extra: tuple[str, ...]) -> list[str]:
    page = http.get(url)
    html = b"" if page.streaming or page.status_code != 200 else page.content
    found = NAME.findall(html.decode(errors="replace"))
    names = {name for name in found if name != "csrfmiddlewaretoken"}
    return sorted(names | set(extra))


def row_counts() -> dict[str, int]:
    """Rows of every table of ours, in one query."""
    tables = [
        model._meta.db_table
        for app in ("practice", "scheduling", "alliance")
        for model in apps.get_app_config(app).get_models()
    ]
    # The table names are our models' own, not input.
    sql = " UNION ALL ".join(
        f"SELECT '{table}', COUNT(*) FROM {connection.ops.quote_name(table)}"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


# Tables that a refused request may still write: the audit log (reads of clinical data are
# audited before the form is judged) and Django's sessions (messages).
MAY_CHANGE_ON_REFUSAL = {"practice_auditevent"}


def target_url(world: World, name: str) -> str:
    args = url_args(world)
    if name == "client_link":
        return reverse(name, args=["reschedule", client_link_token(world.upcoming, "reschedule")])
    if name == "portal_appointment_action":
        return reverse(name, args=[world.upcoming.pk, "reschedule"])
    if name == "measure_link":
        return reverse(name, args=[measure_link_token(world.measure_request)])
    if name == "appointment_attendance":
        return reverse(name, args=[world.past.pk])
    return reverse(name, args=args.get(name, []))


def world_ids(world: World) -> list[str]:
    return [
        str(pk)
        for pk in (
            world.client.pk,
            world.waitlisted.pk,
            world.clinician.pk,
            world.other_clinician.pk,
            world.supervisor.pk,
            world.outsider.pk,
            world.episode.pk,
            world.flag.pk,
            world.upcoming.pk,
            world.feedback.pk,
        )
    ] + ["yes", "no", "on", "this", "series", "attended", "no_show", "email", "phone", "csv"]


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_garbage_never_breaks_a_form_or_half_writes(world: World, name: str) -> None:
    persona, method, extra = TARGETS[name]
    http = HttpClient()
    user = world.personas[persona]
    if user is not None:
        http.force_login(user)
    url = target_url(world, name)
    fields = field_names(http, url, extra)
    assert fields, f"{name}: no form fields found to fuzz"
    data_strategy = st.dictionaries(st.sampled_from(fields), values(world_ids(world)), max_size=8)
    send: Callable[..., Any] = http.post if method == "post" else http.get

    @FUZZ
    @given(data=data_strategy)
    def fuzz(data: dict[str, Any]) -> None:
        with transaction.atomic():
            before = row_counts()
            try:
                response = send(url, data)
            except Exception as exc:  # the test client re-raises what would be a 500
                raise AssertionError(f"{name}: {type(exc).__name__} for {data!r}") from exc
            assert response.status_code < 500, (name, data)
            success = response.status_code in (301, 302, 303) or (
                method == "post" and response.status_code == 200 and name == "client_link"
            )
            if method == "post" and not success:
                after = row_counts()
                changed = {
                    t for t in before if before[t] != after[t] and t not in MAY_CHANGE_ON_REFUSAL
                }
                assert not changed, f"{name}: refused ({response.status_code}) yet wrote {changed}"
            transaction.set_rollback(True)

    fuzz()


# --- Import ------------------------------------------------------------------------------


@pytest.fixture
def admin_client(world: World) -> HttpClient:
    http = HttpClient()
    http.force_login(world.admin)
    return http


FILES = {
    "clinicians": CLINICIANS,
    "clients": CLIENTS,
    "appointments": APPOINTMENTS,
    "responses": RESPONSES,
}


def with_garbage(rows: list[dict[str, str]], row: int, column: str, value: str) -> str:
    changed = [dict(r) for r in rows]
    changed[row % len(changed)][column] = value
    return csv_text(changed, list(dict.fromkeys(k for r in rows for k in r)))


CELL = st.one_of(TEXT, NUMBERS, st.sampled_from(BAD_DATES)).filter(lambda s: isinstance(s, str))


@FUZZ
@given(
    file=st.sampled_from(sorted(FILES)),
    row=st.integers(min_value=0, max_value=10),
    column_index=st.integers(min_value=0, max_value=20),
    value=CELL,
)
def test_a_garbage_cell_in_an_import_is_refused_or_imported_whole(
    world: World, file: str, row: int, column_index: int, value: str
) -> None:
    rows = FILES[file]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    column = columns[column_index % len(columns)]
    texts = {f"{name}.csv": csv_text(r) for name, r in FILES.items()}
    texts[f"{file}.csv"] = with_garbage(rows, row, column, value)
    with transaction.atomic():
        before = row_counts()
        try:
            # As the upload page and the command do: every file's bytes through decode_csv
            # (which refuses NUL bytes, that PostgreSQL text cannot hold), then the import.
            files = {
                name: imports.decode_csv(name, text.encode("utf-8", "surrogatepass"))
                for name, text in texts.items()
            }
            imports.history_import(practice=world.practice, files=files, actor=world.admin)
        except (ImportInvalid, ImportFailed):
            after = row_counts()
            changed = {t for t in before if before[t] != after[t]}
            assert not changed, f"a refused import wrote {changed}"
        transaction.set_rollback(True)


RAW = st.one_of(
    st.binary(max_size=2_000),
    st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbfexternal_id,email\n",
            b"\x00\x00\x00",
            b"a,b\n" + b'"unterminated\n',
            ("external_id," * 5000).encode(),
            "external_id,first_name\nC1,Zoë\n".encode("utf-16"),
            b"\xff\xfe\xfd",
        ]
    ),
)


@FUZZ
@given(
    uploads=st.dictionaries(st.sampled_from(sorted(FILES)), RAW, min_size=0, max_size=4),
    name=st.sampled_from(["x.csv", "x.txt", "", "a\x00b.csv", "é.csv", "x" * 300 + ".csv"]),
)
def test_garbage_uploads_are_refused_with_a_page_and_write_nothing(
    world: World, admin_client: HttpClient, uploads: dict[str, bytes], name: str
) -> None:
    files = {field: SimpleUploadedFile(name or "upload", data) for field, data in uploads.items()}
    with transaction.atomic():
        before = row_counts()
        response = admin_client.post(reverse("import_upload"), files)
        assert response.status_code < 500
        if response.status_code != 302:
            after = row_counts()
            assert before == after
        transaction.set_rollback(True)


def test_decode_csv_refuses_or_decodes_anything() -> None:
    @FUZZ
    @given(data=RAW)
    def decode(data: bytes) -> None:
        try:
            text = imports.decode_csv("clients.csv", data)
        except (ImportInvalid, ValueError):
            return
        assert isinstance(text, str)

    decode()


# --- Regressions the fuzzing found ---------------------------------------------------------


@pytest.mark.parametrize("target", ["0", "home", "review_queue", "x.y"])
def test_a_next_that_looks_like_a_view_name_is_a_redirect_not_a_500(
    world: World, target: str
) -> None:
    http = HttpClient()
    http.force_login(world.supervisor)
    response = http.post(
        reverse("supervision_flag_acknowledge", args=[world.flag.pk]), {"next": target}
    )
    assert response.status_code == 302
