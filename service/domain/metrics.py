"""Live metric samples: which ones can be used, and where each belongs (team and period).

Pure: the caller looks up agents, time zones and cycle statuses and passes them in. A sample
that is well-formed but unusable is *rejected* with a reason and kept in the quarantine by the
caller; nothing here drops data.

A sample is a plain dict (``Sample`` is a TypedDict), and a batch on its way to the database
is five columns (``Samples``): tens of thousands arrive a second, and building an object for
each would cost more than everything else this module does to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, ConfigDict, Field, Strict, with_config
from typing_extensions import TypedDict

from service.domain.directory import Agent, team_at
from service.domain.ids import ID_PATTERN
from service.domain.kpis import COUNT_UNIT
from service.domain.periods import period_of
from service.domain.scheme import Scheme
from service.domain.team_metrics import Declared
from service.domain.text import PRINTABLE_PATTERN

#: Largest batch POST /v1/metrics takes; more is refused as a whole.
MAX_BATCH = 10_000
#: Clocks drift and time zones get mislabelled, but not by more than this.
MAX_FUTURE = timedelta(days=1)
#: Older than this is a broken clock or a unit mix-up (milliseconds read as seconds).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: No single observation is this large; it bounds every sum far below float overflow.
MAX_VALUE = 1e12
#: The longest sample id and metric name, in characters (the API refuses longer; the batch's
#: staging table relies on it: service/store/metrics.py STAGE).
SAMPLE_ID_MAX = 128
METRIC_MAX = 64


# Reasons a well-formed sample is not used: stable codes clients can switch on.
UNKNOWN_AGENT = "unknown_agent"
UNKNOWN_METRIC = "unknown_metric"
NEGATIVE_VALUE = "negative_value"
NON_FINITE_VALUE = "non_finite_value"
FRACTIONAL_COUNT = "fractional_count"
VALUE_TOO_LARGE = "value_too_large"
IN_FUTURE = "in_future"
TOO_OLD = "too_old"
PERIOD_CLOSED = "period_closed"
PERIOD_UNAVAILABLE = "period_unavailable"
REASONS: tuple[str, ...] = (
    UNKNOWN_AGENT, UNKNOWN_METRIC, NEGATIVE_VALUE, NON_FINITE_VALUE, FRACTIONAL_COUNT,
    VALUE_TOO_LARGE, IN_FUTURE, TOO_OLD, PERIOD_CLOSED, PERIOD_UNAVAILABLE,
)
#: Reasons that say the timestamp itself is unusable: such a sample has no month to belong to.
UNPLACEABLE: frozenset[str] = frozenset({IN_FUTURE, TOO_OLD})
#: The reasons ``check`` gives: the value or the time alone make the sample unusable.
VALUE_OR_TIME: frozenset[str] = frozenset(
    {NON_FINITE_VALUE, NEGATIVE_VALUE, VALUE_TOO_LARGE, *UNPLACEABLE})


@with_config(ConfigDict(extra="forbid"))
class Sample(TypedDict):
    """One observation as a source sent it. Numbers and times are strict: no strings, booleans
    or epochs."""

    id: Annotated[str, Field(
        min_length=1, max_length=SAMPLE_ID_MAX, pattern=PRINTABLE_PATTERN,
        examples=["conv-81723-r4"],
        description="With the source, the idempotency key: sent twice, counted once.")]
    agent_id: Annotated[str, Field(pattern=ID_PATTERN, examples=["a-17"])]
    metric: Annotated[str, Field(
        min_length=1, max_length=METRIC_MAX, pattern=PRINTABLE_PATTERN,
        examples=["response_time_seconds"],
        description="A metric the scheme of the agent's team declares; another name is"
                    " rejected (and kept, to replay once a scheme version declares it).")]
    value: Annotated[float, Strict(), Field(examples=[12.4])]
    occurred_at: Annotated[AwareDatetime, Strict(), Field(
        examples=["2026-11-03T09:15:02+09:00"], description="ISO 8601 with an offset.")]


@dataclass(frozen=True, slots=True)
class Samples:
    """A batch of samples as columns: the i-th sample is the i-th item of each list.

    Five lists a batch instead of a dict a sample: no allocation per sample, and nothing for
    the garbage collector to walk; ``batch[i]`` builds one sample, for the few refused.
    """

    ids: list[str]
    agent_ids: list[str]
    metrics: list[str]
    values: list[float]
    times: list[datetime]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        return Sample(id=self.ids[index], agent_id=self.agent_ids[index],
                      metric=self.metrics[index], value=self.values[index],
                      occurred_at=self.times[index])

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Samples:
        """Return the columns of samples given one by one."""
        listed = list(samples)
        return cls([s["id"] for s in listed], [s["agent_id"] for s in listed],
                   [s["metric"] for s in listed], [s["value"] for s in listed],
                   [s["occurred_at"] for s in listed])


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a sample cannot be used, as a code and in words."""

    reason: str
    detail: str


