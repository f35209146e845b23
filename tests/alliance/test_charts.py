from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.safestring import SafeString
from pytest_django import DjangoAssertNumQueries

from alliance import charts
from alliance.charts import timeline_data, timeline_svg
from alliance.models import (
    Instrument,
    InstrumentItem,
    RepairAction,
    Response,
    RuptureFlag,
)
from alliance.scoring import score
from practice.models import Client, Episode, User
from scheduling.models import Appointment, Status
from tests.factories import EpisodeFactory, book

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
SVG = "http://www.w3.org/2000/svg"
NS = {"s": SVG}
Rule = RuptureFlag.Rule


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def episode(client_record: Client) -> Episode:
    client_record.episodes.update(opened_on=days_ago(400).date())
    return client_record.episodes.get()


# History builders (after tests/alliance/test_rules.py)


def instrument(code: str) -> Instrument:
    return Instrument.objects.with_scoring_rules().get(code=code)


def respond(
    episode: Episode,
    code: str,
    answers: dict[str, object],
    at: datetime,
    appointment: Appointment | None = None,
) -> Response:
    measure = instrument(code)
    result = score(measure, answers)
    return Response.objects.create(
        instrument=measure,
        instrument_version=measure.version,
        client=episode.client,
        episode=episode,
        appointment=appointment,
        answers=result.answers,
        total=result.total,
        subscales=result.subscales,
        band=result.band,
        safety_triggered=result.safety_triggered,
        completed_at=at,
        collected_via=Response.Via.LINK,
    )


def feedback(episode: Episode, total: int, at: datetime) -> Response:
    """Session feedback adding up to `total` of 40."""
    parts = [min(10, max(0, total - 10 * n)) for n in range(4)]
    keys = ["relationship", "goals_topics", "approach", "overall"]
    return respond(episode, "session-feedback", dict(zip(keys, parts, strict=True)), at)


def phq9(episode: Episode, total: int, at: datetime, item9: int = 0) -> Response:
    rest = total - item9
    parts = [min(3, max(0, rest - 3 * n)) for n in range(8)]
    answers: dict[str, object] = {f"phq9_{n}": v for n, v in enumerate([*parts, item9], start=1)}
    return respond(episode, "phq-9", answers, at)


def gad7(episode: Episode, total: int, at: datetime) -> Response:
    parts = [min(3, max(0, total - 3 * n)) for n in range(7)]
    return respond(episode, "gad-7", {f"gad7_{n}": v for n, v in enumerate(parts, start=1)}, at)


def session(
    clinician: User, episode: Episode, at: datetime, status: str = Status.ATTENDED
) -> Appointment:
    return book(clinician, episode.client, at, status=status, status_changed_at=at)


def flag(
    episode: Episode, at: datetime, rule: str = Rule.LOW_ALLIANCE, summary: str = "Low score."
) -> RuptureFlag:
    return RuptureFlag.objects.create(
        practice=episode.client.practice,
        episode=episode,
        client=episode.client,
        clinician=episode.clinician,
        rule=rule,
        severity=RuptureFlag.SEVERITY[rule],
        trigger_key=f"test:{at.timestamp()}:{rule}",
        evidence={"summary": summary},
        raised_at=at,
    )


def repair(rupture: RuptureFlag, by: User, at: datetime) -> RepairAction:
    return RepairAction.objects.create(
        flag=rupture,
        by=by,
        performed_at=at,
        strategy=RepairAction.Strategy.INVITE_EXPLORATION,
        description="Asked what felt off.",
        client_response="Said the homework felt like a test.",
    )


def chart(
    client: Client,
    href_for_response: charts.ResponseHref | None = None,
    href_for_flag: charts.FlagHref | None = None,
) -> SafeString:
    data = timeline_data(client, low_alliance_below=36)
    return timeline_svg(data, href_for_response=href_for_response, href_for_flag=href_for_flag)


# Reading the SVG


def parse(svg: str) -> ET.Element:
    # The chart is inline SVG in HTML, but it is also well-formed XML: parse it as such.
    # Our own output, not untrusted input.
    return ET.fromstring(svg)  # noqa: S314


