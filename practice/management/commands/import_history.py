"""`manage.py import_history DIR`: another system's history from CSV files (docs/import.md).

Top layer, like practice.imports which it runs: it composes practice, scheduling and alliance.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from practice.imports import (
    FILE_NAMES,
    MAX_FILE_BYTES,
    ImportFailed,
    ImportInvalid,
    ImportSummary,
    Problem,
    decode_csv,
    history_import,
)
from practice.models import ImportRun, Practice

BAR_WIDTH = 30


class ProgressBar:
    """A text bar on a terminal, redrawn in place at most ten times a second. Where the
    output is not a terminal (a log, a pipe) it writes one line per finished phase instead,
    so logs do not fill with carriage returns."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.tty = out.isatty()
        self.phase = "validating"
        self.last = 0.0
        self.drawn = False

    def __call__(self, processed: int, total: int) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and processed < total:
            return
        self.last = now
        share = processed / total if total else 1.0
        filled = int(BAR_WIDTH * share)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.out.write(f"\r[{bar}] {share:4.0%} {self.phase} {processed:,}/{total:,}", ending="")
        self.out.flush()
        self.drawn = True

    def set_phase(self, state: str) -> None:
        if not self.tty:
            self.out.write("validated: no problems found")
        self.phase = "importing" if state == ImportRun.State.IMPORTING else state

    def end(self) -> None:
        if self.drawn:
            self.out.write("")  # leave the bar's line


class Command(BaseCommand):
    help = (
        "Import clinicians, clients, appointments and measure responses from CSV files in DIR "
        f"({', '.join(FILE_NAMES)}; see docs/import.md). Every row is validated first; "
        "nothing is written unless the whole import is valid. Importing again creates "
        "nothing new."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", help="The folder holding the CSV files.")
        parser.add_argument(
            "--practice", help="The practice's slug; needed when there is more than one."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and count what would be created, without writing anything.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        practice = self._practice(options["practice"])
        files, problems = self._files(Path(options["dir"]))
        if problems:
            self._refuse(problems)
        bar = ProgressBar(self.stderr)
        started = time.monotonic()
        try:
            summary = history_import(
                practice=practice,
                files=files,
                dry_run=options["dry_run"],
                progress=bar,
                on_phase=bar.set_phase,
            )
        except ImportInvalid as invalid:
            bar.end()
            self._refuse(invalid.problems)
        except ImportFailed as failed:
            bar.end()
            raise CommandError(str(failed)) from failed
        bar.end()
        self._report(summary, practice, time.monotonic() - started)

    def _practice(self, slug: str | None) -> Practice:
        if slug:
            found = Practice.objects.filter(slug=slug).first()
            if found is None:
                known = ", ".join(Practice.objects.values_list("slug", flat=True)) or "none yet"
                raise CommandError(f"No practice with the slug “{slug}” (practices: {known}).")
            return found
        practices = list(Practice.objects.order_by("slug")[:2])
        if not practices:
            raise CommandError("There is no practice yet to import into.")
        if len(practices) > 1:
            known = ", ".join(Practice.objects.values_list("slug", flat=True))
            raise CommandError(
                f"There are several practices; choose one with --practice ({known})."
            )
        return practices[0]

    def _files(self, folder: Path) -> tuple[dict[str, str], list[Problem]]:
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        files: dict[str, str] = {}
        problems: list[Problem] = []
        for name in FILE_NAMES:
            path = folder / name
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_FILE_BYTES:
                limit = MAX_FILE_BYTES // (1024 * 1024)
                problems.append(Problem(name, 0, "", f"Larger than {limit} MB; split it."))
                continue
            try:
                files[name] = decode_csv(name, path.read_bytes())
            except ImportInvalid as invalid:
                problems.extend(invalid.problems)
        if not files and not problems:
            raise CommandError(f"{folder} has none of the files {', '.join(FILE_NAMES)}.")
        return files, problems

    def _refuse(self, problems: list[Problem]) -> None:
        for problem in problems:
            self.stderr.write(str(problem))
        count = len(problems)
        raise CommandError(
            f"{count} problem{'s' if count != 1 else ''} found; nothing was written.",
            returncode=1,
        )

    def _report(self, summary: ImportSummary, practice: Practice, seconds: float) -> None:
        rows = sum(summary.rows.values())
        verb = "Would import" if summary.dry_run else "Imported"
        self.stdout.write(
            f"{verb} {rows:,} rows into {practice.name} in {seconds:.1f} s"
            + (" (dry run: nothing was written)" if summary.dry_run else "")
            + "."
        )
        self.stdout.write(f"{'':14}{'created':>10}{'unchanged':>11}")
        for kind, counts in summary.counts.items():
            unchanged = counts.get("unchanged")
            shown = "" if unchanged is None else f"{unchanged:,}"
            line = f"{kind:14}{counts['created']:>10,}{shown:>11}"
            notes = []
            if counts.get("linked"):
                notes.append(f"{counts['linked']:,} found by email and linked")
            if kind == "episodes":
                notes.append(
                    f"{counts['open']:,} open, {counts['created'] - counts['open']:,} closed"
                )
            self.stdout.write(line + (f"  ({'; '.join(notes)})" if notes else ""))
