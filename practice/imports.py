"""Importing another system's history from CSV files: clinicians, clients, appointments with
their statuses, and measure responses. The format is documented in docs/import.md.

A top-layer module, like practice.home: it composes practice (people, episodes), scheduling
(appointments, whose overlaps the database refuses) and alliance (responses, scored by
alliance.scoring). The practice core never imports it; practice.tasks loads it only inside
the task that runs an upload.

An import goes in three steps:
1. decode and parse every file (UTF-8, with or without a byte-order mark);
2. validate every row, and every link between rows and files, collecting each problem as
   (file, row, column, message) instead of stopping at the first one;
3. only when nothing at all is wrong, write everything in one transaction (COPY for the
   large tables), so an import happens completely or not at all.

Rows are matched by external id (clinicians also by email). A row that is already in the
database is left as it is, so importing the same files twice creates nothing new.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, connection, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from alliance.models import Instrument, Response
from alliance.scoring import Score, score
from practice.models import (
    Client,
    ClinicianProfile,
    Episode,
    ImportRun,
    Membership,
    Practice,
    User,
)
from practice.queueing import enqueue_on_commit
from practice.services import audit_record
from scheduling.models import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    Appointment,
    AppointmentStatusChange,
    Kind,
    Location,
    Status,
)
from scheduling.services import CLINICIAN_LOCK

logger = logging.getLogger(__name__)

CLINICIANS: Final = "clinicians.csv"
CLIENTS: Final = "clients.csv"
APPOINTMENTS: Final = "appointments.csv"
RESPONSES: Final = "responses.csv"
# Also the order they are read in: later files refer to rows of earlier ones.
FILE_NAMES: Final = (CLINICIANS, CLIENTS, APPOINTMENTS, RESPONSES)

# An upload above this is refused before it is read into memory twice (bytes, then text).
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
# The page and the ImportRun row keep this many problems; the command prints them all.
MAX_STORED_PROBLEMS: Final = 1000
# A session longer than this is almost certainly a typo in a date.
MAX_SESSION: Final = timedelta(hours=12)
# Progress is reported every this many rows, and COPY streams in chunks of this size.
CHUNK: Final = 5000
BATCH_SIZE: Final = 2000

KINDS_BY_FILE: Final = {
    CLINICIANS: "clinicians",
    CLIENTS: "clients",
    APPOINTMENTS: "appointments",
    RESPONSES: "responses",
}
ACTIVE: Final = frozenset(str(s) for s in ACTIVE_STATUSES)
OPEN: Final = frozenset(str(s) for s in OPEN_STATUSES)

Progress = Callable[[int, int], None]


# --- Problems ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where it is (row 1 is the header, as a spreadsheet
    counts) and what to do about it."""

    file: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}:{self.column}: {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


class ImportInvalid(Exception):
    """The input has problems; nothing was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the import; nothing was written")


class ImportFailed(Exception):
    """The input was valid but could not be written (the app changed meanwhile); nothing was
    written. The message says what to do."""


@dataclass
class ImportSummary:
    """What an import created and what it found already there, per kind of row."""

    counts: dict[str, dict[str, int]]
    rows: dict[str, int]
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "rows": self.rows, "dry_run": self.dry_run}

    @property
    def created(self) -> int:
        return sum(kind.get("created", 0) for kind in self.counts.values())


def decode_csv(name: str, data: bytes) -> str:
    """The text of an uploaded CSV file, or ImportInvalid saying why it is not one."""

    def refuse(line: int, message: str) -> ImportInvalid:
        return ImportInvalid([Problem(name, line, "", message)])

    if data.startswith(b"PK\x03\x04"):
        raise refuse(0, "This is a zip archive (an Excel workbook?), not a CSV file. "
                     "Save it as “CSV UTF-8 (comma delimited)”.")  # fmt: skip
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise refuse(1, "This file is UTF-16 text. Save it as “CSV UTF-8 (comma delimited)”.")
    try:
        # utf-8-sig: a byte-order mark at the start (Excel writes one) is not part of the
        # first column's name.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise refuse(
            line,
            f"This is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} cannot be "
            "read (Latin-1 or Windows-1252?). Save the file as “CSV UTF-8”.",
        ) from exc
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL, and no CSV export contains one: a binary file.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise refuse(line, "This file contains NUL bytes: it is a binary file, not CSV text.")
    return text


# --- Parsed rows -------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Clinician:
    external_id: str
    row: int  # 0: known only from the database
    active: bool
    user_id: int | None = None
    # An existing clinician found by email, whose profile gets the external id.
    link_profile_id: int | None = None
    link_membership_id: int | None = None
    # A new clinician: the User and ClinicianProfile fields.
    user_fields: dict[str, Any] | None = None
    profile_fields: dict[str, Any] | None = None


@dataclass(eq=False, slots=True)
class _Client:
    external_id: str
    row: int
    pk: int | None  # None: new
    status: str  # the database's, or the file's (blank: derived from the history)
    fields: dict[str, Any] | None = None  # a new client's fields
    episodes: list[_Episode] = field(default_factory=list)
    booked_ahead: _Appointment | None = None
    gets_open_episode: bool = False
    # Some of the client's sessions were refused: their episodes are not planned, so a
    # response without an episode is not a problem of its own.
    incomplete: bool = False


@dataclass(eq=False, slots=True)
class _Episode:
    client: _Client
    clinician: _Clinician | None
    clinician_user_id: int | None
    opened_on: date
    closed_on: date | None
    close_reason: str = ""
    stage: str = Episode.Stage.CLOSED
    pk: int | None = None


@dataclass(eq=False, slots=True)
class _Appointment:
    row: int
    external_id: str
    clinician: _Clinician
    client: _Client
    starts_at: datetime
    ends_at: datetime
    status: str
    kind: str
    location: str
    video_url: str
    existing: tuple[int, int, int] | None = None  # (pk, client pk, episode pk) when in the db
    pk: int | None = None
    episode: _Episode | None = None


@dataclass(eq=False, slots=True)
class _Response:
    row: int
    external_id: str
    client: _Client
    instrument: Instrument
    completed_at: datetime
    collected_via: str
    result: Score
    appointment: _Appointment | None
    appointment_id: int | None  # an appointment that is only in the database
    episode_id: int | None  # that appointment's episode
    clinician: _Clinician | None
    episode: _Episode | None = None


@dataclass(eq=False, slots=True)
class _Pair:
    """A client's history with one clinician in this import: it needs an episode."""

    client: _Client
    clinician: _Clinician
    first: datetime
    last: datetime
    attended: bool = False
    episode: _Episode | None = None


@dataclass(frozen=True)
class _Spec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]


SPECS: Final = {
    CLINICIANS: _Spec(
        CLINICIANS,
        ("external_id", "email", "first_name", "last_name"),
        ("active", "timezone", "languages", "specialties", "gender", "caseload_capacity"),
    ),
    CLIENTS: _Spec(
        CLIENTS,
        ("external_id", "first_name", "last_name"),
        ("email", "phone", "preferred_language", "timezone", "status"),
    ),
    APPOINTMENTS: _Spec(
        APPOINTMENTS,
        ("external_id", "clinician_external_id", "client_external_id", "starts_at", "status"),
        ("ends_at", "duration_minutes", "kind", "location", "video_url"),
    ),
    RESPONSES: _Spec(
        RESPONSES,
        ("external_id", "client_external_id", "instrument", "completed_at"),
        ("instrument_version", "appointment_external_id", "clinician_external_id", "collected_via"),
    ),
}