def period_unavailable(period: str) -> Rejection:
    """Return the rejection of a sample whose month has no storage (not made yet, archived)."""
    return Rejection(
        PERIOD_UNAVAILABLE,
        f"samples of {period} are not stored: the month is archived or not prepared yet"
        " (the service prepares the coming months ahead); kept for replay",
    )


def unknown_agent(agent_id: str) -> Rejection:
    """Return the rejection of a sample whose agent is not registered."""
    return Rejection(UNKNOWN_AGENT, f"agent {agent_id} is not registered")


def check(sample: Sample, now: datetime) -> Rejection | None:
    """Return why a sample's value or time makes it unusable, or None (its metric is judged
    once placed, against what its team's scheme declares: ``undeclared``).

    Ingestion checks the value here and the time in SQL (service/store/metrics.py,
    ``_TIME_USABLE``), and words either answer here."""
    value = sample["value"]
    if not 0 <= value <= MAX_VALUE:  # also false for NaN
        if not math.isfinite(value):
            return Rejection(NON_FINITE_VALUE, "the value must be a finite number")
        if value < 0:
            return Rejection(NEGATIVE_VALUE, f"{sample['metric']} cannot be negative")
        return Rejection(VALUE_TOO_LARGE, f"the value must be at most {MAX_VALUE:.0e}")
    at = sample["occurred_at"]
    if at > now + MAX_FUTURE:
        return Rejection(IN_FUTURE, "occurred_at is more than a day in the future")
    if at < EARLIEST:
        return Rejection(TOO_OLD, "occurred_at is before 2000-01-01")
    return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epochs(times: Iterable[datetime]) -> list[float]:
    """Return each time as seconds since the epoch, exactly as ``datetime.timestamp`` does.

    ``timestamp`` asks the time and the epoch for their offsets and subtracts naive copies,
    for every time; two times of one tzinfo object subtract as their wall times, with no
    offset asked. A batch's times share a few fixed offsets (as parsed, one object each), so
    each is subtracted from the epoch written in its own offset, made once a batch: the same
    whole microseconds, for 0.27 instead of 0.62 µs a time (the bench's bodies). Only a fixed
    offset (``datetime.timezone``) has one wall-clock epoch; any other tzinfo takes
    ``timestamp``.
    """
    bases: dict[tzinfo | None, datetime] = {}
    found = []
    for at in times:
        zone = at.tzinfo
        base = bases.get(zone)
        if base is None:
            if type(zone) is not timezone:
                found.append(at.timestamp())
                continue
            base = bases[zone] = _EPOCH.astimezone(zone)
        found.append((at - base).total_seconds())
    return found


def months_spanned(first: datetime, last: datetime, now: datetime) -> list[str]:
    """Return the calendar months (YYYY-MM, in UTC) from a day before the first plausible
    time between first and last to a day after the last: every month, in any time zone,
    that a plausible sample of that stretch can fall in (none when none can be plausible).
    """
    first = max(first, EARLIEST).astimezone(UTC) - timedelta(days=1)
    last = min(last, now + MAX_FUTURE).astimezone(UTC) + timedelta(days=1)
    if last - first < timedelta(days=2):  # no plausible time between them
        return []
    index, end = first.year * 12 + first.month - 1, last.year * 12 + last.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index, end + 1)]


