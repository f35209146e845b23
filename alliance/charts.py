"""The client timeline chart: session feedback, outcome measures, sessions, ruptures and
repairs over one shared date axis, as a server-rendered SVG.

Two steps, so that the page's query count is fixed and the drawing is testable on its own:

- `timeline_data(client, low_alliance_below=...)` reads everything across all of the
  client's episodes in five queries (six if ``client.practice`` is not loaded yet);
- `timeline_svg(data, href_for_response=..., href_for_flag=...)` draws it without a query.

In a view and its template::

    data = timeline_data(client, low_alliance_below=policy.low_alliance_below)
    chart = timeline_svg(
        data,
        href_for_response=lambda r: reverse("alliance:response", args=[r.pk]),
        href_for_flag=lambda f: reverse("alliance:flag", args=[f.pk]),
    )

    {% if chart %}{{ chart }}{% else %}<p>No measures or sessions yet.</p>{% endif %}

With nothing to draw, `timeline_svg` returns an empty SafeString, so the template says so in
a sentence instead.

The site's Content-Security-Policy forbids inline styles, so the SVG uses presentation
attributes only. It must also read when printed in black and white: every series and
marker differs in shape or dash pattern, not only in colour.
"""

from __future__ import annotations

import itertools
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import dateformat
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from alliance import rules
from alliance.models import Instrument, RepairAction, Response, RuptureFlag
from practice.models import Client
from scheduling.models import OPEN_STATUSES, Appointment, Status

FEEDBACK_CODE = rules.FEEDBACK_CODE
# Totals at or above these are in the clinical range; the rules read the same table.
CLINICAL_CUTOFF: Mapping[str, int] = rules.CLINICAL_CUTOFF

ResponseHref = Callable[[Response], str]
FlagHref = Callable[[RuptureFlag], str]


# --- What the chart shows -----------------------------------------------------------------


@dataclass(frozen=True)
class ScorePoint:
    """One completed questionnaire, as a point on its measure's panel."""

    response: Response
    at: datetime
    total: int
    band: str
    episode_id: int


@dataclass(frozen=True)
class ReliableChangeBand:
    """Baseline ± the instrument's reliable change, from the episode's first response until
    the next episode's first response (or the end of the chart, when ``until`` is None).
    A total outside the band is a reliable change from where this episode started."""

    baseline: int
    lower: float
    upper: float
    since: datetime
    until: datetime | None


@dataclass(frozen=True)
class MeasureSeries:
    """One panel: every response of one instrument (all versions of its code)."""

    code: str
    name: str
    kind: str
    scale_min: int
    scale_max: int
    points: tuple[ScorePoint, ...]
    # The session-feedback alert threshold, or the outcome measure's clinical cutoff.
    threshold: int | None
    threshold_label: str
    reliable_change: float | None
    reliable_change_bands: tuple[ReliableChangeBand, ...]

    @property
    def is_feedback(self) -> bool:
        return self.code == FEEDBACK_CODE


@dataclass(frozen=True)
class SessionMark:
    """An appointment that happened or was called off (booked ones that lie ahead are not
    drawn: they have no outcome yet)."""

    appointment: Appointment
    at: datetime
    status: str
    status_label: str


@dataclass(frozen=True)
class FlagMark:
    flag: RuptureFlag
    at: datetime
    rule_label: str
    summary: str
    status_label: str
    is_safety: bool


@dataclass(frozen=True)
class RepairMark:
    repair: RepairAction
    # The flag it repairs: a repair links to its flag's page.
    flag: RuptureFlag
    at: datetime
    strategy_label: str
    approach: str


@dataclass(frozen=True)
class TimelineData:
    client_name: str
    timezone: str
    # Session feedback first, then any other alliance measure, then the outcome measures.
    measures: tuple[MeasureSeries, ...]
    sessions: tuple[SessionMark, ...]
    flags: tuple[FlagMark, ...]
    repairs: tuple[RepairMark, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.measures or self.sessions or self.flags or self.repairs)

    def moments(self) -> list[datetime]:
        return [
            *(point.at for measure in self.measures for point in measure.points),
            *(mark.at for mark in self.sessions),
            *(mark.at for mark in self.flags),
            *(mark.at for mark in self.repairs),
        ]


# --- Reading it --------------------------------------------------------------------------


