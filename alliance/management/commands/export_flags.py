from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alliance.flag_export import FORMATS, write_flags
from alliance.models import RuptureFlag
from practice.models import Practice
from practice.services import audit_record


class _Out:
    """Hands the export's text to the command's stdout as it is, without added newlines."""

    def __init__(self, command: BaseCommand) -> None:
        self.command = command

    def write(self, text: str, /) -> None:
        self.command.stdout.write(text, ending="")


class Command(BaseCommand):
    help = (
        "Write every flag, with its rule, client reference (id and initials), clinician, "
        "status, evidence and history, as CSV or JSON to standard output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
        parser.add_argument("--practice", metavar="SLUG", help="Only this practice's flags.")

    def handle(self, *args: Any, **options: Any) -> None:
        flags = RuptureFlag.objects.all()
        practice = None
        if options["practice"]:
            practice = Practice.objects.filter(slug=options["practice"]).first()
            if practice is None:
                raise CommandError(f"No practice with the slug {options['practice']!r}.")
            flags = flags.filter(practice=practice)
        count = write_flags(flags, _Out(self), fmt=options["fmt"])
        # Flags are clinical data: an export is a read the audit log keeps.
        audit_record(actor=None, action=f"flags.export.{options['fmt']}", practice=practice)
        self.stderr.write(f"{count} flag{'s' if count != 1 else ''} exported.")