def place(
    sample: Sample, agent: Agent | None, zones: Mapping[str, ZoneInfo]
) -> tuple[str, str] | Rejection:
    """Return the team the agent was in when the sample occurred, and that team's month.

    A sample from before the agent was registered counts toward their first team (the
    directory's rule: they were working before someone entered them).
    """
    if agent is None:
        return unknown_agent(sample["agent_id"])
    at = sample["occurred_at"]
    history = agent.history
    # One team ever (nearly everyone): that team, before registration included.
    team_id = history[0].team_id if len(history) == 1 else team_at(agent, at)
    if team_id is None:  # unreachable while histories have no gaps; never guess a team
        return Rejection(UNKNOWN_AGENT, f"agent {sample['agent_id']} had no team then")
    return team_id, period_of(at, zones[team_id])


def undeclared(sample: Sample, team_id: str, declared: Mapping[str, Declared]
               ) -> Rejection | None:
    """Refuse a sample of a metric the team's scheme does not declare, or a fractional count.

    Ingestion applies this rule in SQL over the declarations it is given (service/store/
    metrics.py, ``accepts``) and words its answer here.
    """
    metric = sample["metric"]
    found = declared.get(metric)
    if found is None:
        return Rejection(UNKNOWN_METRIC, f"{metric!r} is not a metric the scheme of team"
                         f" {team_id} declares; it is kept and can be replayed once a scheme"
                         " version declares it")
    if found.unit == COUNT_UNIT and not float(sample["value"]).is_integer():
        return Rejection(FRACTIONAL_COUNT, f"{metric} counts whole occurrences")
    return None


def late(team_id: str, period: str, status: str | None) -> Rejection | None:
    """Refuse a sample whose team month is closed or published: the result is frozen."""
    if status in ("closed", "published"):
        return Rejection(
            PERIOD_CLOSED,
            f"the cycle {team_id}/{period} is {status}; late samples are kept and reported"
            " but never change its result",
        )
    return None


def to_raw(sample: Sample) -> dict[str, Any]:
    """Return the sample as JSON-safe data for the quarantine (non-finite values as text)."""
    value = sample["value"]
    return {
        "id": sample["id"],
        "agent_id": sample["agent_id"],
        "metric": sample["metric"],
        "value": value if math.isfinite(value) else str(value),
        "occurred_at": sample["occurred_at"].isoformat(),
    }


def from_raw(raw: Mapping[str, Any]) -> Sample:
    """Rebuild a quarantined sample from its stored data."""
    return Sample(
        id=str(raw["id"]),
        agent_id=str(raw["agent_id"]),
        metric=str(raw["metric"]),
        value=float(raw["value"]),
        occurred_at=datetime.fromisoformat(str(raw["occurred_at"])),
    )


# -- feed monitoring -------------------------------------------------------------------------


def scheme_inputs(scheme: Scheme) -> dict[str, list[str]]:
    """Return the raw metrics a scheme's weighted measured KPIs need, for any position, each
    with the KPIs that read it."""
    positions: list[str | None] = [None, *scheme.position_overrides]
    needed: dict[str, set[str]] = {}
    for position in positions:
        for k in scheme.kpis_for(position):
            if k.kind == "measured" and k.weight > 0 and k.formula is not None:
                for metric in k.formula.metrics():
                    needed.setdefault(metric, set()).add(k.name)
    return {metric: sorted(kpis) for metric, kpis in needed.items()}


def quiet_feeds(
    needed: Mapping[str, Sequence[str]],
    last_received: Mapping[str, datetime],
    since: datetime,
    now: datetime,
    quiet: timedelta,
) -> list[dict[str, Any]]:
    """Warn about each needed metric (with the KPIs reading it) that no source has sent for
    ``quiet``.

    A metric never sent is counted from ``since`` (when the cycle opened), so a month that has
    just begun is not flagged before its feeds had a chance to arrive.
    """
    warnings = []
    for metric in sorted(needed):
        last = last_received.get(metric)
        if now - (last or since) < quiet:
            continue
        kpis = list(needed[metric])
        minutes = int(quiet.total_seconds() // 60)
        warnings.append({
            "kind": "metric_feed_quiet",
            "metric": metric,
            "last_received_at": last.isoformat() if last else None,
            "quiet_minutes": minutes,
            "kpis": kpis,
            "detail": f"no source has sent {metric} for {minutes} minutes or more"
            if last else f"no source has sent {metric} since the cycle opened",
        })
    return warnings