def timeline_data(
    client: Client,
    *,
    low_alliance_below: int,
    cutoffs: Mapping[str, int] = CLINICAL_CUTOFF,
) -> TimelineData:
    """Everything the client's timeline chart draws, across all of their episodes.

    Five queries however long the history is: responses (with their instrument), the
    instruments' items, rupture flags, repair actions (with their flag) and appointments.
    ``low_alliance_below`` is the practice's session-feedback alert threshold
    (`AlliancePolicy.low_alliance_below`); ``cutoffs`` maps an outcome measure's code to its
    clinical cutoff.
    """
    responses = list(
        Response.objects.for_client(client)
        .select_related("instrument")
        .prefetch_related("instrument__items")
        .chronological()
    )
    flags = list(RuptureFlag.objects.for_client(client).order_by("raised_at", "pk"))
    repairs = list(
        RepairAction.objects.filter(flag__client=client)
        .select_related("flag")
        .order_by("performed_at", "pk")
    )
    appointments = list(
        Appointment.objects.for_client(client)
        .exclude(status__in=OPEN_STATUSES)
        .order_by("starts_at", "pk")
    )

    by_code: dict[str, list[Response]] = {}
    for response in responses:
        by_code.setdefault(response.instrument.code, []).append(response)
    measures = [
        _measure_series(code, group, low_alliance_below=low_alliance_below, cutoffs=cutoffs)
        for code, group in by_code.items()
    ]
    measures.sort(
        key=lambda m: (
            not m.is_feedback,
            m.kind != Instrument.Kind.ALLIANCE,
            m.name.casefold(),
            m.code,
        )
    )

    return TimelineData(
        client_name=client.full_name,
        timezone=client.effective_timezone,
        measures=tuple(measures),
        sessions=tuple(
            SessionMark(
                appointment=appointment,
                at=appointment.starts_at,
                status=appointment.status,
                status_label=appointment.get_status_display(),
            )
            for appointment in appointments
        ),
        flags=tuple(
            FlagMark(
                flag=flag,
                at=flag.raised_at,
                rule_label=flag.get_rule_display(),
                summary=flag.summary,
                status_label=flag.get_status_display(),
                is_safety=flag.rule == RuptureFlag.Rule.SAFETY,
            )
            for flag in flags
        ),
        repairs=tuple(
            RepairMark(
                repair=repair,
                flag=repair.flag,
                at=repair.performed_at,
                strategy_label=repair.get_strategy_display(),
                approach=repair.approach,
            )
            for repair in repairs
        ),
    )


def _measure_series(
    code: str,
    responses: Sequence[Response],
    *,
    low_alliance_below: int,
    cutoffs: Mapping[str, int],
) -> MeasureSeries:
    """One panel from one instrument's responses, already in chronological order."""
    # A practice may have answered several versions of one instrument: name and reliable
    # change come from the newest, the scale spans them all.
    instruments = {response.instrument.pk: response.instrument for response in responses}
    newest = max(instruments.values(), key=lambda i: i.version)
    lows: list[int] = []
    highs: list[int] = []
    for instrument in instruments.values():
        scored = [item for item in instrument.items.all() if item.scored]
        lows.append(sum(item.scale_min for item in scored))
        highs.append(sum(item.scale_max for item in scored))
    points = tuple(
        ScorePoint(
            response=response,
            at=response.completed_at,
            total=response.total,
            band=response.band,
            episode_id=response.episode_id,
        )
        for response in responses
    )
    if code == FEEDBACK_CODE:
        threshold: int | None = low_alliance_below
        threshold_label = f"Alert threshold {low_alliance_below}"
    else:
        threshold = cutoffs.get(code) if newest.kind == Instrument.Kind.OUTCOME else None
        threshold_label = f"Clinical cutoff {threshold}" if threshold is not None else ""
    reliable_change = float(newest.reliable_change) if newest.reliable_change is not None else None
    return MeasureSeries(
        code=code,
        name=newest.name,
        kind=newest.kind,
        scale_min=min(lows),
        scale_max=max(highs),
        points=points,
        threshold=threshold,
        threshold_label=threshold_label,
        reliable_change=reliable_change,
        reliable_change_bands=_reliable_change_bands(points, reliable_change),
    )