def has_class(element: ET.Element, name: str) -> bool:
    return name in (element.get("class") or "").split()


def with_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [element for element in root.iter() if has_class(element, name)]


def panel(root: ET.Element, code: str) -> ET.Element:
    found = root.find(f".//s:g[@data-instrument='{code}']", NS)
    assert found is not None, f"no panel for {code}"
    return found


def title_of(element: ET.Element) -> str:
    title = element.find("s:title", NS)
    assert title is not None and title.text
    return title.text


def plot_box(panel_element: ET.Element) -> tuple[float, float]:
    """Top and bottom of a panel's plot area."""
    [rect] = with_class(panel_element, "plot")
    top = float(rect.get("y", ""))
    return top, top + float(rect.get("height", ""))


def y_for(panel_element: ET.Element, value: float, high: float, low: float = 0) -> float:
    top, bottom = plot_box(panel_element)
    return bottom - (value - low) / (high - low) * (bottom - top)


def point_centre(point: ET.Element) -> tuple[float, float]:
    shape = point.find("s:circle", NS)
    if shape is not None:
        return float(shape.get("cx", "")), float(shape.get("cy", ""))
    rect = point.find("s:rect", NS)
    assert rect is not None
    return (
        float(rect.get("x", "")) + float(rect.get("width", "")) / 2,
        float(rect.get("y", "")) + float(rect.get("height", "")) / 2,
    )


def corners(marker: ET.Element) -> int:
    polygon = marker.find("s:polygon", NS)
    assert polygon is not None
    return len(polygon.get("points", "").split())


def markers(root: ET.Element, kind: str) -> list[ET.Element]:
    return with_class(root, f"marker-{kind}")


@pytest.fixture
def history(clinician: User, episode: Episode) -> dict[str, object]:
    """Three weeks: feedback each session, PHQ-9 twice, a no-show, a rupture and a repair."""
    first = session(clinician, episode, days_ago(21))
    feedback(episode, 38, days_ago(21) + timedelta(hours=2))
    phq9(episode, 18, days_ago(21) - timedelta(hours=20))
    session(clinician, episode, days_ago(14), Status.NO_SHOW)
    session(clinician, episode, days_ago(7))
    low = feedback(episode, 31, days_ago(7) + timedelta(hours=2))
    rupture = flag(episode, days_ago(7) + timedelta(hours=3))
    action = repair(rupture, clinician, days_ago(0.5))
    phq9(episode, 9, days_ago(1))
    return {"first": first, "low": low, "rupture": rupture, "repair": action}


# Nothing to draw


def test_it_returns_an_empty_safe_string_without_any_history(client_record: Client) -> None:
    data = timeline_data(client_record, low_alliance_below=36)
    assert data.is_empty
    svg = timeline_svg(data)
    assert svg == ""
    assert isinstance(svg, SafeString)


def test_booked_sessions_ahead_alone_draw_nothing(clinician: User, episode: Episode) -> None:
    session(clinician, episode, NOW + timedelta(days=3), Status.SCHEDULED)
    assert chart(episode.client) == ""


# Session feedback


