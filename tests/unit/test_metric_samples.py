"""Live metric samples: which are usable, where they belong, and feed monitoring (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain import cycle as c
from service.domain import metrics as m
from service.domain.directory import Agent, Membership
from service.domain.kpis import MetricDef
from service.domain.periods import period_of
from service.domain.scheme import DEFAULT_SCHEME
from service.domain.team_metrics import declared as declared_metrics
from service.store.metrics import CYCLE_STATUS_EVENTS

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SEOUL = ZoneInfo("Asia/Seoul")
ZONES = {"seoul": SEOUL, "utc": ZoneInfo("UTC")}


def sample(metric: str = "consultations", value: float = 1.0,
           at: datetime = NOW - timedelta(hours=1), agent_id: str = "a-1") -> m.Sample:
    return m.Sample(id="s-1", agent_id=agent_id, metric=metric, value=value, occurred_at=at)


def agent(*stretches: tuple[str, datetime, datetime | None]) -> Agent:
    history = tuple(Membership(team, since, until) for team, since, until in stretches)
    return Agent("a-1", "A", history[-1].team_id, None, history)


@pytest.mark.parametrize(
    ("s", "reason"),
    [
        (sample(value=math.nan), m.NON_FINITE_VALUE),
        (sample(value=math.inf), m.NON_FINITE_VALUE),
        (sample(value=-1.0), m.NEGATIVE_VALUE),
        (sample(metric="order_amount", value=-0.01), m.NEGATIVE_VALUE),
        (sample(value=2e12), m.VALUE_TOO_LARGE),
        (sample(at=NOW + timedelta(days=1, seconds=1)), m.IN_FUTURE),
        (sample(at=datetime(1999, 12, 31, 23, 59, tzinfo=UTC)), m.TOO_OLD),
    ],
)
def test_unusable_samples_are_named(s: m.Sample, reason: str) -> None:
    rejection = m.check(s, NOW)
    assert rejection is not None and rejection.reason == reason and rejection.detail


def test_a_metric_is_judged_by_what_the_team_s_scheme_declares() -> None:
    declared = declared_metrics(DEFAULT_SCHEME)
    # An undeclared metric: unknown, kept and replayable (the detail says so)
    unknown = m.undeclared(sample(metric="likes"), "t", declared)
    assert unknown is not None and unknown.reason == m.UNKNOWN_METRIC
    assert "replayed" in unknown.detail
    # A count (unit "count") takes whole numbers only; an amount takes cents
    fractional = m.undeclared(sample(value=1.5), "t", declared)
    assert fractional is not None and fractional.reason == m.FRACTIONAL_COUNT
    assert m.undeclared(sample(metric="order_amount", value=12.34), "t", declared) is None
    # A scheme that declares a new metric takes it
    attendance = DEFAULT_SCHEME.model_copy(update={"metrics": (
        *DEFAULT_SCHEME.metrics, MetricDef(name="days_present", unit="count"))})
    assert m.undeclared(sample(metric="days_present"), "t", declared_metrics(attendance)) is None


@pytest.mark.parametrize(
    "s",
    [
        sample(),
        sample(value=0.0),
        sample(metric="order_amount", value=12.34),
        sample(metric="response_time_seconds", value=12.4),
        sample(at=NOW + timedelta(hours=23)),  # a clock a little ahead is tolerated
    ],
)
def test_usable_samples_pass(s: m.Sample) -> None:
    assert m.check(s, NOW) is None


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (datetime(2026, 11, 1, 0, 30, tzinfo=SEOUL), "2026-11"),
        (datetime(2026, 10, 31, 15, 30, tzinfo=UTC), "2026-11"),  # the same moment, in UTC
        (datetime(2026, 10, 31, 23, 59, tzinfo=SEOUL), "2026-10"),
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=SEOUL), "2026-11"),
        (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), "2026-12"),
    ],
)
def test_the_month_is_the_teams_calendar_month(at: datetime, period: str) -> None:
    where = m.place(sample(at=at), agent(("seoul", datetime(2026, 1, 1, tzinfo=UTC), None)),
                    ZONES)
    assert where == ("seoul", period)


def test_a_sample_counts_for_the_team_of_its_time() -> None:
    moved = datetime(2026, 11, 15, tzinfo=UTC)
    transferred = agent(("seoul", datetime(2026, 11, 5, tzinfo=UTC), moved), ("utc", moved, None))
    cases = {
        datetime(2026, 11, 1, tzinfo=UTC): "seoul",  # before registration: the first team
        datetime(2026, 11, 10, tzinfo=UTC): "seoul",
        moved - timedelta(microseconds=1): "seoul",
        moved: "utc",
        datetime(2026, 11, 20, tzinfo=UTC): "utc",
    }
    for at, team in cases.items():
        where = m.place(sample(at=at), transferred, ZONES)
        assert not isinstance(where, m.Rejection) and where[0] == team, at


@given(st.datetimes(datetime(1999, 6, 1), datetime(2028, 6, 1), timezones=st.just(UTC)),
       st.timedeltas(timedelta(0), timedelta(days=90)), st.floats(0, 1))
def test_the_months_spanned_hold_every_plausible_time_in_every_zone(
        first: datetime, length: timedelta, where: float) -> None:
    # What ingestion locks and places by (service/store/metrics.py): the month of any plausible
    # time of the stretch, in the earliest and the latest time zone there is, is among them.
    last = first + length
    months = m.months_spanned(first, last, NOW)
    at = first + length * where
    if m.check(sample(at=at), NOW) is None:
        for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):
            assert period_of(at, ZoneInfo(zone)) in months
    if all(m.check(sample(at=t), NOW) is not None for t in (first, last)) \
            and (last < m.EARLIEST or first > NOW + m.MAX_FUTURE):
        assert months == []
    assert months == sorted(set(months)) and len(months) <= length.days // 28 + 3


_OFFSETS = st.timedeltas(timedelta(hours=-23, minutes=-59), timedelta(hours=23, minutes=59))


@given(st.lists(st.tuples(
    st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)),
    st.one_of(_OFFSETS.map(timezone), st.sampled_from([UTC, SEOUL, ZoneInfo("Europe/Paris")]))),
    max_size=30))
def test_epochs_are_the_times_timestamps(times: list[tuple[datetime, tzinfo]]) -> None:
    # What the stage takes: the same seconds as datetime.timestamp, to the bit, for fixed
    # offsets (subtracted from the epoch in their own offset) and zones with rules alike, in
    # batches mixing several of each.
    aware = [local.replace(tzinfo=zone) for local, zone in times]
    assert m.epochs(aware) == [at.timestamp() for at in aware]


def test_an_unknown_agent_is_rejected() -> None:
    rejection = m.place(sample(agent_id="ghost"), None, ZONES)
    assert isinstance(rejection, m.Rejection) and rejection.reason == m.UNKNOWN_AGENT
    assert "ghost" in rejection.detail


@pytest.mark.parametrize(("status", "refused"),
                         [(None, False), ("open", False), ("closed", True), ("published", True)])
def test_closed_months_refuse_late_samples(status: str | None, refused: bool) -> None:
    rejection = m.late("seoul", "2026-10", status)
    assert (rejection is not None) is refused
    if rejection is not None:
        assert rejection.reason == m.PERIOD_CLOSED and status is not None
        assert status in rejection.detail


@pytest.mark.parametrize("value", [12.5, math.inf, -math.inf, math.nan])
def test_raw_round_trips(value: float) -> None:
    original = m.Sample(id="s-9", agent_id="a-1", metric="order_amount", value=value,
                        occurred_at=datetime(2026, 11, 3, 9, 15, 2, tzinfo=SEOUL))
    back = m.from_raw(m.to_raw(original))
    assert back["occurred_at"] == original["occurred_at"]
    assert back["occurred_at"].utcoffset() == timedelta(hours=9)
    assert (back["value"] == value) or (math.isnan(back["value"]) and math.isnan(value))


def test_status_events_are_the_cycles_own() -> None:
    names = {cls.model_fields["type"].default for cls in
             (c.CycleOpened, c.CycleClosed, c.CyclePublished, c.CycleReopened)}
    assert set(CYCLE_STATUS_EVENTS) == names


def test_the_default_scheme_needs_every_metric() -> None:
    needed = m.scheme_inputs(DEFAULT_SCHEME)
    assert set(needed) == {x.name for x in DEFAULT_SCHEME.metrics}
    assert needed["consultations"] == ["churn_rate", "conversion_rate"]


def test_quiet_feeds_are_flagged_after_the_quiet_time() -> None:
    opened = NOW - timedelta(hours=5)
    quiet = timedelta(minutes=120)
    last = {"consultations": NOW - timedelta(minutes=10),
            "conversions": NOW - timedelta(minutes=121)}
    needed = {"consultations": ["conversion_rate"], "conversions": ["conversion_rate"],
              "orders": ["payment_ratio"]}
    warnings = m.quiet_feeds(needed, last, opened, NOW, quiet)
    by_metric = {w["metric"]: w for w in warnings}
    assert set(by_metric) == {"conversions", "orders"}
    assert by_metric["conversions"]["last_received_at"] == last["conversions"].isoformat()
    assert by_metric["orders"]["last_received_at"] is None
    assert by_metric["orders"]["kind"] == "metric_feed_quiet"
    assert "conversion_rate" in by_metric["conversions"]["kpis"]
    # A cycle opened a moment ago gives its feeds the quiet time to start.
    assert m.quiet_feeds({"orders": []}, {}, NOW - timedelta(minutes=5), NOW, quiet) == []