def _reliable_change_bands(
    points: Sequence[ScorePoint], reliable_change: float | None
) -> tuple[ReliableChangeBand, ...]:
    if reliable_change is None:
        return ()
    # Each episode has its own baseline: a client who returns starts from where they are.
    baselines: list[ScorePoint] = []
    seen: set[int] = set()
    for point in points:
        if point.episode_id not in seen:
            seen.add(point.episode_id)
            baselines.append(point)
    return tuple(
        ReliableChangeBand(
            baseline=first.total,
            lower=first.total - reliable_change,
            upper=first.total + reliable_change,
            since=first.at,
            until=following.at if following is not None else None,
        )
        for first, following in zip(baselines, [*baselines[1:], None], strict=True)
    )


# --- Drawing it --------------------------------------------------------------------------

WIDTH = 720
LEFT = 68  # room for the y labels and the marker rows' names
RIGHT = 16
PLOT_WIDTH = WIDTH - LEFT - RIGHT
TOP = 8
HEADING = 22  # a panel's name above its plot
PLOT_HEIGHT = 110
PANEL_GAP = 14
ROW_HEIGHT = 18  # one row of markers: sessions, flags, repairs
AXIS_HEIGHT = 24
LEGEND_ROW = 18
MAX_X_TICKS = 8
MAX_Y_INTERVALS = 5

INK = "#222222"
GRID = "#d9d9d9"
FEEDBACK_COLOUR = "#1f5f8b"
OUTCOME_COLOUR = "#6a3d9a"
SESSION_COLOUR = "#555555"
MISSED_COLOUR = "#a4161a"
FLAG_COLOUR = "#c25e00"
SAFETY_COLOUR = "#b00020"
REPAIR_COLOUR = "#2e7d32"
BAND_FILL = "#888888"

THRESHOLD_DASH = "2 3"
OUTCOME_DASH = "7 4"


@dataclass(frozen=True)
class _Look:
    shape: str
    colour: str
    label: str


LOOKS: dict[str, _Look] = {
    "feedback": _Look("circle", FEEDBACK_COLOUR, "Session feedback"),
    "outcome": _Look("square", OUTCOME_COLOUR, "Outcome measure"),
    "attended": _Look("tick", SESSION_COLOUR, "Attended"),
    "no_show": _Look("cross", MISSED_COLOUR, "No-show"),
    "late_cancelled": _Look("triangle-down-hollow", MISSED_COLOUR, "Late cancellation"),
    "cancelled": _Look("circle-hollow", SESSION_COLOUR, "Cancelled"),
    "flag": _Look("triangle-down", FLAG_COLOUR, "Rupture flag"),
    "safety": _Look("diamond", SAFETY_COLOUR, "Safety flag"),
    "repair": _Look("triangle-up-hollow", REPAIR_COLOUR, "Repair"),
}
SESSION_LOOK: dict[str, str] = {
    Status.ATTENDED: "attended",
    Status.NO_SHOW: "no_show",
    Status.LATE_CANCELLED: "late_cancelled",
    Status.CANCELLED_BY_CLIENT: "cancelled",
    Status.CANCELLED_BY_CLINICIAN: "cancelled",
}

Attr = str | int | float