def _normalise(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def _choices(
    choices: Iterable[tuple[str, str]], aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Accepted spellings: the value, the label, and a few aliases, in any case, with spaces
    or hyphens for underscores ("No-show", "no_show", "no show")."""
    accepted: dict[str, str] = {}
    for value, label in choices:
        accepted[_normalise(value)] = value
        accepted[_normalise(label)] = value
    for alias, value in (aliases or {}).items():
        accepted[_normalise(alias)] = value
    return accepted


APPOINTMENT_STATUSES: Final = _choices(
    Status.choices,
    {
        "noshow": Status.NO_SHOW,
        "cancelled_by_client": Status.CANCELLED_BY_CLIENT,
        "cancelled_by_clinician": Status.CANCELLED_BY_CLINICIAN,
        "late_cancel": Status.LATE_CANCELLED,
    },
)
KINDS: Final = _choices(Kind.choices)
LOCATIONS: Final = _choices(Location.choices, {"online": Location.VIDEO})
CLIENT_STATUSES: Final = _choices(Client.Status.choices)
VIA: Final = _choices(Response.Via.choices)
YES: Final = frozenset({"yes", "y", "true", "1"})
NO: Final = frozenset({"no", "n", "false", "0"})
_HAS_TIME = re.compile(r"^\d{4}-?\d{2}-?\d{2}[T ]\d")
_url = URLValidator(schemes=["https"])


def _max_length(model: type[models.Model], name: str) -> int:
    model_field = model._meta.get_field(name)
    assert isinstance(model_field, models.Field) and model_field.max_length is not None
    return int(model_field.max_length)


class _Bad(Exception):
    """A cell's value is wrong; the message says how."""


# --- Reading rows ------------------------------------------------------------------------


class _Row:
    """One data row, with typed accessors that record a problem instead of raising."""

    __slots__ = ("file", "importer", "index", "ok", "values")

    def __init__(self, importer: _Importer, file: str, index: int, values: dict[str, str]):
        self.importer = importer
        self.file = file
        self.index = index  # the row number a spreadsheet shows: the header is row 1
        self.values = values
        self.ok = True

    def fail(self, column: str, message: str) -> None:
        self.ok = False
        self.importer.problem(self.file, self.index, column, message)

    def text(self, column: str, max_length: int, *, required: bool = False) -> str:
        value = self.values.get(column, "")
        if not value:
            if required:
                self.fail(column, "Required, but empty.")
            return ""
        if len(value) > max_length:
            self.fail(column, f"At most {max_length} characters; this has {len(value)}.")
            return ""
        return value

    def choice(self, column: str, accepted: Mapping[str, str], default: str | None = None) -> str:
        """One of `accepted`; blank gives `default`, and is a problem when there is none."""
        value = self.values.get(column, "")
        if not value:
            if default is None:
                self.fail(column, f"Required, but empty. One of: {self._listing(accepted)}.")
            return default or ""
        found = accepted.get(value) or accepted.get(_normalise(value))
        if found is None:
            self.fail(column, f"“{value}” is not one of: {self._listing(accepted)}.")
            return default or ""
        return found

    @staticmethod
    def _listing(accepted: Mapping[str, str]) -> str:
        return ", ".join(sorted(set(accepted.values())))

    def moment(self, column: str) -> datetime | None:
        value = self.values.get(column, "")
        if not value:
            self.fail(column, "Required, but empty.")
            return None
        try:
            return self.importer.parse_moment(value)
        except _Bad as exc:
            self.fail(column, str(exc))
            return None

    def yes_no(self, column: str, default: bool) -> bool:
        value = self.values.get(column, "").lower()
        if not value:
            return default
        if value in YES:
            return True
        if value in NO:
            return False
        self.fail(column, f"“{self.values[column]}” is not yes or no.")
        return default

    def number(self, column: str, low: int, high: int) -> int | None:
        value = self.values.get(column, "")
        if not value:
            return None
        if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
            self.fail(column, f"“{value}” is not a whole number from {low} to {high}.")
            return None
        return int(value)

    def email(self, column: str, *, required: bool = False) -> str:
        value = self.text(column, 254, required=required).lower()
        if value:
            try:
                validate_email(value)
            except ValidationError:
                self.fail(column, f"“{value}” is not an email address.")
                return ""
        return value

    def zone(self, column: str) -> str:
        value = self.values.get(column, "")
        if value and value not in self.importer.zones:
            self.fail(column, f"“{value}” is not a known time zone, e.g. Europe/Berlin.")
            return ""
        return value

    def names(self, column: str, max_length: int) -> list[str]:
        """A list in one cell, separated by semicolons: "German; English"."""
        names = [part.strip() for part in self.values.get(column, "").split(";")]
        names = [name for name in names if name]
        for name in names:
            if len(name) > max_length:
                self.fail(column, f"“{name}” is longer than {max_length} characters.")
                return []
        return names


def _read_csv(name: str, text: str) -> tuple[list[list[str]], Problem | None]:
    """All records of one file, and the problem that stopped reading it, if one did."""
    records: list[list[str]] = []
    # strict: a stray quote or an unterminated quoted cell is an error, not a silently
    # merged cell that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        return records, Problem(
            name, len(records) + 1, "", f"Cannot read this row as CSV ({exc}); reading stopped."
        )
    return records, None


# --- The importer ------------------------------------------------------------------------


class _Importer:
    """Validates every row, plans episodes, and writes. One instance per import."""

    def __init__(
        self,
        *,
        practice: Practice,
        files: Mapping[str, str],
        actor: User | None,
        progress: Progress | None,
        dry_run: bool,
    ) -> None:
        self.practice = practice
        self.actor = actor
        self.progress = progress
        self.dry_run = dry_run
        self.zone = zoneinfo.ZoneInfo(practice.timezone)
        self.zones = zoneinfo.available_timezones()
        self.now = timezone.now()
        self.today = self.now.astimezone(self.zone).date()
        self.problems: list[Problem] = []
        self.moments: dict[str, datetime | str] = {}  # parsed, or why it could not be

        unknown = sorted(set(files) - set(FILE_NAMES))
        for name in unknown:
            self.problem(name, 0, "", f"Unknown file; the import reads {', '.join(FILE_NAMES)}.")
        if not set(files) & set(FILE_NAMES):
            self.problem("", 0, "", f"No files to import: give one or more of "
                         f"{', '.join(FILE_NAMES)}.")  # fmt: skip
        self.records: dict[str, list[list[str]]] = {}
        for name in FILE_NAMES:
            if name in files:
                records, problem = _read_csv(name, files[name])
                if problem is not None:
                    self.problems.append(problem)
                self.records[name] = records
        self.rows = {
            name: sum(1 for record in records[1:] if any(cell.strip() for cell in record))
            for name, records in self.records.items()
        }
        # Validating and writing each count once per row.
        self.total = sum(self.rows.values()) * (1 if dry_run else 2)
        self.processed = 0
        self._reported = 0

        self.headers: dict[str, frozenset[str]] = {}
        self.clinicians: dict[str, _Clinician | None] = {}  # None: its row is invalid
        self.clients: dict[str, _Client | None] = {}
        self.appointments: dict[str, _Appointment | None] = {}
        self.new_clinicians: list[_Clinician] = []
        self.linked_clinicians: list[_Clinician] = []
        self.new_clients: list[_Client] = []
        self.new_appointments: list[_Appointment] = []
        self.new_responses: list[_Response] = []
        self.new_episodes: list[_Episode] = []
        self.counts: dict[str, dict[str, int]] = {
            "clinicians": {"created": 0, "linked": 0, "unchanged": 0},
            "clients": {"created": 0, "unchanged": 0},
            "episodes": {"created": 0, "open": 0},
            "appointments": {"created": 0, "unchanged": 0},
            "responses": {"created": 0, "unchanged": 0},
        }

    # -- helpers

    def problem(self, file: str, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(file, row, column, message))

    def tick(self, rows: int = 1) -> None:
        self.processed += rows
        if self.progress is not None and (
            self.processed - self._reported >= CHUNK or self.processed >= self.total
        ):
            self._reported = self.processed
            self.progress(self.processed, self.total)

    def parse_moment(self, value: str) -> datetime:
        # Sessions start at the same few times of day on the same days: parse each text once.
        found = self.moments.get(value)
        if found is None:
            try:
                found = self._parse_moment(value)
            except _Bad as exc:
                found = str(exc)
            self.moments[value] = found
        if isinstance(found, str):
            raise _Bad(found)
        return found

    def _parse_moment(self, value: str) -> datetime:
        """An aware datetime in UTC, from ISO 8601 with an offset, or from a local time in
        the practice's zone. Local times that do not exist (the spring-forward gap) or that
        happen twice (the autumn fall-back) are refused: guessing would move a session by
        an hour."""
        example = "e.g. 2024-03-05T14:00:00+01:00 or 2024-03-05 14:00"
        if not _HAS_TIME.match(value):
            raise _Bad(f"“{value}” is not a date and time in ISO 8601, {example}.")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad(f"“{value}” is not a date and time in ISO 8601, {example}.") from None
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        local = parsed.replace(tzinfo=self.zone)
        zone = self.practice.timezone
        if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != parsed:
            raise _Bad(
                f"{value} does not exist in {zone}: the clocks went forward that night. "
                "Give the time with its UTC offset."
            )
        if local.utcoffset() != parsed.replace(tzinfo=self.zone, fold=1).utcoffset():
            raise _Bad(
                f"{value} happened twice in {zone}: the clocks went back that night. "
                "Give the time with its UTC offset."
            )
        return local.astimezone(UTC)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def when(self, starts_at: datetime, ends_at: datetime) -> str:
        start, end = self.local(starts_at), self.local(ends_at)
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"

    def read(self, name: str, extra: frozenset[str] = frozenset()) -> list[_Row]:
        return list(self._read(name, extra))

    def _read(self, name: str, extra: frozenset[str]) -> Iterator[_Row]:
        """The data rows of one file, after its header was checked. A header with a missing
        or doubled column yields no rows: every row would repeat the same problem."""
        records = self.records.get(name)
        if not records:
            if records is not None:
                spec = SPECS[name]
                self.problem(name, 1, "", "The file is empty. It needs a header row with the "
                             f"columns {', '.join(spec.required)}.")  # fmt: skip
            return
        spec = SPECS[name]
        header = [cell.strip().lower() for cell in records[0]]
        known = {*spec.required, *spec.optional, *extra}
        usable = True
        if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
            separator = "semicolons" if ";" in header[0] else "tabs"
            self.problem(name, 1, "", f"The header is one column: the file seems to use "
                         f"{separator}. Save it comma-separated (CSV UTF-8).")  # fmt: skip
            return
        seen: set[str] = set()
        for column in header:
            if column in seen:
                self.problem(name, 1, column, "This column appears twice.")
                usable = False
            seen.add(column)
            if column and column not in known:
                # Refused rather than ignored: a misspelt column would lose its data silently.
                self.problem(name, 1, column, f"Unknown column. {name} has the columns "
                             f"{', '.join((*spec.required, *spec.optional))}.")  # fmt: skip
            if not column:
                self.problem(name, 1, "", "A column has no name.")
        for column in spec.required:
            if column not in seen:
                self.problem(name, 1, column, "This required column is missing.")
                usable = False
        if name == APPOINTMENTS and not {"ends_at", "duration_minutes"} & seen:
            self.problem(name, 1, "ends_at", "Give an ends_at or a duration_minutes column.")
            usable = False
        if not usable:
            return
        self.headers[name] = frozenset(header)
        width = len(header)
        for index, record in enumerate(records[1:], start=2):
            if not any(cell.strip() for cell in record):
                continue  # a blank line, e.g. at the end of the file
            if len(record) > width and any(cell.strip() for cell in record[width:]):
                self.problem(name, index, "", f"This row has {len(record)} cells but the "
                             f"header has {width} columns.")  # fmt: skip
                continue
            # A short row (some tools drop trailing empty cells) reads as blanks.
            cells = [cell.strip() for cell in record] + [""] * (width - len(record))
            yield _Row(self, name, index, dict(zip(header, cells, strict=False)))

    def counted(self, name: str, rows: list[_Row]) -> Iterator[_Row]:
        """Rows of a file in order, reporting progress; rows that were never yielded (a
        broken header, a row too wide) count too, so the bar ends where it should."""
        for row in rows:
            yield row
            self.tick()
        self.tick(self.rows.get(name, 0) - len(rows))

    # -- validation

    def validate(self) -> None:
        """Every check, over every row; raises ImportInvalid with all problems found."""
        self._check_clinicians()
        self._check_clients()
        self._check_appointments()
        self._check_responses()
        # Over the rows that passed, so one run reports everything (an invalid row's
        # dependants are skipped without a second, derived problem).
        self._check_overlaps()
        self._plan_episodes()
        self._place_responses()
        if not self.problems:
            self._check_nothing_dropped()
        if self.problems:
            # In file and row order, as a person fixes them; a row's own problems keep the
            # order of its columns (the sort is stable).
            order = {name: index for index, name in enumerate(FILE_NAMES)}
            self.problems.sort(key=lambda p: (order.get(p.file, -1), p.row))
            raise ImportInvalid(self.problems)

    def _check_nothing_dropped(self) -> None:
        """Every row is to be created, linked or found unchanged. A row left out without a
        problem to show for it would be lost silently: refuse that as a bug, not write."""
        planned = {
            CLINICIANS: len(self.new_clinicians) + len(self.linked_clinicians),
            CLIENTS: len(self.new_clients),
            APPOINTMENTS: len(self.new_appointments),
            RESPONSES: len(self.new_responses),
        }
        for name, kind in KINDS_BY_FILE.items():
            expected = self.rows.get(name, 0)
            found = planned[name] + self.counts[kind]["unchanged"]
            if found != expected:
                raise RuntimeError(f"import: {name} has {expected} rows but {found} were planned")

    def _clinician(self, row: _Row, column: str) -> _Clinician | None:
        external_id = row.text(column, 100, required=True)
        if not external_id:
            return None
        if external_id in self.ambiguous and external_id not in self.clinicians:
            row.fail(column, f"Several clinicians of this practice have the external id "
                     f"“{external_id}”; give each their own on the Members page.")  # fmt: skip
            return None
        if external_id in self.clinicians:
            found = self.clinicians[external_id]
            if found is None:
                row.ok = False  # its own row is wrong, and says so
            return found
        row.fail(column, f"No clinician “{external_id}” in {CLINICIANS} or in this practice.")
        return None

    def _client(self, row: _Row, column: str) -> _Client | None:
        external_id = row.text(column, 100, required=True)
        if not external_id:
            return None
        if external_id in self.clients:
            found = self.clients[external_id]
            if found is None:
                row.ok = False
            return found
        # Not in the file: perhaps imported before.
        existing = self.stored_clients.get(external_id)
        if existing is None:
            row.fail(column, f"No client “{external_id}” in {CLIENTS} or in this practice.")
            return None
        client = _Client(external_id, 0, existing[0], existing[1])
        self.clients[external_id] = client
        return client

    def _check_clinicians(self) -> None:
        # Clinicians of this practice by external id: every import may refer to them.
        by_external_id: dict[str, list[tuple[int, bool]]] = {}
        profiles = ClinicianProfile.objects.filter(membership__practice=self.practice)
        for external_id, user_id, active, login_active in profiles.exclude(
            external_id=""
        ).values_list(
            "external_id",
            "membership__user_id",
            "membership__is_active",
            "membership__user__is_active",
        ):
            by_external_id.setdefault(external_id, []).append((user_id, active and login_active))
        for external_id, found in by_external_id.items():
            if len(found) == 1:
                user_id, active = found[0]
                self.clinicians[external_id] = _Clinician(external_id, 0, active, user_id)
        self.ambiguous = {ext for ext, found in by_external_id.items() if len(found) > 1}

        rows = self.read(CLINICIANS)
        emails = {row.values.get("email", "").lower() for row in rows} - {""}
        users = {
            found["email_lower"]: found
            for found in User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails)
            .values(
                "pk",
                "email_lower",
                "is_active",
                "membership__pk",
                "membership__practice_id",
                "membership__is_clinician",
                "membership__is_active",
                "membership__clinician_profile__pk",
                "membership__clinician_profile__external_id",
            )
        }
        first_row: dict[str, int] = {}
        first_email: dict[str, int] = {}
        for row in self.counted(CLINICIANS, rows):
            external_id = row.text("external_id", 100, required=True)
            email = row.email("email", required=True)
            first_name = row.text("first_name", 150, required=True)
            last_name = row.text("last_name", 150, required=True)
            active = row.yes_no("active", True)
            profile_fields: dict[str, Any] = {
                "external_id": external_id,
                "timezone": row.zone("timezone"),
                "languages": row.names("languages", 40),
                "specialties": row.names("specialties", 60),
                "gender": row.text("gender", 30),
            }
            capacity = row.number("caseload_capacity", 0, 999)
            if capacity is not None:
                profile_fields["caseload_capacity"] = capacity
            if external_id in first_row:
                row.fail("external_id", f"Row {first_row[external_id]} has this external id too.")
                continue
            if email and email in first_email:
                row.fail("email", f"Row {first_email[email]} has this email address too.")
            if not external_id:
                continue
            first_row[external_id] = row.index
            if email:
                first_email[email] = row.index
            known = by_external_id.get(external_id, [])
            if len(known) > 1:
                row.fail("external_id", "Several clinicians of this practice already have this "
                         "external id; give each their own on the Members page.")  # fmt: skip
            clinician: _Clinician | None = None
            if len(known) == 1:
                user_id, known_active = known[0]
                clinician = _Clinician(external_id, row.index, known_active, user_id)
            elif email and email in users:
                clinician = self._match_by_email(row, external_id, users[email])
            elif email:
                clinician = _Clinician(
                    external_id,
                    row.index,
                    active,
                    user_fields={
                        "email": email,
                        "first_name": first_name,
                        "last_name": last_name,
                        "is_active": active,
                    },
                    profile_fields=profile_fields,
                )
            self.clinicians[external_id] = clinician if row.ok else None
            if clinician is None or not row.ok:
                continue
            if clinician.user_fields is not None:
                self.new_clinicians.append(clinician)
            elif clinician.link_membership_id is not None:
                self.linked_clinicians.append(clinician)
            else:
                self.counts["clinicians"]["unchanged"] += 1

    def _match_by_email(
        self, row: _Row, external_id: str, user: dict[str, Any]
    ) -> _Clinician | None:
        email = user["email_lower"]
        if user["membership__pk"] is None:
            row.fail("email", f"{email} already has a login that is not a staff member of "
                     "this practice (a client's portal login?).")  # fmt: skip
            return None
        if user["membership__practice_id"] != self.practice.pk:
            row.fail("email", f"{email} is a staff member of another practice.")
            return None
        if not user["membership__is_clinician"]:
            row.fail("email", f"{email} is a member of this practice without the clinician "
                     "role. Give them the role on the Members page first.")  # fmt: skip
            return None
        linked = user["membership__clinician_profile__external_id"]
        if linked and linked != external_id:
            row.fail("external_id", f"{email} is already linked to the external id “{linked}”.")
            return None
        return _Clinician(
            external_id,
            row.index,
            bool(user["membership__is_active"] and user["is_active"]),
            user["pk"],
            link_profile_id=user["membership__clinician_profile__pk"],
            link_membership_id=user["membership__pk"],
        )

    def _check_clients(self) -> None:
        # Every client this practice has by external id, in one query: rows of this import
        # and of the files after it are matched against them without a query per row.
        self.stored_clients: dict[str, tuple[int, str]] = {
            external_id: (pk, status)
            for external_id, pk, status in Client.objects.in_practice(self.practice)
            .exclude(external_id="")
            .values_list("external_id", "pk", "status")
        }
        existing = self.stored_clients
        first_row: dict[str, int] = {}
        for row in self.counted(CLIENTS, self.read(CLIENTS)):
            external_id = row.text("external_id", 100, required=True)
            fields = {
                "first_name": row.text("first_name", 100, required=True),
                "last_name": row.text("last_name", 100, required=True),
                "email": row.email("email"),
                "phone": self._phone(row),
                "preferred_language": row.text("preferred_language", 40),
                "timezone": row.zone("timezone"),
            }
            status = row.choice("status", CLIENT_STATUSES, default="")
            if not external_id:
                continue
            if external_id in first_row:
                row.fail("external_id", f"Row {first_row[external_id]} has this external id too.")
                continue
            first_row[external_id] = row.index
            if external_id in existing:
                pk, known_status = existing[external_id]
                client = _Client(external_id, row.index, pk, known_status)
                if row.ok:
                    self.counts["clients"]["unchanged"] += 1
            else:
                client = _Client(external_id, row.index, None, status, fields=fields)
                if row.ok:
                    self.new_clients.append(client)
            self.clients[external_id] = client if row.ok else None

    def _phone(self, row: _Row) -> str:
        # The same rule as the client form: international format, spaces and hyphens dropped.
        phone = row.values.get("phone", "").replace(" ", "").replace("-", "")
        if phone and not (phone.startswith("+") and phone[1:].isdigit() and 8 <= len(phone) <= 16):
            row.fail("phone", f"“{row.values['phone']}” is not in international format, "
                     "e.g. +4930123456.")  # fmt: skip
            return ""
        return phone

    def _check_appointments(self) -> None:
        # Sessions imported before, (pk, client pk, episode pk) by external id, in one query.
        self.stored_appointments: dict[str, tuple[int, int, int]] = {}
        if APPOINTMENTS in self.records or RESPONSES in self.records:
            self.stored_appointments = {
                external_id: (pk, client_id, episode_id)
                for external_id, pk, client_id, episode_id in Appointment.objects.in_practice(
                    self.practice
                )
                .exclude(external_id="")
                .values_list("external_id", "pk", "client_id", "episode_id")
            }
        existing = self.stored_appointments
        first_row: dict[str, int] = {}
        video_url_length = _max_length(Appointment, "video_url")
        for row in self.counted(APPOINTMENTS, self.read(APPOINTMENTS)):
            external_id = row.text("external_id", 100, required=True)
            clinician = self._clinician(row, "clinician_external_id")
            client = self._client(row, "client_external_id")
            starts_at = row.moment("starts_at")
            ends_at = self._ends_at(row, starts_at)
            status = row.choice("status", APPOINTMENT_STATUSES)
            kind = row.choice("kind", KINDS, default=Kind.SESSION)
            location = row.choice("location", LOCATIONS, default=Location.IN_PERSON)
            video_url = row.text("video_url", video_url_length)
            if video_url:
                try:
                    _url(video_url)
                except ValidationError:
                    row.fail("video_url", f"“{video_url}” is not an https link.")
            if location == Location.VIDEO and not video_url and not row.values.get("video_url"):
                row.fail("video_url", "A video session needs its link.")
            held = status in (Status.ATTENDED, Status.NO_SHOW)
            if held and starts_at is not None and starts_at > self.now:
                row.fail("status", f"A session that has not started yet cannot be "
                             f"{status.replace('_', '-')}.")  # fmt: skip
            if external_id in first_row:
                row.fail("external_id", f"Row {first_row[external_id]} has this external id too.")
            if not row.ok and client is not None:
                client.incomplete = True
            if not external_id or external_id in first_row:
                continue
            first_row[external_id] = row.index
            if not row.ok or clinician is None or client is None:
                self.appointments[external_id] = None
                continue
            assert starts_at is not None and ends_at is not None
            appointment = _Appointment(
                row.index,
                external_id,
                clinician,
                client,
                starts_at,
                ends_at,
                status,
                kind,
                location,
                video_url,
                existing=existing.get(external_id),
            )
            self.appointments[external_id] = appointment
            if appointment.existing is not None:
                self.counts["appointments"]["unchanged"] += 1
                continue
            if status in OPEN and starts_at > self.now:
                if not clinician.active:
                    row.fail("clinician_external_id", f"Clinician “{clinician.external_id}” is "
                             "inactive, but this session is still booked ahead. Cancel it, or "
                             "make the clinician active.")  # fmt: skip
                    client.incomplete = True
                    continue
                client.booked_ahead = client.booked_ahead or appointment
            self.new_appointments.append(appointment)

    def _ends_at(self, row: _Row, starts_at: datetime | None) -> datetime | None:
        ends_at: datetime | None = None
        if row.values.get("ends_at"):
            ends_at = row.moment("ends_at")
            column = "ends_at"
        elif row.values.get("duration_minutes"):
            minutes = row.number("duration_minutes", 1, int(MAX_SESSION.total_seconds() // 60))
            if minutes is not None and starts_at is not None:
                ends_at = starts_at + timedelta(minutes=minutes)
            column = "duration_minutes"
        else:
            row.fail("ends_at", "Give ends_at or duration_minutes.")
            return None
        if ends_at is None or starts_at is None:
            return None
        if ends_at <= starts_at:
            row.fail(column, "The session must end after it starts.")
            return None
        if ends_at - starts_at > MAX_SESSION:
            row.fail(column, f"A session of {ends_at - starts_at} is longer than 12 hours: "
                     "check the dates.")  # fmt: skip
            return None
        return ends_at

    def _instruments(self) -> dict[str, list[Instrument]]:
        """Instruments by code, the practice's own before the shipped ones, newest first."""
        found: dict[str, list[Instrument]] = {}
        for instrument in Instrument.objects.with_scoring_rules().available_to(self.practice):
            found.setdefault(instrument.code.lower(), []).append(instrument)
        for versions in found.values():
            versions.sort(key=lambda i: (i.practice_id is None, -i.version))
        return found

    def _check_responses(self) -> None:
        if RESPONSES not in self.records:
            return
        instruments = self._instruments()
        item_columns = frozenset(
            item.key
            for versions in instruments.values()
            for instrument in versions
            for item in instrument.items.all()
        )
        rows = self.read(RESPONSES, extra=item_columns)
        present_items = item_columns & self.headers.get(RESPONSES, frozenset())
        # Responses already imported, by (client, external id): the database's uniqueness.
        existing = set(
            Response.objects.filter(client__practice=self.practice)
            .exclude(external_id="")
            .values_list("client_id", "external_id")
        )
        first_row: dict[tuple[int, str], int] = {}
        missing_reported: set[int] = set()
        item_keys: dict[int, list[str]] = {}
        needed: dict[int, list[str]] = {}
        for row in self.counted(RESPONSES, rows):
            external_id = row.text("external_id", 100, required=True)
            client = self._client(row, "client_external_id")
            instrument = self._instrument(row, instruments)
            completed_at = row.moment("completed_at")
            if completed_at is not None and completed_at > self.now + timedelta(minutes=5):
                row.fail("completed_at", "This is in the future.")
            via = row.choice("collected_via", VIA, default=Response.Via.LINK)
            appointment, appointment_id, episode_id = self._response_appointment(row, client)
            clinician: _Clinician | None = None
            if row.values.get("clinician_external_id"):
                clinician = self._clinician(row, "clinician_external_id")
                if appointment is not None and clinician is not appointment.clinician:
                    row.fail("clinician_external_id", "This is not the clinician of the "
                             "session in appointment_external_id.")  # fmt: skip
            result: Score | None = None
            if instrument is not None:
                if instrument.pk not in item_keys:
                    items = list(instrument.items.all())
                    item_keys[instrument.pk] = [item.key for item in items]
                    # Only a scored item must be answered; an optional one needs no column.
                    needed[instrument.pk] = [i.key for i in items if i.scored]
                keys = item_keys[instrument.pk]
                missing = [key for key in needed[instrument.pk] if key not in present_items]
                if missing:
                    if instrument.pk not in missing_reported:
                        missing_reported.add(instrument.pk)
                        for column in missing:
                            self.problem(RESPONSES, 1, column, f"This column is missing; "
                                         f"{instrument.name} rows need it.")  # fmt: skip
                    row.ok = False
                else:
                    result = self._score(row, instrument, keys, present_items)
            if not external_id or client is None:
                continue
            seen_as = (id(client), external_id)
            if seen_as in first_row:
                row.fail("external_id", f"Row {first_row[seen_as]} has this external id for "
                         "the same client.")  # fmt: skip
                continue
            first_row[seen_as] = row.index
            if not row.ok or instrument is None or result is None or completed_at is None:
                continue
            if client.pk is not None and (client.pk, external_id) in existing:
                self.counts["responses"]["unchanged"] += 1
                continue
            self.new_responses.append(
                _Response(
                    row.index,
                    external_id,
                    client,
                    instrument,
                    completed_at,
                    via,
                    result,
                    appointment,
                    appointment_id,
                    episode_id,
                    clinician,
                )
            )

    def _instrument(self, row: _Row, instruments: dict[str, list[Instrument]]) -> Instrument | None:
        code = row.text("instrument", 40, required=True)
        if not code:
            return None
        versions = instruments.get(code.lower())
        if not versions:
            known = ", ".join(sorted(instruments))
            row.fail("instrument", f"No instrument with the code “{code}”; known: {known}.")
            return None
        wanted = row.number("instrument_version", 1, 32767)
        if wanted is None:
            return versions[0]
        for instrument in versions:
            if instrument.version == wanted:
                return instrument
        row.fail("instrument_version", f"{versions[0].name} has no version {wanted}.")
        return None

    def _response_appointment(
        self, row: _Row, client: _Client | None
    ) -> tuple[_Appointment | None, int | None, int | None]:
        """The session a response belongs to: (from the file, or only in the database as
        (pk, episode pk)), when the row names one."""
        external_id = row.text("appointment_external_id", 100)
        if not external_id:
            return None, None, None
        if external_id in self.appointments:
            appointment = self.appointments[external_id]
            if appointment is None:
                row.ok = False
                return None, None, None
            if client is not None and appointment.client is not client:
                row.fail("appointment_external_id", "This session belongs to another client.")
            if appointment.existing is not None:
                return None, appointment.existing[0], appointment.existing[2]
            return appointment, None, None
        found = self.stored_appointments.get(external_id)
        if found is None:
            row.fail("appointment_external_id", f"No session “{external_id}” in "
                     f"{APPOINTMENTS} or in this practice.")  # fmt: skip
            return None, None, None
        if client is not None and found[1] != client.pk:
            row.fail("appointment_external_id", "This session belongs to another client.")
        return None, found[0], found[2]

    def _score(
        self, row: _Row, instrument: Instrument, keys: list[str], columns: frozenset[str]
    ) -> Score | None:
        # The instrument's own items, answered or not (score names a missing answer), and any
        # other item column that has a value (score refuses it as not an item of this one).
        answers = {
            column: value
            for column in columns
            if (value := row.values.get(column, "")) or column in keys
        }
        try:
            return score(instrument, answers)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                for message in messages:
                    row.fail(key, message)
            return None

    def _check_overlaps(self) -> None:
        """Two sessions that hold a slot at once, for one clinician or one client, are refused
        here, naming both rows, before the database's exclusion constraints would refuse the
        first of them with a less helpful error. Sessions already in the database count."""
        active = [a for a in self.new_appointments if a.status in ACTIVE]
        if not active:
            return
        Slot = tuple[datetime, datetime, _Appointment | None, str]
        by_clinician: dict[_Clinician, list[Slot]] = {}
        by_client: dict[_Client, list[Slot]] = {}
        for appointment in active:
            slot: Slot = (appointment.starts_at, appointment.ends_at, appointment, "")
            by_clinician.setdefault(appointment.clinician, []).append(slot)
            by_client.setdefault(appointment.client, []).append(slot)
        clinicians = {c.user_id: c for c in by_clinician if c.user_id is not None}
        clients = {c.pk: c for c in by_client if c.pk is not None}
        if clinicians or clients:
            stored = (
                Appointment.objects.active()
                .in_practice(self.practice)
                .filter(
                    starts_at__lt=max(a.ends_at for a in active),
                    ends_at__gt=min(a.starts_at for a in active),
                )
                .filter(Q(clinician_id__in=list(clinicians)) | Q(client_id__in=list(clients)))
                .values_list("external_id", "clinician_id", "client_id", "starts_at", "ends_at")
            )
            for external_id, clinician_id, client_id, starts_at, ends_at in stored:
                label = "a session already in this app" + (
                    f" (external id “{external_id}”)" if external_id else ""
                )
                slot = (starts_at, ends_at, None, label)
                if clinician_id in clinicians:
                    by_clinician[clinicians[clinician_id]].append(slot)
                if client_id in clients:
                    by_client[clients[client_id]].append(slot)
        reported: set[tuple[int, int]] = set()
        for clinician, slots in by_clinician.items():
            self._sweep(slots, f"Clinician “{clinician.external_id}”", reported)
        for client, slots in by_client.items():
            self._sweep(slots, f"Client “{client.external_id}”", reported)

    def _sweep(
        self,
        slots: list[tuple[datetime, datetime, _Appointment | None, str]],
        who: str,
        reported: set[tuple[int, int]],
    ) -> None:
        """Sorted by start, each slot is compared with the one reaching furthest so far:
        O(n log n), and every overlapping session is reported once."""
        if len(slots) < 2:
            return
        slots.sort(key=lambda slot: (slot[0], slot[1]))
        holder = slots[0]
        for slot in slots[1:]:
            if slot[0] < holder[1]:
                self._report_overlap(holder, slot, who, reported)
            if slot[1] > holder[1]:
                holder = slot

    def _report_overlap(
        self,
        first: tuple[datetime, datetime, _Appointment | None, str],
        second: tuple[datetime, datetime, _Appointment | None, str],
        who: str,
        reported: set[tuple[int, int]],
    ) -> None:
        # The problem goes on the row being imported; when both are, on the later one.
        here, other = (second, first) if second[2] is not None else (first, second)
        appointment = here[2]
        if appointment is None:
            return
        # Slot tuples are shared between the clinician's and the client's lists: a double
        # booking of the same pair is reported once, not twice.
        key = (id(here), id(other))
        if key in reported:
            return
        reported.add(key)
        if other[2] is not None:
            named = f"row {other[2].row} (“{other[2].external_id}”)"
        else:
            named = other[3]
        self.problem(
            APPOINTMENTS,
            appointment.row,
            "starts_at",
            f"Overlaps {named}, {self.when(other[0], other[1])}: {who} would be in two "
            "sessions at once. Cancel one, or correct its time.",
        )

    def _plan_episodes(self) -> None:
        """Every new session belongs to an episode of its (client, clinician) pair.

        An episode the pair already has is reused: the open one, else the latest. Otherwise
        one is created, opened on the pair's first session. A client has at most one open
        episode, so only the pair with the client's latest history stays open, and only when
        the client is active (said so in clients.csv, or, when the status is blank, has a
        session booked ahead). Every other new episode is history: closed on the pair's last
        session, as "transferred" when the client went on with another clinician, else as
        "completed".
        """
        pairs: dict[tuple[_Client, _Clinician], _Pair] = {}

        def touch(client: _Client, clinician: _Clinician, moment: datetime) -> _Pair:
            pair = pairs.get((client, clinician))
            if pair is None:
                pair = pairs[(client, clinician)] = _Pair(client, clinician, moment, moment)
            pair.first = min(pair.first, moment)
            pair.last = max(pair.last, moment)
            return pair

        for appointment in self.new_appointments:
            pair = touch(appointment.client, appointment.clinician, appointment.starts_at)
            pair.attended = pair.attended or appointment.status == Status.ATTENDED
        for response in self.new_responses:
            unplaced = response.appointment is None and response.appointment_id is None
            if unplaced and response.clinician is not None:
                touch(response.client, response.clinician, response.completed_at)
        self.pairs = pairs

        clients = {response.client for response in self.new_responses}
        clients.update(pair.client for pair in pairs.values())
        existing_ids = [client.pk for client in clients if client.pk is not None]
        by_user = {c.user_id: c for c in self.clinicians.values() if c is not None and c.user_id}
        by_pk = {client.pk: client for client in clients if client.pk is not None}
        for pk, client_id, clinician_id, opened_on, closed_on in Episode.objects.filter(
            client_id__in=existing_ids
        ).values_list("pk", "client_id", "clinician_id", "opened_on", "closed_on"):
            by_pk[client_id].episodes.append(
                _Episode(
                    by_pk[client_id],
                    by_user.get(clinician_id),
                    clinician_id,
                    opened_on,
                    closed_on,
                    pk=pk,
                )
            )

        by_client: dict[_Client, list[_Pair]] = {}
        for pair in pairs.values():
            by_client.setdefault(pair.client, []).append(pair)
        for client, client_pairs in by_client.items():
            self._plan_client(client, client_pairs)

        for appointment in self.new_appointments:
            appointment.episode = pairs[(appointment.client, appointment.clinician)].episode
        for client in self.new_clients:
            if not client.status:
                if client.gets_open_episode:
                    client.status = Client.Status.ACTIVE
                elif client.episodes:
                    client.status = Client.Status.DISCHARGED
                else:
                    client.status = Client.Status.WAITLIST

    def _plan_client(self, client: _Client, client_pairs: list[_Pair]) -> None:
        stored = list(client.episodes)
        has_open = any(episode.closed_on is None for episode in stored)
        todo: list[_Pair] = []
        for pair in client_pairs:
            theirs = [
                e
                for e in stored
                if pair.clinician.user_id is not None
                and e.clinician_user_id == pair.clinician.user_id
            ]
            if theirs:
                open_ones = [e for e in theirs if e.closed_on is None]
                pair.episode = open_ones[0] if open_ones else max(theirs, key=lambda e: e.opened_on)
            else:
                todo.append(pair)
        if not todo:
            return
        explicit = client.status if client.pk is None else ""
        ahead = client.booked_ahead
        if ahead is not None and explicit in (Client.Status.DISCHARGED, Client.Status.WAITLIST):
            self.problem(CLIENTS, client.row, "status", f"The client is {explicit}, but has a "
                         f"session booked ahead ({APPOINTMENTS} row {ahead.row}). Cancel it, "
                         "or make the client active.")  # fmt: skip
            return
        wants_open = explicit == Client.Status.ACTIVE or (not explicit and ahead is not None)
        todo.sort(key=lambda pair: pair.last)
        latest_of_client = max(pair.last for pair in client_pairs)
        for pair in todo:
            opened_on = self.local(pair.first).date()
            if (
                pair is todo[-1]
                and wants_open
                and not has_open
                and pair.clinician.active
                and pair.last == latest_of_client
            ):
                episode = _Episode(
                    client,
                    pair.clinician,
                    None,
                    opened_on,
                    None,
                    stage=Episode.Stage.MIDDLE if pair.attended else Episode.Stage.INTAKE,
                )
                client.gets_open_episode = True
                self.counts["episodes"]["open"] += 1
            else:
                closed_on = max(opened_on, min(self.local(pair.last).date(), self.today))
                went_on = pair.last < latest_of_client
                episode = _Episode(
                    client,
                    pair.clinician,
                    None,
                    opened_on,
                    closed_on,
                    close_reason=(
                        Episode.CloseReason.TRANSFERRED
                        if went_on
                        else Episode.CloseReason.COMPLETED
                    ),
                )
            pair.episode = episode
            client.episodes.append(episode)
            self.new_episodes.append(episode)
        self.counts["episodes"]["created"] += len(todo)

    def _place_responses(self) -> None:
        """A response belongs to its session's episode; without a session, to the episode
        of the named clinician; without either, to the client's episode that covers the day
        it was completed, or the nearest one (an intake questionnaire comes before the
        first session)."""
        for response in self.new_responses:
            if response.appointment is not None:
                response.episode = response.appointment.episode
            elif response.appointment_id is not None:
                pass  # the stored session's episode, response.episode_id
            elif response.clinician is not None:
                response.episode = self.pairs[(response.client, response.clinician)].episode
            else:
                day = self.local(response.completed_at).date()
                candidates = response.client.episodes
                if not candidates and response.client.incomplete:
                    continue
                if not candidates:
                    self.problem(RESPONSES, response.row, "client_external_id", "This client "
                                 "has no episode to file the response under: give "
                                 "appointment_external_id or clinician_external_id.")  # fmt: skip
                    continue

                def distance(episode: _Episode, day: date = day) -> tuple[int, int]:
                    ends = episode.closed_on or date.max
                    if episode.opened_on <= day <= ends:
                        gap = 0
                    elif day < episode.opened_on:
                        gap = (episode.opened_on - day).days
                    else:
                        gap = (day - ends).days
                    return gap, -episode.opened_on.toordinal()

                response.episode = min(candidates, key=distance)

    # -- writing

    def write(self, *, audit_obj: models.Model | None) -> None:
        """Everything, inside the caller's transaction. Large tables go through COPY."""
        rows = self.rows
        # Rows that were already there count as done at once.
        unchanged = sum(kind.get("unchanged", 0) for kind in self.counts.values())
        self.tick(unchanged)
        self._lock_calendars()
        self._write_clinicians()
        self.tick(rows.get(CLINICIANS, 0) - self.counts["clinicians"]["unchanged"])
        self._write_clients()
        self._write_episodes()
        self.tick(rows.get(CLIENTS, 0) - self.counts["clients"]["unchanged"])
        self._write_appointments()
        self._write_responses()
        audit_record(
            actor=self.actor, action="import.history", obj=audit_obj, practice=self.practice
        )
        # Whatever rounding is left (e.g. blank rows), so the bar ends at 100%.
        self.tick(max(0, self.total - self.processed))

    def _lock_calendars(self) -> None:
        """Take the calendar locks of the clinicians who already exist, in id order, as a
        booking does (scheduling.services._lock_calendars). A session booked in the app
        meanwhile then waits for the import instead of racing it into the exclusion
        constraints, where the two could deadlock. Clients are not locked: there can be
        tens of thousands, more than PostgreSQL's lock table holds."""
        ids = sorted({a.clinician.user_id for a in self.new_appointments if a.clinician.user_id})
        if not ids:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, id) FROM unnest(%s::int[]) WITH ORDINALITY "
                "AS ids(id, n) ORDER BY n",
                [CLINICIAN_LOCK, ids],
            )

    def _write_clinicians(self) -> None:
        new = self.new_clinicians
        users = []
        for clinician in new:
            assert clinician.user_fields is not None
            # No password: they set one when they are invited; nothing is emailed now.
            users.append(User(**clinician.user_fields, password=make_password(None)))
        User.objects.bulk_create(users, batch_size=BATCH_SIZE)
        memberships = []
        for clinician, user in zip(new, users, strict=True):
            clinician.user_id = user.pk
            memberships.append(
                Membership(
                    user=user,
                    practice=self.practice,
                    is_clinician=True,
                    is_active=clinician.active,
                )
            )
        Membership.objects.bulk_create(memberships, batch_size=BATCH_SIZE)
        profiles = []
        for clinician, membership in zip(new, memberships, strict=True):
            assert clinician.profile_fields is not None
            profiles.append(ClinicianProfile(membership=membership, **clinician.profile_fields))
        for clinician in self.linked_clinicians:
            if clinician.link_profile_id is None:
                assert clinician.link_membership_id is not None
                profiles.append(
                    ClinicianProfile(
                        membership_id=clinician.link_membership_id,
                        external_id=clinician.external_id,
                    )
                )
            else:
                ClinicianProfile.objects.filter(pk=clinician.link_profile_id).update(
                    external_id=clinician.external_id
                )
        ClinicianProfile.objects.bulk_create(profiles, batch_size=BATCH_SIZE)
        self.counts["clinicians"]["created"] = len(new)
        self.counts["clinicians"]["linked"] = len(self.linked_clinicians)

    def _write_clients(self) -> None:
        new = self.new_clients
        for client, pk in zip(new, _allocate_ids(Client, len(new)), strict=True):
            client.pk = pk
        practice_id, now = self.practice.pk, self.now
        columns = ["first_name", "last_name", "email", "phone", "preferred_language", "timezone"]
        rows = (
            (
                c.pk,
                practice_id,
                c.external_id,
                c.status,
                now,
                *[(c.fields or {})[n] for n in columns],
            )
            for c in new
        )
        copy_rows(
            Client, ["id", "practice_id", "external_id", "status", "created_at", *columns], rows
        )
        self.counts["clients"]["created"] = len(new)
        # A client who was already here and now has an open episode is in care again, as
        # when an episode is opened by hand (practice.services.episode_open).
        reopened = [
            e.client.pk
            for e in self.new_episodes
            if e.closed_on is None and e.client.pk is not None and e.client.fields is None
        ]
        if reopened:
            Client.objects.filter(pk__in=reopened).update(status=Client.Status.ACTIVE)

    def _write_episodes(self) -> None:
        new = self.new_episodes
        for episode, pk in zip(new, _allocate_ids(Episode, len(new)), strict=True):
            episode.pk = pk

        def episode_rows() -> Iterator[tuple[Any, ...]]:
            for e in new:
                assert e.clinician is not None and e.clinician.user_id is not None
                yield (e.pk, e.client.pk, e.clinician.user_id, e.stage, e.opened_on,
                       e.closed_on, e.close_reason)  # fmt: skip

        copy_rows(
            Episode,
            ["id", "client_id", "clinician_id", "stage", "opened_on", "closed_on", "close_reason"],
            episode_rows(),
        )

    def _status_changed_at(self, appointment: _Appointment) -> datetime:
        # When the status was recorded, as far as history tells. This matters: the measure
        # sweep sends session feedback for sessions marked attended in the last 72 hours, so
        # "now" would send a link for every imported session ever attended.
        if appointment.status in (Status.ATTENDED, Status.NO_SHOW):
            return min(appointment.ends_at, self.now)
        if appointment.status in OPEN:
            return self.now
        return min(appointment.starts_at, self.now)

    def _write_appointments(self) -> None:
        new = self.new_appointments
        if not new:
            return
        ids = _allocate_ids(Appointment, len(new))
        for appointment, pk in zip(new, ids, strict=True):
            appointment.pk = pk
        practice_id = self.practice.pk
        actor_id = self.actor.pk if self.actor is not None else None
        now = self.now

        def appointment_rows() -> Iterator[tuple[Any, ...]]:
            for a in new:
                assert a.episode is not None and a.client.pk is not None
                yield (
                    a.pk,
                    practice_id,
                    a.clinician.user_id,
                    a.client.pk,
                    a.episode.pk,
                    a.starts_at,
                    a.ends_at,
                    a.kind,
                    a.location,
                    a.video_url,
                    a.status,
                    self._status_changed_at(a),
                    actor_id,
                    # created_at is "now": reminders only fall due for offsets after it, so
                    # no late reminder goes out for what was booked in the old system.
                    now,
                    a.external_id,
                )

        copy_rows(
            Appointment,
            [
                "id",
                "practice_id",
                "clinician_id",
                "client_id",
                "episode_id",
                "starts_at",
                "ends_at",
                "kind",
                "location",
                "video_url",
                "status",
                "status_changed_at",
                "created_by_id",
                "created_at",
                "external_id",
            ],
            self._ticking(appointment_rows()),
        )
        # Every status has a history row; the import is where this one came from.
        changes = (
            (a.pk, "", a.status, actor_id, AppointmentStatusChange.Via.SYSTEM, "imported",
             self._status_changed_at(a))
            for a in new
        )  # fmt: skip
        copy_rows(
            AppointmentStatusChange,
            ["appointment_id", "from_status", "to_status", "changed_by_id", "via", "reason", "at"],
            changes,
        )
        self.counts["appointments"]["created"] = len(new)

    def _ticking(self, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """Pass rows through, reporting progress per chunk."""
        count = 0
        for row in rows:
            yield row
            count += 1
            if count % CHUNK == 0:
                self.tick(CHUNK)
        self.tick(count % CHUNK)

    def _write_responses(self) -> None:
        new = self.new_responses
        if not new:
            return

        def response_rows() -> Iterator[tuple[Any, ...]]:
            for r in new:
                episode_id = r.episode.pk if r.episode is not None else r.episode_id
                appointment_id = r.appointment.pk if r.appointment is not None else r.appointment_id
                answers = r.result.answers
                yield (
                    r.instrument.pk,
                    r.instrument.version,
                    r.client.pk,
                    episode_id,
                    appointment_id,
                    _jsonb(answers),
                    r.result.total,
                    _jsonb(r.result.subscales),
                    r.result.band,
                    r.result.safety_triggered,
                    r.completed_at,
                    r.collected_via,
                    # As alliance.services.response_record does: the first free-text answer.
                    next((v for v in answers.values() if isinstance(v, str)), ""),
                    r.external_id,
                )

        copy_rows(
            Response,
            [
                "instrument_id",
                "instrument_version",
                "client_id",
                "episode_id",
                "appointment_id",
                "answers",
                "total",
                "subscales",
                "band",
                "safety_triggered",
                "completed_at",
                "collected_via",
                "free_text",
                "external_id",
            ],
            self._ticking(response_rows()),
        )
        self.counts["responses"]["created"] = len(new)

    def summary(self) -> ImportSummary:
        counts = {kind: dict(values) for kind, values in self.counts.items()}
        if self.dry_run:
            # What a real run would create.
            counts["clinicians"]["created"] = len(self.new_clinicians)
            counts["clinicians"]["linked"] = len(self.linked_clinicians)
            counts["clients"]["created"] = len(self.new_clients)
            counts["appointments"]["created"] = len(self.new_appointments)
            counts["responses"]["created"] = len(self.new_responses)
        return ImportSummary(counts=counts, rows=dict(self.rows), dry_run=self.dry_run)


# --- Database helpers --------------------------------------------------------------------


def _jsonb(value: object) -> Any:
    field = Response._meta.get_field("answers")
    assert isinstance(field, models.JSONField)
    return field.get_db_prep_save(value, connection)


def _allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """Take `count` ids from the table's sequence, so rows written by COPY can be linked
    (history, responses) without reading them back."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows with PostgreSQL's COPY, an order of magnitude faster than INSERT.

    COPY bypasses Django, so the model's Python-side defaults are filled in here for every
    column not given: a field added to the model later gets its default, not a NOT NULL
    error. A required field without a default must be given; asking for it fails loudly.
    """
    given = set(columns)
    fixed: list[Any] = []
    per_row: list[models.Field[Any, Any]] = []
    # Given columns, then those with a value shared by all rows, then those made per row:
    # the order the values are written in.
    names: list[str] = list(columns)
    per_row_names: list[str] = []
    for model_field in model._meta.concrete_fields:
        if model_field.column in given or model_field.primary_key:
            continue
        # As Model() does: the default, else "" for text fields, else NULL where allowed.
        default = model_field.get_default()
        if default is None and not model_field.null:
            raise ImproperlyConfigured(
                f"copy_rows: {model.__name__}.{model_field.name} has no default; give it."
            )
        # A callable default (timezone.now, a token) is called per row, unless it makes an
        # empty list or dict, which every row can share.
        if callable(model_field.default) and default not in ([], {}):
            per_row.append(model_field)
            per_row_names.append(model_field.column)
        else:
            names.append(model_field.column)
            fixed.append(_copy_value(model_field.get_db_prep_save(default, connection)))
    names += per_row_names
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(model._meta.db_table)} ({', '.join(quote(name) for name in names)}) "
        "FROM STDIN"
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            extra = [_copy_value(f.get_db_prep_save(f.get_default(), connection)) for f in per_row]
            copy.write_row((*row, *fixed, *extra))


