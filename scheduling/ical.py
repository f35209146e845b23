"""RFC 5545 calendars of appointments: the clinicians' feeds, and later .ics attachments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC
from urllib.parse import urlsplit

from django.conf import settings
from icalendar import Calendar, Event

from scheduling.models import CANCELLED_STATUSES, Appointment, Location, Status

PRODID = "-//Alliance Practice//Scheduling//EN"


def ical_summary(appointment: Appointment) -> str:
    """Client initials and the kind of session: enough to plan a day, nothing to identify
    the client or their care if a phone or a shared calendar is seen by someone else."""
    return f"{appointment.client.initials} · {appointment.get_kind_display()}"


def ical_status(appointment: Appointment) -> str:
    if appointment.status in CANCELLED_STATUSES:
        return "CANCELLED"
    if appointment.status == Status.SCHEDULED:
        return "TENTATIVE"
    return "CONFIRMED"


def ical_uid(appointment: Appointment) -> str:
    # Stable across reschedules, so a calendar app moves the event instead of adding one.
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"appointment-{appointment.pk}@{host}"


def ical_for(
    appointments: Iterable[Appointment],
    *,
    name: str = "Alliance Practice",
    summary: Callable[[Appointment], str] = ical_summary,
) -> bytes:
    """A VCALENDAR with one VEVENT per appointment, times in UTC.

    The appointments need ``client`` loaded (select_related) for the default summary.
    """
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for appointment in appointments:
        event = Event()
        event.add("uid", ical_uid(appointment))
        # Without METHOD, DTSTAMP is when the event last changed; a reschedule resets it too.
        event.add("dtstamp", appointment.status_changed_at.astimezone(UTC))
        event.add("last-modified", appointment.status_changed_at.astimezone(UTC))
        event.add("sequence", appointment.link_version - 1)
        event.add("dtstart", appointment.starts_at.astimezone(UTC))
        event.add("dtend", appointment.ends_at.astimezone(UTC))
        event.add("summary", summary(appointment))
        if appointment.location == Location.VIDEO:
            event.add("location", "Video")
            event.add("url", appointment.video_url)
        else:
            event.add("location", "In person")
        event.add("status", ical_status(appointment))
        event.add("transp", "TRANSPARENT" if appointment.status in CANCELLED_STATUSES else "OPAQUE")
        calendar.add_component(event)
    body: bytes = calendar.to_ical()
    return body