def timeline_svg(
    data: TimelineData,
    *,
    href_for_response: ResponseHref | None = None,
    href_for_flag: FlagHref | None = None,
) -> SafeString:
    """The timeline chart as an inline ``<svg>``, or an empty SafeString when there is
    nothing to draw (the template then says so in words).

    Makes no queries; the href callables are called once per point or marker, and an empty
    string from them means "no link". A repair links to its flag.
    """
    if data.is_empty:
        return SafeString("")
    zone = zoneinfo.ZoneInfo(data.timezone)
    axis = _TimeAxis.spanning(data.moments())
    session_marks = [mark for mark in data.sessions if mark.status in SESSION_LOOK]
    rows: list[tuple[str, Sequence[SessionMark] | Sequence[FlagMark] | Sequence[RepairMark]]] = [
        (name, marks)
        for name, marks in (
            ("Sessions", session_marks),
            ("Flags", data.flags),
            ("Repairs", data.repairs),
        )
        if marks
    ]

    y = TOP
    panel_tops: list[float] = []
    for _measure in data.measures:
        panel_tops.append(y + HEADING)
        y += HEADING + PLOT_HEIGHT + PANEL_GAP
    row_centres: dict[str, float] = {}
    for name, _marks in rows:
        row_centres[name] = y + ROW_HEIGHT / 2
        y += ROW_HEIGHT
    axis_y = y + 4
    y = axis_y + AXIS_HEIGHT
    legend, legend_height = _legend(data, y)
    height = y + legend_height + 6

    parts: list[SafeString] = [
        _tag("title", {}, escape(f"Measures and sessions over time: {data.client_name}")),
        _tag("desc", {}, escape(_summary(data, zone))),
    ]
    ticks = _date_ticks(axis.start, axis.end, zone)
    # Date gridlines behind everything, from the first panel down to the axis.
    for moment, _label in ticks:
        x = axis.x(moment)
        parts.append(
            _tag(
                "line",
                {"x1": x, "x2": x, "y1": TOP + HEADING, "y2": axis_y, "stroke": GRID},
            )
        )
    for measure, top in zip(data.measures, panel_tops, strict=True):
        parts.append(_panel(measure, top, axis, zone, href_for_response))
    for name, marks in rows:
        parts.append(_marker_row(name, marks, row_centres[name], axis, zone, href_for_flag))
    parts.append(_date_axis(ticks, axis, axis_y))
    parts.append(legend)

    # role="group", not "img": an image's children are presentational, so the links on the
    # points and markers would vanish for screen readers (axe: nested-interactive). The
    # <title> still names the chart and the <desc> still summarises it.
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" role="group" '
        'width="100%" viewBox="0 0 {} {}" font-family="system-ui, sans-serif" '
        'font-size="11" fill="{}">{}</svg>',
        WIDTH,
        _n(height),
        INK,
        _join(parts),
    )


@dataclass(frozen=True)
class _TimeAxis:
    start: datetime
    end: datetime

    @classmethod
    def spanning(cls, moments: Sequence[datetime]) -> _TimeAxis:
        first, last = min(moments), max(moments)
        # Keep the first and last points off the frame; a single day still gets some width.
        pad = max((last - first) * 0.04, timedelta(days=1))
        return cls(first - pad, last + pad)

    def x(self, moment: datetime) -> float:
        return LEFT + (moment - self.start) / (self.end - self.start) * PLOT_WIDTH


@dataclass(frozen=True)
class _ValueAxis:
    low: int
    high: int
    top: float

    @classmethod
    def for_measure(cls, measure: MeasureSeries, top: float) -> _ValueAxis:
        totals = [point.total for point in measure.points]
        # A total outside the instrument's scale (an edited instrument) still shows.
        low = min(measure.scale_min, *totals)
        high = max(measure.scale_max, *totals)
        return cls(low, high if high > low else low + 1, top)

    @property
    def bottom(self) -> float:
        return self.top + PLOT_HEIGHT

    def y(self, value: float) -> float:
        clamped = min(max(value, self.low), self.high)
        return self.bottom - (clamped - self.low) / (self.high - self.low) * PLOT_HEIGHT


