"""Numbers, money and times in a team's locale; the SVG charts (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from service.ui import charts, fmt

NBSP = "\u00a0"


def test_numbers_follow_the_team_locale() -> None:
    berlin, shanghai, paris = (fmt.locale_for(z) for z in
                               ("Europe/Berlin", "Asia/Shanghai", "Europe/Paris"))
    assert fmt.number(1234567.891, berlin, 2) == "1.234.567,89"
    assert fmt.number(1234567.891, shanghai, 2) == "1,234,567.89"
    assert fmt.number(1234.5, paris, 1) == "1\u202f234,5"
    assert fmt.money(1234.5, "EUR", berlin) == f"1.234,50{NBSP}€"
    assert fmt.money(-100, "CNY", shanghai) == f"{fmt.MINUS}¥100.00"
    assert fmt.money(45000, "KRW", fmt.locale_for("Asia/Seoul")) == "₩45,000"
    assert fmt.percent(0.2534, berlin) == f"25,3{NBSP}%"
    assert fmt.percent(0.2534, shanghai) == "25.3%"
    assert fmt.number(None, berlin) == fmt.DASH


def test_unknown_zones_read_like_en_us() -> None:
    loc = fmt.locale_for("America/Chicago")
    assert loc.tag == "en-US"
    assert fmt.money(12.5, "XYZ", loc) == f"XYZ{NBSP}12.50"


def test_times_are_shown_in_the_team_time_zone() -> None:
    moment = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
    assert fmt.moment(moment, "Asia/Shanghai", fmt.locale_for("Asia/Shanghai")) \
        == "2026/11/05 10:00 CST"
    assert fmt.moment(moment.isoformat(), "Europe/Berlin", fmt.locale_for("Europe/Berlin")) \
        == "05.11.2026, 03:00 CET"
    assert fmt.day(moment, "Europe/Berlin", fmt.locale_for("Europe/Berlin")) == "05.11.2026"


def test_a_line_chart_describes_itself_and_escapes_text() -> None:
    svg = charts.line_chart(
        "Conversion <script>", [charts.Point("Aug", 0.1), charts.Point("Sep", None),
                                charts.Point("Oct", 0.3)],
        lambda v: f"{v:.0%}", target=0.3)
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Aug: 10%, Sep: no data, Oct: 30%" in svg
    assert "target 30%" in svg
    assert "<polyline" not in svg  # a gap leaves no segment of two points to draw


def test_a_chart_without_data_says_so() -> None:
    svg = charts.line_chart("Empty", [charts.Point("Aug", None)], str)
    assert "no data yet" in svg


def test_a_bar_chart_labels_each_month() -> None:
    svg = charts.bar_chart("Score", [charts.Point("Aug", 80.0), charts.Point("Sep", None)],
                           lambda v: f"{v:.1f}", notes=["#2", ""])
    assert svg.count("<rect") == 1
    assert "80.0 · #2" in svg and "Sep: no result" in svg