def test_it_draws_the_alert_threshold_at_36_of_40(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    feedback_panel = panel(root, "session-feedback")
    [threshold] = with_class(feedback_panel, "threshold")
    line = threshold.find("s:line", NS)
    assert line is not None
    assert float(line.get("y1", "")) == pytest.approx(y_for(feedback_panel, 36, 40), abs=0.01)
    assert line.get("y1") == line.get("y2")
    assert line.get("stroke-dasharray")
    assert "Alert threshold 36" in ET.tostring(threshold, encoding="unicode")


def test_the_threshold_is_the_practice_setting(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(timeline_svg(timeline_data(low.client, low_alliance_below=30)))
    feedback_panel = panel(root, "session-feedback")
    [threshold] = with_class(feedback_panel, "threshold")
    assert threshold.get("data-value") == "30"
    line = threshold.find("s:line", NS)
    assert line is not None
    assert float(line.get("y1", "")) == pytest.approx(y_for(feedback_panel, 30, 40), abs=0.01)


def test_it_draws_a_point_per_response_with_its_date_and_score(
    history: dict[str, object],
) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    points = with_class(panel(root, "session-feedback"), "point")
    assert [title_of(p) for p in points] == ["19 Feb 2026: 38/40", "5 Mar 2026: 31/40"]
    _x, y = point_centre(points[1])
    assert y == pytest.approx(y_for(panel(root, "session-feedback"), 31, 40), abs=0.01)
    assert len(with_class(panel(root, "session-feedback"), "trend")) == 1


def test_points_link_to_their_response_when_given_an_href(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    svg = chart(low.client, href_for_response=lambda r: f"/responses/{r.pk}/")
    points = with_class(panel(parse(svg), "session-feedback"), "point")
    assert all(p.tag == f"{{{SVG}}}a" for p in points)
    assert points[1].get("href") == f"/responses/{low.pk}/"


def test_without_hrefs_nothing_is_a_link(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    assert "<a " not in chart(low.client)


def test_a_single_response_is_one_point_and_no_line(episode: Episode) -> None:
    feedback(episode, 33, days_ago(2))
    root = parse(chart(episode.client))
    feedback_panel = panel(root, "session-feedback")
    assert len(with_class(feedback_panel, "point")) == 1
    assert with_class(feedback_panel, "trend") == []


def test_totals_at_zero_and_at_the_maximum_sit_on_the_plot_edges(episode: Episode) -> None:
    feedback(episode, 0, days_ago(14))
    feedback(episode, 40, days_ago(7))
    feedback_panel = panel(parse(chart(episode.client)), "session-feedback")
    top, bottom = plot_box(feedback_panel)
    zero, full = with_class(feedback_panel, "point")
    assert point_centre(zero)[1] == pytest.approx(bottom)
    assert point_centre(full)[1] == pytest.approx(top)


def test_responses_on_one_day_stay_inside_the_plot(episode: Episode) -> None:
    feedback(episode, 30, days_ago(1))
    feedback(episode, 35, days_ago(1) + timedelta(hours=1))
    root = parse(chart(episode.client))
    xs = [point_centre(p)[0] for p in with_class(root, "point")]
    assert len(xs) == 2
    assert all(charts.LEFT < x < charts.LEFT + charts.PLOT_WIDTH for x in xs)
    assert xs[0] < xs[1]
    [axis] = with_class(root, "date-axis")
    assert [t.text for t in axis.iter(f"{{{SVG}}}text")] == ["11 Mar", "12 Mar"]


def test_dates_spanning_years_get_few_ticks_with_their_years(
    clinician: User, client_record: Client
) -> None:
    old = client_record.episodes.get()
    old.opened_on = datetime(2022, 1, 1, tzinfo=UTC).date()
    old.save()
    feedback(old, 40, datetime(2022, 3, 1, 10, tzinfo=UTC))
    feedback(old, 20, NOW)
    root = parse(chart(client_record))
    [axis] = with_class(root, "date-axis")
    labels = [t.text or "" for t in axis.iter(f"{{{SVG}}}text")]
    assert 2 <= len(labels) <= charts.MAX_X_TICKS + 1
    assert all(label[-4:].isdigit() for label in labels)
    assert "2024" in " ".join(labels)
    xs = [point_centre(p)[0] for p in with_class(root, "point")]
    assert all(charts.LEFT < x < charts.LEFT + charts.PLOT_WIDTH for x in xs)


# Outcome measures


def test_the_reliable_change_band_spans_the_first_phq9_score_plus_minus_6(
    history: dict[str, object],
) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    phq = panel(root, "phq-9")
    [band] = with_class(phq, "rc-band")
    assert band.get("data-baseline") == "18"
    rect = band.find("s:rect", NS)
    assert rect is not None
    top = float(rect.get("y", ""))
    assert top == pytest.approx(y_for(phq, 24, 27), abs=0.01)
    assert top + float(rect.get("height", "")) == pytest.approx(y_for(phq, 12, 27), abs=0.01)
    assert title_of(band) == "Reliable change band: first score 18 ± 6"


def test_outcome_measures_show_their_clinical_cutoff_and_scale(
    history: dict[str, object],
) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    phq = panel(root, "phq-9")
    [cutoff] = with_class(phq, "threshold")
    line = cutoff.find("s:line", NS)
    assert line is not None
    assert float(line.get("y1", "")) == pytest.approx(y_for(phq, 10, 27), abs=0.01)
    assert title_of(cutoff) == "Clinical cutoff 10"
    titles = [title_of(p) for p in with_class(phq, "point")]
    assert titles == ["18 Feb 2026: 18/27 (moderately severe)", "11 Mar 2026: 9/27 (mild)"]
    # Outcome trends are dashed, feedback is solid: they differ in print as well.
    [trend] = with_class(phq, "trend")
    assert trend.get("stroke-dasharray")
    [solid] = with_class(panel(root, "session-feedback"), "trend")
    assert solid.get("stroke-dasharray") is None


def test_each_outcome_measure_gets_its_own_panel_in_order(episode: Episode) -> None:
    gad7(episode, 21, days_ago(3))
    phq9(episode, 5, days_ago(3))
    feedback(episode, 39, days_ago(2))
    root = parse(chart(episode.client))
    codes = [g.get("data-instrument") for g in with_class(root, "panel")]
    assert codes == ["session-feedback", "gad-7", "phq-9"]
    gad = panel(root, "gad-7")
    [point] = with_class(gad, "point")
    assert title_of(point) == "9 Mar 2026: 21/21 (severe)"
    assert point_centre(point)[1] == pytest.approx(plot_box(gad)[0])
    [band] = with_class(gad, "rc-band")
    assert title_of(band) == "Reliable change band: first score 21 ± 4"


def test_an_instrument_without_a_known_cutoff_has_no_cutoff_line(
    practice: object, episode: Episode
) -> None:
    own = Instrument.objects.create(
        practice=episode.client.practice,
        code="k-2",
        name="Two-item check",
        kind=Instrument.Kind.OUTCOME,
    )
    for position in (1, 2):
        InstrumentItem.objects.create(
            instrument=own, position=position, key=f"k{position}", wording="How?", scale_max=4
        )
    respond(episode, "k-2", {"k1": 4, "k2": 2}, days_ago(1))
    root = parse(chart(episode.client))
    own_panel = panel(root, "k-2")
    assert with_class(own_panel, "threshold") == []
    assert with_class(own_panel, "rc-band") == []
    [point] = with_class(own_panel, "point")
    assert title_of(point) == "11 Mar 2026: 6/8"


def test_a_returning_client_gets_a_new_baseline_per_episode(
    clinician: User, episode: Episode
) -> None:
    phq9(episode, 20, days_ago(200))
    phq9(episode, 8, days_ago(150))
    episode.close(reason=Episode.CloseReason.COMPLETED, on=days_ago(140).date())
    second = EpisodeFactory.create(
        client=episode.client, clinician=clinician, opened_on=days_ago(30).date()
    )
    phq9(second, 15, days_ago(20))
    phq9(second, 12, days_ago(10))
    phq = panel(parse(chart(episode.client)), "phq-9")
    assert [b.get("data-baseline") for b in with_class(phq, "rc-band")] == ["20", "15"]
    # Two courses, two lines: the gap between episodes is not joined up.
    assert len(with_class(phq, "trend")) == 2


# Markers


def test_markers_for_a_no_show_a_rupture_and_a_repair_have_titles_and_links(
    history: dict[str, object],
) -> None:
    rupture = history["rupture"]
    assert isinstance(rupture, RuptureFlag)
    svg = chart(rupture.client, href_for_flag=lambda f: f"/flags/{f.pk}/")
    root = parse(svg)
    [no_show] = markers(root, "no-show")
    assert title_of(no_show) == "26 Feb 2026: No-show"
    assert no_show.tag == f"{{{SVG}}}g"
    [flag_marker] = markers(root, "flag")
    assert title_of(flag_marker) == "5 Mar 2026: Low alliance (open). Low score."
    assert flag_marker.get("href") == f"/flags/{rupture.pk}/"
    [repair_marker] = markers(root, "repair")
    assert title_of(repair_marker) == (
        "11 Mar 2026: Repair, exploratory: Invite exploration of the rupture"
    )
    assert repair_marker.get("href") == f"/flags/{rupture.pk}/"
    assert [title_of(m) for m in markers(root, "attended")] == [
        "19 Feb 2026: Attended",
        "5 Mar 2026: Attended",
    ]


def test_markers_share_the_x_axis_with_the_points(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    [session_day] = [m for m in markers(root, "attended") if "5 Mar" in title_of(m)]
    tick = session_day.find("s:line", NS)
    assert tick is not None
    [point] = [p for p in with_class(root, "point") if "31/40" in title_of(p)]
    [rupture] = markers(root, "flag")
    flag_corner = rupture.find("s:polygon", NS)
    assert flag_corner is not None
    # Session at 9:00, feedback at 11:00, the flag at 12:00: in that order, close together.
    session_x = float(tick.get("x1", ""))
    point_x = point_centre(point)[0]
    flag_x = float(flag_corner.get("points", "").split()[2].split(",")[0])  # the tip
    assert session_x < point_x < flag_x < session_x + 5


def test_safety_flags_and_cancellations_look_different(clinician: User, episode: Episode) -> None:
    phq9(episode, 12, days_ago(3), item9=1)
    flag(episode, days_ago(3), Rule.SAFETY, "PHQ-9 item 9 answered 1.")
    flag(episode, days_ago(5), Rule.TWO_MISSED, "Two missed.")
    session(clinician, episode, days_ago(10), Status.LATE_CANCELLED)
    session(clinician, episode, days_ago(9), Status.CANCELLED_BY_CLIENT)
    session(clinician, episode, days_ago(8), Status.CANCELLED_BY_CLINICIAN)
    root = parse(chart(episode.client))
    [safety] = markers(root, "safety")
    [rupture] = markers(root, "flag")
    assert title_of(safety).startswith("9 Mar 2026: Safety (open)")
    # Different shapes, not only different colours: a diamond and a triangle.
    assert corners(safety) == 4
    assert corners(rupture) == 3
    [late] = markers(root, "late-cancelled")
    assert title_of(late) == "2 Mar 2026: Late-cancelled"
    assert [title_of(m) for m in markers(root, "cancelled")] == [
        "3 Mar 2026: Cancelled by the client",
        "4 Mar 2026: Cancelled by the clinician",
    ]


# Accessible, printable, safe


def test_the_svg_scales_and_describes_itself(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    root = parse(chart(low.client))
    assert root.tag == f"{{{SVG}}}svg"
    assert root.get("role") == "group"  # not "img": that would hide the links inside
    assert root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 720 ")
    assert title_of(root).startswith("Measures and sessions over time: ")
    desc = root.find("s:desc", NS)
    assert desc is not None and desc.text
    assert "Session feedback: 2 sessions, latest 31/40, alert threshold 36." in desc.text
    assert (
        "PHQ-9: 2 responses, first 18/27, latest 9/27 (mild), clinical cutoff 10, "
        "reliable change 6 points." in desc.text
    )
    assert "Sessions: 2 attended, 1 no-show, 0 late cancellations, 0 cancelled." in desc.text
    assert "1 rupture flag." in desc.text
    assert "1 repair." in desc.text
    assert "From 18 Feb 2026 to 11 Mar 2026." in desc.text
    legend = " ".join(t.text or "" for t in with_class(root, "legend")[0].iter(f"{{{SVG}}}text"))
    for label in ("Session feedback", "Outcome measure", "No-show", "Rupture flag", "Repair"):
        assert label in legend
    assert "Safety flag" not in legend


def test_it_has_no_inline_styles_and_no_scripts(history: dict[str, object]) -> None:
    low = history["low"]
    assert isinstance(low, Response)
    svg = chart(
        low.client,
        href_for_response=lambda r: f"/responses/{r.pk}/",
        href_for_flag=lambda f: f"/flags/{f.pk}/",
    )
    assert "style=" not in svg
    assert "<style" not in svg
    assert "<script" not in svg
    assert "javascript:" not in svg
    assert re.search(r"\son[a-z]+=", svg) is None  # no onclick= and friends


def test_text_is_escaped(clinician: User, client_record: Client, episode: Episode) -> None:
    client_record.first_name = "<b>Erin</b>"
    client_record.save()
    feedback(episode, 30, days_ago(2))
    flag(episode, days_ago(2), summary='<b>Angry</b> & "rushed"')
    svg = chart(client_record, href_for_flag=lambda f: '/flags/?a=1&b="x"')
    assert "<b>" not in svg
    assert "&lt;b&gt;Erin&lt;/b&gt;" in svg
    assert "&lt;b&gt;Angry&lt;/b&gt; &amp; &quot;rushed&quot;" in svg
    root = parse(svg)
    [marker] = markers(root, "flag")
    assert marker.get("href") == '/flags/?a=1&b="x"'
    assert title_of(root) == "Measures and sessions over time: <b>Erin</b> " + (
        client_record.last_name
    )


# Queries


def build_sessions(clinician: User, episode: Episode, start: int, count: int) -> None:
    for n in range(start, start + count):
        at = datetime(2025, 1, 6, 9, tzinfo=UTC) + timedelta(weeks=n)
        session(clinician, episode, at, Status.NO_SHOW if n % 5 == 4 else Status.ATTENDED)
        feedback(episode, 30 + n % 10, at + timedelta(hours=2))
        if n % 4 == 0:
            phq9(episode, 20 - n % 15, at - timedelta(hours=12))
            gad7(episode, 15 - n % 10, at - timedelta(hours=12))
        if n % 3 == 1:
            rupture = flag(episode, at + timedelta(hours=3))
            repair(rupture, clinician, at + timedelta(days=7))


def count_queries(client: Client) -> tuple[int, charts.TimelineData]:
    fresh = Client.objects.select_related("practice").get(pk=client.pk)
    with CaptureQueriesContext(connection) as queries:
        data = timeline_data(fresh, low_alliance_below=36)
    return len(queries), data


def test_timeline_data_reads_in_the_same_queries_for_2_and_20_sessions(
    clinician: User, episode: Episode
) -> None:
    build_sessions(clinician, episode, 0, 2)
    few, data = count_queries(episode.client)
    assert len(data.sessions) == 2

    build_sessions(clinician, episode, 2, 18)
    many, data = count_queries(episode.client)
    assert len(data.sessions) == 20
    assert [m.code for m in data.measures] == ["session-feedback", "gad-7", "phq-9"]
    assert len(data.flags) == len(data.repairs) == 7

    assert few == many == 5


def test_timeline_svg_makes_no_queries(
    clinician: User, episode: Episode, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    build_sessions(clinician, episode, 0, 6)
    data = timeline_data(episode.client, low_alliance_below=36)
    with django_assert_num_queries(0):
        svg = timeline_svg(
            data,
            href_for_response=lambda r: f"/responses/{r.pk}/",
            href_for_flag=lambda f: f"/flags/{f.pk}/",
        )
    assert svg.count('class="point"') == 6 + 2 + 2


def test_it_reads_every_episode_of_the_client_and_no_one_else(
    clinician: User, episode: Episode, other_clinician: User, practice: object
) -> None:
    feedback(episode, 35, days_ago(100))
    episode.close(reason=Episode.CloseReason.TRANSFERRED, on=days_ago(90).date())
    second = EpisodeFactory.create(
        client=episode.client, clinician=other_clinician, opened_on=days_ago(60).date()
    )
    feedback(second, 37, days_ago(10))
    stranger = EpisodeFactory.create(client__practice=episode.client.practice, clinician=clinician)
    feedback(stranger, 12, days_ago(5))
    data = timeline_data(episode.client, low_alliance_below=36)
    [measure] = data.measures
    assert [p.total for p in measure.points] == [35, 37]