def _panel(
    measure: MeasureSeries,
    top: float,
    axis: _TimeAxis,
    zone: zoneinfo.ZoneInfo,
    href_for_response: ResponseHref | None,
) -> SafeString:
    values = _ValueAxis.for_measure(measure, top)
    look = LOOKS["feedback" if measure.kind == Instrument.Kind.ALLIANCE else "outcome"]
    dash = {} if measure.kind == Instrument.Kind.ALLIANCE else {"stroke-dasharray": OUTCOME_DASH}
    parts: list[SafeString] = [
        _tag(
            "text",
            {"x": LEFT, "y": top - 7, "font-size": 13, "font-weight": "bold"},
            escape(measure.name),
        ),
        _tag(
            "rect",
            {
                "class": "plot",
                "x": LEFT,
                "y": top,
                "width": PLOT_WIDTH,
                "height": PLOT_HEIGHT,
                "fill": "none",
                "stroke": GRID,
            },
        ),
    ]
    note = _panel_note(measure)
    if note:
        # What the lines mean, in the heading row: inside the plot it would cover points.
        parts.append(
            _tag(
                "text",
                {
                    "class": "panel-note",
                    "x": LEFT + PLOT_WIDTH,
                    "y": top - 7,
                    "text-anchor": "end",
                    "font-size": 10,
                },
                escape(note),
            )
        )
    for value in _value_ticks(values.low, values.high):
        y = values.y(value)
        parts.append(
            _tag(
                "text",
                {"x": LEFT - 6, "y": y + 4, "text-anchor": "end", "font-size": 10},
                escape(str(value)),
            )
        )
        if value not in (values.low, values.high):
            parts.append(
                _tag(
                    "line", {"x1": LEFT, "x2": LEFT + PLOT_WIDTH, "y1": y, "y2": y, "stroke": GRID}
                )
            )

    for band in measure.reliable_change_bands:
        x1 = axis.x(band.since)
        x2 = axis.x(band.until) if band.until is not None else LEFT + PLOT_WIDTH
        y1, y2 = values.y(band.upper), values.y(band.lower)
        spread = _num(band.upper - band.baseline)
        title = f"Reliable change band: first score {band.baseline} ± {spread}"
        parts.append(
            _tag(
                "g",
                {"class": "rc-band", "data-baseline": band.baseline},
                _tag("title", {}, escape(title)),
                _tag(
                    "rect",
                    {
                        "x": x1,
                        "y": y1,
                        "width": max(x2 - x1, 1),
                        "height": y2 - y1,
                        "fill": BAND_FILL,
                        "fill-opacity": 0.18,
                    },
                ),
                # Dotted edges, so the band survives a printer that drops light greys.
                *(
                    _tag(
                        "line",
                        {
                            "x1": x1,
                            "x2": x2,
                            "y1": edge,
                            "y2": edge,
                            "stroke": BAND_FILL,
                            "stroke-dasharray": "1 2",
                        },
                    )
                    for edge in (y1, y2)
                ),
            )
        )

    if measure.threshold is not None:
        y = values.y(measure.threshold)
        parts.append(
            _tag(
                "g",
                {"class": "threshold", "data-value": measure.threshold},
                _tag("title", {}, escape(measure.threshold_label)),
                _tag(
                    "line",
                    {
                        "x1": LEFT,
                        "x2": LEFT + PLOT_WIDTH,
                        "y1": y,
                        "y2": y,
                        "stroke": INK,
                        "stroke-width": 1.2,
                        "stroke-dasharray": THRESHOLD_DASH,
                    },
                ),
            )
        )

    # One line per episode: a new episode starts a new course, not a continuation.
    for _episode, group in itertools.groupby(measure.points, key=lambda p: p.episode_id):
        episode_points = list(group)
        if len(episode_points) < 2:
            continue
        parts.append(
            _tag(
                "polyline",
                {
                    "class": "trend",
                    "points": " ".join(
                        f"{_n(axis.x(p.at))},{_n(values.y(p.total))}" for p in episode_points
                    ),
                    "fill": "none",
                    "stroke": look.colour,
                    "stroke-width": 2,
                    "stroke-linejoin": "round",
                    **dash,
                },
            )
        )

    for point in measure.points:
        text = f"{_day(point.at, zone)}: {point.total}/{measure.scale_max}"
        if point.band:
            text += f" ({point.band})"
        href = href_for_response(point.response) if href_for_response else ""
        parts.append(
            _linked(
                href,
                {"class": "point", "data-total": point.total},
                _tag("title", {}, escape(text)),
                _shape(look.shape, axis.x(point.at), values.y(point.total), look.colour),
            )
        )

    return _tag("g", {"class": "panel", "data-instrument": measure.code}, *parts)


def _panel_note(measure: MeasureSeries) -> str:
    notes = [
        f"{measure.threshold_label} (dotted line)" if measure.threshold is not None else "",
        f"reliable change ±{_num(measure.reliable_change)} (shaded)"
        if measure.reliable_change_bands and measure.reliable_change is not None
        else "",
    ]
    text = ", ".join(note for note in notes if note)
    return text[:1].upper() + text[1:]