def _copy_value(value: Any) -> Any:
    # psycopg writes an empty list as an empty string in text COPY, which PostgreSQL cannot
    # read as an array; "{}" is the empty array's text form.
    if isinstance(value, list) and not value:
        return "{}"
    return value


def _lock_imports(practice: Practice) -> None:
    """One import per practice at a time, until the transaction ends: two imports of the
    same files would otherwise both find nothing there and both try to create it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('practice.imports'), %s)", [practice.pk]
        )


OVERLAP_CONSTRAINTS: Final = ("appointment_no_clinician_overlap", "appointment_no_client_overlap")


# --- Services ----------------------------------------------------------------------------


def history_import(
    *,
    practice: Practice,
    files: Mapping[str, str],
    actor: User | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    on_phase: Callable[[str], None] | None = None,
    audit_obj: models.Model | None = None,
) -> ImportSummary:
    """Import another system's history into `practice`: validate everything, then write
    everything in one transaction, or nothing.

    `files` maps file names (clinicians.csv, clients.csv, appointments.csv, responses.csv)
    to their text (see decode_csv). Raises ImportInvalid with every problem found, or
    ImportFailed when the app changed under the import; in both cases nothing was written.
    `progress(processed, total)` is called as rows are validated and written; `on_phase`
    with ImportRun.State.IMPORTING when writing starts. A dry run validates and counts.
    """
    importer = _Importer(
        practice=practice, files=files, actor=actor, progress=progress, dry_run=dry_run
    )
    if progress is not None:
        progress(0, importer.total)
    try:
        with transaction.atomic():
            _lock_imports(practice)
            importer.validate()
            if dry_run:
                return importer.summary()
            if on_phase is not None:
                on_phase(ImportRun.State.IMPORTING)
            importer.write(audit_obj=audit_obj)
    except IntegrityError as exc:
        # Validation saw the database as it was; a session booked in the app since (for a
        # client, whose calendar the import does not lock) can still collide.
        if any(name in str(exc) for name in OVERLAP_CONSTRAINTS):
            raise ImportFailed(
                "While the import ran, a session was booked in the app that overlaps an "
                "imported one. Nothing was written. Run the import again to see which."
            ) from exc
        raise ImportFailed(
            "The practice's data changed while the import ran. Nothing was written. "
            "Run the import again."
        ) from exc
    return importer.summary()


@transaction.atomic
def import_run_create(*, practice: Practice, actor: User, files: Mapping[str, str]) -> ImportRun:
    """Keep the uploaded files in an ImportRun and queue it for a worker (after commit)."""
    run = ImportRun.objects.create(practice=practice, started_by=actor, files=dict(files))
    audit_record(actor=actor, action="import.upload", obj=run, practice=practice)
    from practice.tasks import run_import

    enqueue_on_commit(run_import, run.pk)
    return run


class _RunProgress:
    """Writes an ImportRun's progress through a database connection of its own.

    The import runs in one long transaction; progress written through that connection would
    stay invisible to the page until the very end. This connection commits each update at
    once. It must be closed before the import's transaction touches the run's row, or the two
    would wait on each other's row lock.
    """

    def __init__(self, run_id: int, *, interval: float = 0.5) -> None:
        self.run_id = run_id
        self.interval = interval
        self.state: str = ImportRun.State.VALIDATING
        self.processed = 0
        self.total = 0
        self.last = 0.0
        self.db: BaseDatabaseWrapper | None = connection.copy()

    def __call__(self, processed: int, total: int) -> None:
        self.processed, self.total = processed, total
        if time.monotonic() - self.last >= self.interval or processed >= total:
            self.write()

    def phase(self, state: str) -> None:
        self.state = state
        self.write()

    def write(self) -> None:
        if self.db is None:
            return
        self.last = time.monotonic()
        table = connection.ops.quote_name(ImportRun._meta.db_table)
        with self.db.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET state = %s, processed = %s, total = %s "  # noqa: S608
                "WHERE id = %s AND state IN (%s, %s)",
                [
                    self.state,
                    self.processed,
                    self.total,
                    self.run_id,
                    ImportRun.State.VALIDATING,
                    ImportRun.State.IMPORTING,
                ],
            )

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


UNFINISHED: Final = (ImportRun.State.QUEUED, ImportRun.State.VALIDATING, ImportRun.State.IMPORTING)


def _finish(run_id: int, state: str, *, problems: Sequence[Problem] = (), **fields: Any) -> None:
    # The uploaded files hold clinical data; once the run has an outcome they are not needed
    # (a fixed upload is a new run), so they are not kept.
    ImportRun.objects.filter(pk=run_id).update(
        state=state,
        errors=[p.as_dict() for p in problems[:MAX_STORED_PROBLEMS]],
        files={},
        finished_at=timezone.now(),
        **fields,
    )


def import_run_process(*, import_run_id: int) -> str:
    """Run an uploaded import (the Celery task calls this) and record how it ended.

    Claimed with a conditional UPDATE: a run that already has an outcome (a duplicate
    delivery) is left alone. A run left validating or importing by a worker that died is
    taken up again, which is safe: its transaction wrote nothing unless it committed.
    """
    claimed = ImportRun.objects.filter(pk=import_run_id, state__in=UNFINISHED).update(
        state=ImportRun.State.VALIDATING, processed=0
    )
    if not claimed:
        return "skipped"
    run = ImportRun.objects.select_related("practice", "started_by").get(pk=import_run_id)
    reporter = _RunProgress(run.pk)
    try:
        with transaction.atomic():
            _lock_imports(run.practice)
            # A duplicate delivery that waited for the lock finds the run finished.
            if not ImportRun.objects.filter(pk=run.pk, state__in=UNFINISHED).exists():
                return "skipped"
            summary = history_import(
                practice=run.practice,
                files=run.files,
                actor=run.started_by,
                progress=reporter,
                on_phase=reporter.phase,
                audit_obj=run,
            )
            reporter.close()
            # In the import's own transaction: "done" commits with the data, or neither does.
            ImportRun.objects.filter(pk=run.pk).update(
                state=ImportRun.State.DONE,
                processed=F("total"),
                summary=summary.as_dict(),
                errors=[],
                files={},
                finished_at=timezone.now(),
            )
    except ImportInvalid as invalid:
        reporter.close()
        _finish(
            run.pk,
            ImportRun.State.INVALID,
            problems=invalid.problems,
            summary={"error_count": len(invalid.problems)},
        )
        return ImportRun.State.INVALID
    except ImportFailed as failed:
        reporter.close()
        _finish(run.pk, ImportRun.State.FAILED, problems=[Problem("", 0, "", str(failed))])
        return ImportRun.State.FAILED
    except Exception:
        reporter.close()
        logger.exception("Import run %s failed", run.pk)
        _finish(
            run.pk,
            ImportRun.State.FAILED,
            problems=[Problem("", 0, "", "The import failed unexpectedly; nothing was "
                              "written. The error is in the worker's log.")],
        )  # fmt: skip
        raise
    finally:
        reporter.close()
    return ImportRun.State.DONE
