"""Numbers, money and times in a team's locale; the SVG charts (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.i18n import formatting_locale
from service.ui import charts, fmt, page_language, reasons, render

NBSP = "\u00a0"


def test_numbers_follow_the_reader_and_the_team() -> None:
    """The issue's examples: 1.234,50 € in Berlin, ¥1,234.50 in Shanghai, 2026년 11월."""
    berlin = formatting_locale("en", None, "Europe/Berlin")  # English, German conventions
    shanghai = formatting_locale("zh_Hans", None, "Asia/Shanghai")
    seoul = formatting_locale("ko", None, "Asia/Seoul")
    assert fmt.number(1234567.891, berlin, 2) == "1.234.567,89"
    assert fmt.number(1234567.891, shanghai, 2) == "1,234,567.89"
    assert fmt.money(1234.5, "EUR", berlin) == f"1.234,50{NBSP}€"
    assert fmt.money(1234.5, "CNY", shanghai) == "¥1,234.50"
    assert fmt.money(-100, "CNY", shanghai) == "-¥100.00"
    assert fmt.money(45000, "KRW", seoul) == "₩45,000"  # no minor units (CLDR)
    assert fmt.percent(0.2534, berlin) == f"25,3{NBSP}%"
    assert fmt.percent(0.2534, shanghai) == "25.3%"
    assert fmt.month(2026, 11, seoul) == "2026년 11월"
    assert fmt.month(2026, 11, shanghai) == "2026年11月"
    assert fmt.number(None, berlin) == fmt.DASH


def test_a_team_locale_wins_for_its_own_language_only() -> None:
    assert str(formatting_locale("en", "en_GB", "Asia/Shanghai")) == "en_GB"
    # A Korean reader of a German team: Korean has no German variant in CLDR, so plain Korean.
    assert str(formatting_locale("ko", "de_DE", "Europe/Berlin")) == "ko"
    assert str(formatting_locale("en", None, "America/Chicago")) == "en_US"
    assert str(formatting_locale("en", None, "UTC")) == "en"
    assert fmt.money(12.5, "XYZ", formatting_locale("en", None, "UTC")).endswith("12.50")


def test_times_are_shown_in_the_team_time_zone() -> None:
    moment = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
    shanghai = formatting_locale("zh_Hans", None, "Asia/Shanghai")
    berlin = formatting_locale("en", None, "Europe/Berlin")
    assert fmt.moment(moment, "Asia/Shanghai", shanghai) == "2026年11月5日 10:00 CST"
    assert fmt.moment(moment.isoformat(), "Europe/Berlin", berlin) == "5 Nov 2026, 03:00 CET"
    assert fmt.day(moment, "Europe/Berlin", berlin) == "5 Nov 2026"


def test_a_line_chart_describes_itself_and_escapes_text() -> None:
    svg = charts.line_chart(
        "Conversion <script>", [charts.Point("Aug", 0.1), charts.Point("Sep", None),
                                charts.Point("Oct", 0.3)],
        lambda v: f"{v:.0%}", target=0.3)
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Aug: 10%, Sep: no data, Oct: 30%" in svg
    assert "target 30%" in svg
    assert '<text class="target-label"' in svg and "&lt;text" not in svg  # drawn, not shown
    assert "<polyline" not in svg  # a gap leaves no segment of two points to draw


def test_a_chart_without_data_says_so() -> None:
    svg = charts.line_chart("Empty", [charts.Point("Aug", None)], str)
    assert 'class="chart-empty">no data yet</text>' in svg


def test_a_bar_chart_labels_each_month() -> None:
    svg = charts.bar_chart("Score", [charts.Point("Aug", 80.0), charts.Point("Sep", None)],
                           lambda v: f"{v:.1f}", notes=["#2", ""])
    assert svg.count("<rect") == 1
    assert "80.0 · #2" in svg and "Sep: no result" in svg


def test_a_month_warning_is_said_again_in_the_page_language() -> None:
    warning = {"kind": "interviews_overdue", "missing": [{}, {}],
               "detail": "2 feedback interview(s) not held yet; they were due within a week"}
    with page_language.asked_for("ko"):  # what UiRoute does for a page asked in Korean
        assert render.warning_text(warning) == \
            "아직 열리지 않은 피드백 면담 2건; 공개 후 1주 이내에 열렸어야 합니다"
        assert render.warning_text({"kind": "new_kind", "detail": "as the API says"}) \
            == "as the API says"
    assert render.warning_text({"kind": "plans_overdue", "plans": [{}]}) == \
        "1 improvement plan is past its deadline unsubmitted"


@pytest.mark.parametrize(("stored", "korean"), [
    ("first place: rank 1 of 6", "1위: 6명 중 1위"),
    ("last place: rank 5 of 6, tied (places 5-6)", "최하위: 6명 중 5위, 동점(5-6위)"),
    ("bottom two (places 5-6 of 6): rank 6 of 6; a plan is due 7 days after publication",
     "하위 2위(6명 중 5-6위): 6명 중 6위; 공개 후 7일 이내에 계획 제출"),
    ("last place in 3 consecutive published months: rank 6 of 6 this month",
     "공개된 3개월 연속 최하위: 이번 달 6명 중 6위"),
    ("active 9 of 30 days", "30일 중 9일 근무"),
    ("a reason HR typed <b>", "a reason HR typed <b>"),  # unknown shape: as stored
])
def test_a_ledger_reason_is_said_again_in_the_page_language(stored: str, korean: str) -> None:
    with page_language.asked_for("ko"):
        assert reasons.reason_text(stored) == korean
    assert reasons.reason_text(stored) == stored  # English: the words the domain wrote


def test_a_refusal_writes_its_days_and_instants_in_the_page_language() -> None:
    message = ("the appeal window of %(team)s/%(period)s closed at %(until)s (%(days)s days"
               " after the release)")
    values = {"team": "t1", "period": "2026-11", "until": "2026-12-10T09:05:00+00:00",
              "days": 5}
    with page_language.asked_for("ko"):
        korean = page_language.said(message, values)
        day = page_language.said("%(day)s", {"day": "2026-12-07"})
    with page_language.asked_for("en"):
        english = page_language.said(message, values)
    # Translated, with the instant as Korean writes it (오전: before noon), in UTC as the
    # API gives it; the month and the other values stay as they are.
    assert "2026-12-10T" not in korean and "오전" in korean and "UTC" in korean
    assert "t1/2026-11" in korean and "5" in korean
    assert "Dec 10, 2026" in english and "9:05" in english and "UTC" in english
    assert day != "2026-12-07" and "2026" in day and "12" in day and "7" in day
    # Text that only looks like a date starts a longer value: left alone.
    with page_language.asked_for("ko"):
        assert page_language.said("%(x)s", {"x": "2026-12-07 or later"}) == "2026-12-07 or later"