def _marker_row(
    name: str,
    marks: Sequence[SessionMark] | Sequence[FlagMark] | Sequence[RepairMark],
    centre: float,
    axis: _TimeAxis,
    zone: zoneinfo.ZoneInfo,
    href_for_flag: FlagHref | None,
) -> SafeString:
    parts: list[SafeString] = [
        _tag(
            "text",
            {"x": LEFT - 6, "y": centre + 4, "text-anchor": "end", "font-size": 10},
            escape(name),
        ),
        _tag(
            "line",
            {"x1": LEFT, "x2": LEFT + PLOT_WIDTH, "y1": centre, "y2": centre, "stroke": GRID},
        ),
    ]
    for mark in marks:
        day = _day(mark.at, zone)
        href = ""
        if isinstance(mark, SessionMark):
            key = SESSION_LOOK[mark.status]
            text = f"{day}: {mark.status_label}"
        elif isinstance(mark, FlagMark):
            key = "safety" if mark.is_safety else "flag"
            text = f"{day}: {mark.rule_label} ({mark.status_label.lower()})"
            if mark.summary:
                text += f". {mark.summary}"
            href = href_for_flag(mark.flag) if href_for_flag else ""
        else:
            key = "repair"
            text = f"{day}: Repair, {mark.approach.lower()}: {mark.strategy_label}"
            href = href_for_flag(mark.flag) if href_for_flag else ""
        look = LOOKS[key]
        parts.append(
            _linked(
                href,
                {"class": f"marker marker-{key.replace('_', '-')}"},
                _tag("title", {}, escape(text)),
                _shape(look.shape, axis.x(mark.at), centre, look.colour),
            )
        )
    return _tag("g", {"class": f"row row-{name.lower()}"}, *parts)


def _date_axis(ticks: Sequence[tuple[datetime, str]], axis: _TimeAxis, y: float) -> SafeString:
    parts: list[SafeString] = [
        _tag("line", {"x1": LEFT, "x2": LEFT + PLOT_WIDTH, "y1": y, "y2": y, "stroke": INK})
    ]
    for moment, label in ticks:
        x = axis.x(moment)
        # Labels at the edges are anchored inwards, so they stay inside the viewBox.
        anchor = "end" if x > WIDTH - 40 else "middle"
        parts.append(_tag("line", {"x1": x, "x2": x, "y1": y, "y2": y + 4, "stroke": INK}))
        parts.append(
            _tag(
                "text",
                {"x": x, "y": y + 16, "text-anchor": anchor, "font-size": 10},
                escape(label),
            )
        )
    return _tag("g", {"class": "date-axis"}, *parts)


def _legend(data: TimelineData, top: float) -> tuple[SafeString, float]:
    """A legend of what this chart shows (not of everything it could), and its height."""
    entries: list[tuple[SafeString, str]] = []

    def swatch_line(colour: str, dash: str | None, shape: str | None) -> SafeString:
        attrs: dict[str, Attr] = {"x1": 0, "x2": 22, "y1": 0, "y2": 0, "stroke": colour}
        attrs["stroke-width"] = 2 if shape else 1.2
        if dash:
            attrs["stroke-dasharray"] = dash
        line = _tag("line", attrs)
        return _join([line, _shape(shape, 11, 0, colour)]) if shape else line

    kinds = {measure.kind for measure in data.measures}
    if Instrument.Kind.ALLIANCE in kinds:
        look = LOOKS["feedback"]
        label = look.label if any(m.is_feedback for m in data.measures) else "Alliance measure"
        entries.append((swatch_line(look.colour, None, look.shape), label))
    if Instrument.Kind.OUTCOME in kinds:
        look = LOOKS["outcome"]
        entries.append((swatch_line(look.colour, OUTCOME_DASH, look.shape), look.label))
    if any(measure.threshold is not None for measure in data.measures):
        label = (
            "Alert threshold or clinical cutoff"
            if any(m.threshold is not None and not m.is_feedback for m in data.measures)
            else "Alert threshold"
        )
        entries.append((swatch_line(INK, THRESHOLD_DASH, None), label))
    if any(measure.reliable_change_bands for measure in data.measures):
        band = _tag(
            "rect",
            {
                "x": 0,
                "y": -5,
                "width": 22,
                "height": 10,
                "fill": BAND_FILL,
                "fill-opacity": 0.18,
                "stroke": BAND_FILL,
                "stroke-dasharray": "1 2",
            },
        )
        entries.append((band, "Reliable change from first score"))
    shown = {SESSION_LOOK[m.status] for m in data.sessions if m.status in SESSION_LOOK}
    shown |= {"safety" if m.is_safety else "flag" for m in data.flags}
    if data.repairs:
        shown.add("repair")
    for key in ("attended", "no_show", "late_cancelled", "cancelled", "flag", "safety", "repair"):
        if key in shown:
            look = LOOKS[key]
            entries.append((_shape(look.shape, 11, 0, look.colour), look.label))

    parts: list[SafeString] = []
    x, row = float(LEFT), 0
    for swatch, label in entries:
        width = 30 + len(label) * 5.8 + 14
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, row = float(LEFT), row + 1
        y = top + row * LEGEND_ROW + LEGEND_ROW / 2
        parts.append(
            _tag(
                "g",
                {"transform": f"translate({_n(x)} {_n(y)})"},
                swatch,
                _tag("text", {"x": 30, "y": 4, "font-size": 10}, escape(label)),
            )
        )
        x += width
    height = (row + 1) * LEGEND_ROW if entries else 0
    return _tag("g", {"class": "legend"}, *parts), height


def _summary(data: TimelineData, zone: zoneinfo.ZoneInfo) -> str:
    """The chart in words, for the <desc>: what a screen reader says instead of the image."""
    sentences: list[str] = []
    for measure in data.measures:
        first, latest = measure.points[0], measure.points[-1]
        out_of = f"/{measure.scale_max}"
        if measure.is_feedback:
            text = f"{measure.name}: {_count(len(measure.points), 'session')}"
        else:
            text = f"{measure.name}: {_count(len(measure.points), 'response')}"
            if len(measure.points) > 1:
                text += f", first {first.total}{out_of}"
        text += f", latest {latest.total}{out_of}"
        if latest.band:
            text += f" ({latest.band})"
        if measure.threshold is not None:
            text += f", {measure.threshold_label[0].lower()}{measure.threshold_label[1:]}"
        if measure.reliable_change is not None:
            text += f", reliable change {_num(measure.reliable_change)} points"
        sentences.append(text + ".")
    if data.sessions:
        counts: dict[str, int] = {}
        for mark in data.sessions:
            counts[mark.status] = counts.get(mark.status, 0) + 1
        cancelled = counts.get(Status.CANCELLED_BY_CLIENT, 0) + counts.get(
            Status.CANCELLED_BY_CLINICIAN, 0
        )
        sentences.append(
            "Sessions: "
            + ", ".join(
                [
                    f"{counts.get(Status.ATTENDED, 0)} attended",
                    _count(counts.get(Status.NO_SHOW, 0), "no-show"),
                    _count(counts.get(Status.LATE_CANCELLED, 0), "late cancellation"),
                    f"{cancelled} cancelled",
                ]
            )
            + "."
        )
    if data.flags:
        safety = sum(1 for mark in data.flags if mark.is_safety)
        text = f"{_count(len(data.flags), 'rupture flag')}"
        if safety:
            text += f", {safety} of them safety"
        sentences.append(text + ".")
    if data.repairs:
        sentences.append(f"{_count(len(data.repairs), 'repair')}.")
    moments = data.moments()
    first_day, last_day = _day(min(moments), zone), _day(max(moments), zone)
    sentences.append(
        f"On {first_day}." if first_day == last_day else f"From {first_day} to {last_day}."
    )
    return " ".join(sentences)


# --- Scales ------------------------------------------------------------------------------

# (unit, how many, roughly how many days): the first that gives at most MAX_X_TICKS wins.
_DATE_STEPS: tuple[tuple[str, int, float], ...] = (
    ("day", 1, 1),
    ("day", 2, 2),
    ("week", 1, 7),
    ("week", 2, 14),
    ("month", 1, 30.44),
    ("month", 2, 60.88),
    ("month", 3, 91.31),
    ("month", 6, 182.62),
    *(("year", n, 365.25 * n) for n in (1, 2, 5, 10, 20, 50, 100)),
)


def _date_ticks(
    start: datetime, end: datetime, zone: zoneinfo.ZoneInfo
) -> list[tuple[datetime, str]]:
    """Local midnights on round dates (days, Mondays, first of the month, New Year) between
    ``start`` and ``end``, with their labels."""
    span_days = (end - start) / timedelta(days=1)
    unit, step, _days = next(
        (s for s in _DATE_STEPS if span_days / s[2] <= MAX_X_TICKS), _DATE_STEPS[-1]
    )
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days: Iterable[date]
    if unit == "day":
        days = (
            first + timedelta(days=n)
            for n in range((last - first).days + 1)
            if (first + timedelta(days=n)).toordinal() % step == 0
        )
        label = "j M" if first.year == last.year else "j M Y"
    elif unit == "week":
        monday = first + timedelta(days=-first.weekday() % 7)
        days = (
            monday + timedelta(weeks=n)
            for n in range((last - monday).days // 7 + 1)
            if ((monday + timedelta(weeks=n)).toordinal() // 7) % step == 0
        )
        label = "j M" if first.year == last.year else "j M Y"
    elif unit == "month":
        months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
        days = (date(m // 12, m % 12 + 1, 1) for m in months if (m % 12) % step == 0)
        label = "M Y"
    else:
        days = (date(y, 1, 1) for y in range(first.year, last.year + 1) if y % step == 0)
        label = "Y"
    ticks = []
    for day in days:
        moment = datetime.combine(day, time(), tzinfo=zone)
        if start <= moment <= end:
            ticks.append((moment, dateformat.format(moment, label)))
    return ticks


def _value_ticks(low: int, high: int) -> list[int]:
    """Round values from ``low`` to ``high``, always both ends; a round value too close to
    the top (where labels would overlap) gives way to the top."""
    span = high - low
    step = next(
        m * 10**k
        for k in itertools.count()
        for m in (1, 2, 5)
        if span / (m * 10**k) <= MAX_Y_INTERVALS
    )
    first = -(-low // step) * step
    values = [v for v in range(first, high + 1, step) if (high - v) / span * PLOT_HEIGHT >= 12]
    if low not in values:
        values.insert(0, low)
    return [*values, high]


# --- SVG helpers -------------------------------------------------------------------------


def _shape(shape: str, x: float, y: float, colour: str) -> SafeString:
    """A marker centred on (x, y). Shapes, not only colours, tell the markers apart."""
    if shape == "circle":
        return _tag(
            "circle",
            {"cx": x, "cy": y, "r": 4, "fill": colour, "stroke": "#ffffff", "stroke-width": 1},
        )
    if shape == "circle-hollow":
        return _tag(
            "circle",
            {"cx": x, "cy": y, "r": 4, "fill": "#ffffff", "stroke": colour, "stroke-width": 1.5},
        )
    if shape == "square":
        return _tag(
            "rect",
            {
                "x": x - 3.5,
                "y": y - 3.5,
                "width": 7,
                "height": 7,
                "fill": colour,
                "stroke": "#ffffff",
                "stroke-width": 1,
            },
        )
    if shape == "tick":
        return _tag(
            "line",
            {"x1": x, "x2": x, "y1": y - 5, "y2": y + 5, "stroke": colour, "stroke-width": 1.5},
        )
    if shape == "cross":
        return _tag(
            "path",
            {
                "d": f"M{_n(x - 4)} {_n(y - 4)}L{_n(x + 4)} {_n(y + 4)}"
                f"M{_n(x - 4)} {_n(y + 4)}L{_n(x + 4)} {_n(y - 4)}",
                "stroke": colour,
                "stroke-width": 2,
                "fill": "none",
            },
        )
    corners = {
        "triangle-down": [(-5, -4), (5, -4), (0, 5)],
        "triangle-down-hollow": [(-5, -4), (5, -4), (0, 5)],
        "triangle-up-hollow": [(-5, 4), (5, 4), (0, -5)],
        "diamond": [(0, -6), (6, 0), (0, 6), (-6, 0)],
    }[shape]
    hollow = shape.endswith("-hollow")
    return _tag(
        "polygon",
        {
            "points": " ".join(f"{_n(x + dx)},{_n(y + dy)}" for dx, dy in corners),
            "fill": "#ffffff" if hollow else colour,
            "stroke": colour if hollow or shape != "diamond" else INK,
            "stroke-width": 1.5,
        },
    )


def _linked(href: str, attrs: Mapping[str, Attr], *children: SafeString) -> SafeString:
    if href:
        return _tag("a", {"href": href, **attrs}, *children)
    return _tag("g", attrs, *children)


def _tag(name: str, attrs: Mapping[str, Attr], *children: SafeString) -> SafeString:
    """An element; every attribute value and the children's text are escaped on the way."""
    rendered = format_html_join("", ' {}="{}"', ((key, _n(v)) for key, v in attrs.items()))
    if not children:
        return format_html("<{}{}/>", name, rendered)
    return format_html("<{}{}>{}</{}>", name, rendered, _join(children), name)


def _join(parts: Iterable[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def _n(value: Attr) -> str:
    """A coordinate with at most two decimals (``12``, ``12.5``); other values as they are."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _num(value: float) -> str:
    return f"{value:g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _day(moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    return dateformat.format(moment.astimezone(zone), "j M Y")
