"""``csperf demo``: a realistic shop, seeded through the real service, in about half a minute.

Everything goes through the JSON API of an in-process app (``httpx`` over ASGI), so the demo
takes the paths a real shop's software would: directory PUTs by an admin, cycles opened,
closed and published by each team's manager, self-evaluations by the agents, metric batches
posted to ``POST /v1/metrics`` by two ingest sources (the chat widget and the order system),
improvement plans submitted by agents and reviewed by managers. The credentials are JWTs
signed with a secret that lives only as long as the in-process app; the keys it prints at the
end are real API keys (``service.store.keys``).

The story, for the three months before the current one (``months_for``) and the current one:

- two teams, Shanghai (CNY, zh-CN formatting) and Berlin (EUR, de-DE), six agents each across
  pre-sale, in-sale and after-sale; busy hours, weekend peaks, rota'd days off;
- a star in each team, a weak agent in Shanghai who ends last three months running (and so
  gets a reassignment review), one agent per team who improves month after month, and two
  Berlin agents who tie exactly in the middle month;
- every past month evaluated, closed and published with its rewards, deductions and plans;
  plans submitted on time, late, rejected and resubmitted, or never (overdue); Berlin's last
  month is closed but left for its manager to publish; the current month is open, with live
  metrics up to now and a few evaluations in.
- the past months were opened on version 1 of ``online-shop-cs`` (before the upgrade); the
  current month is the first on version 2, "fair months": in Shanghai Liu Yang is on parental
  leave and Xu Ming is hired on the 20th (both not ranked), Zhou Jie is away twelve days (ranked
  against a pro-rated order-amount target); Berlin's response-time feed is not connected this
  month (avg_response_time_seconds unavailable for the team); a third team, Guangzhou, has two
  managers, one of whom (Huang Bo) is also an agent, rated as such by the other (Lin Fang).

Running it again changes nothing: ids are fixed, sample ids are derived from agent, hour and
metric (the ingestion's idempotency key), each step looks at the state first (a closed month
is not evaluated again, a published one not republished, a plan already submitted not
resubmitted), and evaluations carry idempotency keys. Only the current month grows, by the
samples of the hours since the last run. The keys are kept in a file (mode 0600, beside the
embedded database by default) and reused while they are still active.
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import jwt
import orjson
from pydantic import SecretStr

from service.commands import keys as key_commands
from service.commands.base import Caller
from service.config import Settings
from service.context import ServiceContext
from service.domain.periods import month_start, next_period, period_of, previous_period
from service.domain.principal import CLI_PRINCIPAL, event_metadata
from service.domain.training import TOPICS
from service.i18n import LANGUAGES
from service.store import keys as key_store

SOURCE_CHAT = "chat-widget"
SOURCE_ORDERS = "order-system"
BATCH = 5000
#: Hours a shop answers chats, local time, and how busy each is (1.0 is an average hour).
HOURS = {9: 0.6, 10: 1.2, 11: 1.3, 12: 0.9, 13: 0.8, 14: 1.1, 15: 1.2, 16: 1.0, 17: 0.8,
         18: 0.7, 19: 0.9, 20: 1.4, 21: 1.3, 22: 0.8}
EARLY = range(9, 17)
LATE = range(14, 23)
WEEKEND_FACTOR = 1.35
BASE_CONSULTATIONS = 4.2


@dataclass(frozen=True)
class DemoTeam:
    """A team of the demo shop and its manager."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_id: str
    manager_name: str
    #: Other managers of the team (a playing manager is also one of its agents).
    co_managers: tuple[str, ...] = ()
    #: The first of the demo's months the team takes part in (0: all four).
    first_month: int = 0
    #: Raw metrics the team's feeds do not send in the current month (a KPI unavailable).
    missing_now: tuple[str, ...] = ()
    #: The team's locale: its pages' default language and its numbers' conventions.
    locale: str | None = None


@dataclass(frozen=True)
class DemoAgent:
    """An agent and how good they are in each of the four months (0..1)."""

    agent_id: str
    name: str
    team_id: str
    position: str
    skill: tuple[float, float, float, float]
    #: Agents sharing a twin key get identical days in the months listed (an exact tie).
    twin: str | None = None
    twin_months: tuple[int, ...] = ()
    #: Overconfidence: added to the self-evaluation.
    self_bias: float = 0.0
    note: str = ""
    #: Current month: the day of the month they were hired (fair months: a mid-month hire).
    hired_day: int | None = None
    #: Current month: (first day, last day or None for months beyond, kind, note) away.
    away: tuple[int, int | None, str, str] | None = None


TEAMS = (
    # Locales: Shanghai's pages default to Simplified Chinese; Berlin's to English (there is
    # no German catalogue) with German numbers for German readers.
    DemoTeam("shop-sh", "Shanghai flagship store", "Asia/Shanghai", "CNY", "m-chen", "Chen Jing",
             locale="zh-Hans-CN"),
    DemoTeam("shop-be", "Berlin web shop", "Europe/Berlin", "EUR", "m-weber", "Anna Weber",
             # The chat widget's response-time feed is not connected in Berlin this month:
             # avg_response_time_seconds is unavailable for the whole team (fair months).
             missing_now=("response_time_seconds",), locale="de-DE"),
    # Two managers, one of whom (Huang Bo) also serves customers: his manager evaluation is
    # given by the other manager, Lin Fang. New this month, on version 2 from the start.
    DemoTeam("shop-gz", "Guangzhou live-stream team", "Asia/Shanghai", "CNY", "m-lin",
             "Lin Fang", co_managers=("gz-huang",), first_month=3, locale="zh-Hans-CN"),
)
AGENTS = (
    DemoAgent("sh-li-na", "Li Na", "shop-sh", "pre-sale", (0.90, 0.93, 0.94, 0.93),
              note="the star"),
    DemoAgent("sh-wang-lei", "Wang Lei", "shop-sh", "pre-sale", (0.10, 0.08, 0.11, 0.15),
              self_bias=9, note="last three months running"),
    DemoAgent("sh-zhao-min", "Zhao Min", "shop-sh", "in-sale", (0.30, 0.56, 0.84, 0.88),
              note="improves every month"),
    DemoAgent("sh-liu-yang", "Liu Yang", "shop-sh", "in-sale", (0.62, 0.58, 0.63, 0.60),
              away=(1, None, "leave", "parental leave")),
    DemoAgent("sh-sun-hui", "Sun Hui", "shop-sh", "after-sale", (0.50, 0.52, 0.47, 0.55)),
    DemoAgent("sh-zhou-jie", "Zhou Jie", "shop-sh", "after-sale", (0.41, 0.44, 0.38, 0.42),
              away=(1, 12, "training", "product certification course")),
    # Fair months in the current month (version 2 of online-shop-cs): Liu Yang on parental
    # leave and Xu Ming, hired on the 20th, are not ranked; Zhou Jie, away twelve days, is
    # ranked against a pro-rated order-amount target.
    DemoAgent("sh-xu-ming", "Xu Ming", "shop-sh", "in-sale", (0.5, 0.5, 0.5, 0.5),
              hired_day=20, note="hired on the 20th"),
    DemoAgent("be-lena-fischer", "Lena Fischer", "shop-be", "pre-sale", (0.86, 0.88, 0.90, 0.89),
              note="the star"),
    DemoAgent("be-jonas-becker", "Jonas Becker", "shop-be", "pre-sale", (0.34, 0.30, 0.28, 0.33),
              self_bias=6),
    DemoAgent("be-mia-schulz", "Mia Schulz", "shop-be", "in-sale", (0.60, 0.55, 0.58, 0.61),
              twin="be-in-sale-pair", twin_months=(1,), note="ties with Noah Wagner"),
    DemoAgent("be-noah-wagner", "Noah Wagner", "shop-be", "in-sale", (0.52, 0.55, 0.50, 0.54),
              twin="be-in-sale-pair", twin_months=(1,), note="ties with Mia Schulz"),
    DemoAgent("be-emma-hoffmann", "Emma Hoffmann", "shop-be", "after-sale",
              (0.22, 0.45, 0.70, 0.78), note="improves every month"),
    DemoAgent("be-paul-koch", "Paul Koch", "shop-be", "after-sale", (0.46, 0.40, 0.44, 0.47)),
    DemoAgent("gz-huang", "Huang Bo", "shop-gz", "pre-sale", (0.7, 0.7, 0.7, 0.74),
              note="playing manager"),
    DemoAgent("gz-he-xin", "He Xin", "shop-gz", "pre-sale", (0.6, 0.6, 0.6, 0.66)),
    DemoAgent("gz-tang-li", "Tang Li", "shop-gz", "in-sale", (0.5, 0.5, 0.5, 0.52)),
    DemoAgent("gz-feng-yu", "Feng Yu", "shop-gz", "after-sale", (0.4, 0.4, 0.4, 0.45)),
)

#: Months the demo publishes; Berlin's latest is left closed for its manager to publish.
UNPUBLISHED = {("shop-be", 2)}
#: The agent whose key the demo prints, to show the agent's view.
SHOWN_AGENT = "sh-wang-lei"
#: The month with the demo's two appeals (Berlin's September), and its appellants: Noah asks
#: for the tie with Mia to be broken (upheld: ties share a rank); Jonas, last, shows that his
#: first week's chats were logged under a colleague's account (amended: corrected, so Jonas
#: is no longer last and his deduction is reversed).
APPEALS = ("shop-be", 1)
UPHELD = "be-noah-wagner"
AMENDED = "be-jonas-becker"
#: The amended appeal's correction: Jonas's manager scores, this many points higher.
CORRECTED_BY = 6.0


def months_for(now: datetime) -> list[str]:
    """Return the three months before the current one (UTC) and the current one, oldest first."""
    current = period_of(now, ZoneInfo("UTC"))
    earlier = [current]
    for _ in range(3):
        earlier.insert(0, previous_period(earlier[0]))
    return earlier


# -- numbers with a story ------------------------------------------------------------------------


def _rng(seed: str) -> random.Random:
    # Seeded, so every run draws the same shop; these numbers are sample data, not secrets.
    return random.Random(seed)  # noqa: S311


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the handful of events an hour holds.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _binomial(rng: random.Random, n: int, p: float) -> int:
    p = min(max(p, 0.0), 1.0)
    return sum(1 for _ in range(n) if rng.random() < p)


def _works(index: int, day: date) -> tuple[bool, range]:
    """Return whether agent number ``index`` works that day, and the shift's hours."""
    off = {index % 7, (index + 1) % 7}
    shift = EARLY if (index + day.isocalendar().week) % 2 == 0 else LATE
    return day.weekday() not in off, shift


def _agent_index(agent: DemoAgent) -> int:
    key = agent.twin or agent.agent_id
    return sum(key.encode()) % 7


def day_samples(
    agent: DemoAgent, month_index: int, day: date, tz: ZoneInfo, until: datetime | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (source, sample) for one agent's working day, up to ``until`` if given."""
    twin = agent.twin is not None and month_index in agent.twin_months
    key = agent.twin if twin and agent.twin else agent.agent_id
    rng = _rng(f"{key}|{day.isoformat()}")
    works, shift = _works(_agent_index(agent), day)
    if not works:
        return
    q = agent.skill[month_index]
    weekend = day.weekday() >= 5
    for hour in shift:
        start = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
        if until is not None and start + timedelta(hours=1) > until:
            return
        stamp = f"{day:%Y%m%d}{hour:02d}"
        lam = BASE_CONSULTATIONS * HOURS[hour] * (WEEKEND_FACTOR if weekend else 1.0)
        consultations = _poisson(rng, lam * (1.15 if agent.position == "pre-sale" else 1.0))
        conversions = _binomial(rng, consultations, 0.08 + 0.30 * q)
        lost = _binomial(rng, consultations - conversions, 0.28 - 0.22 * q)
        orders = conversions + (_poisson(rng, 0.4 * lam) if agent.position == "in-sale" else 0)
        valid = _binomial(rng, orders, 0.80 + 0.18 * q)
        paid = _binomial(rng, orders, 0.62 + 0.33 * q)
        refund_p = 0.16 - 0.13 * q + (0.03 if agent.position == "after-sale" else 0.0)
        refunded = _binomial(rng, paid, refund_p)
        paying = paid - _binomial(rng, paid, 0.08)
        value = 150 + 200 * q
        amount = sum(rng.lognormvariate(math.log(value) - 0.125, 0.5) for _ in range(paid))
        busy = 15.0 * max(HOURS[hour] - 1.0, 0.0) * 4

        def sample(sid: str, metric: str, v: float, hour_start: datetime = start
                   ) -> dict[str, Any]:
            moment = hour_start + timedelta(seconds=rng.randrange(3600))
            return {"id": sid, "agent_id": agent.agent_id, "metric": metric, "value": v,
                    "occurred_at": moment.isoformat()}

        counts = (("consultations", consultations), ("conversions", conversions),
                  ("lost_customers", lost))
        for metric, n in counts:
            if n:
                yield SOURCE_CHAT, sample(f"{agent.agent_id}:{stamp}:{metric}", metric, float(n))
        for i in range(consultations):
            seconds = rng.gammavariate(2.0, (18 + 95 * (1 - q) + busy) / 2.0)
            yield SOURCE_CHAT, sample(f"{agent.agent_id}:{stamp}:rt{i}",
                                      "response_time_seconds", round(min(seconds, 900.0), 1))
        order_counts = (("orders", orders), ("valid_orders", valid), ("paid_orders", paid),
                        ("refunded_orders", refunded), ("paying_customers", paying))
        for metric, n in order_counts:
            if n:
                yield SOURCE_ORDERS, sample(f"{agent.agent_id}:{stamp}:{metric}", metric,
                                            float(n))
        if paid:
            yield SOURCE_ORDERS, sample(f"{agent.agent_id}:{stamp}:order_amount",
                                        "order_amount", round(amount, 2))


def present(agent: DemoAgent, period: str, day: date, team: DemoTeam) -> bool:
    """Tell whether the agent works on a day of the current month (hired, not away)."""
    start = month_start(period, ZoneInfo(team.timezone)).date()
    number = (day - start).days + 1
    if agent.hired_day is not None and number < agent.hired_day:
        return False
    if agent.away is not None:
        first, last, _, _ = agent.away
        return not (number >= first and (last is None or number <= last))
    return True


def month_samples(
    agent: DemoAgent, team: DemoTeam, period: str, month_index: int, until: datetime | None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every sample of an agent's month (up to ``until``)."""
    tz = ZoneInfo(team.timezone)
    day = month_start(period, tz).date()
    end = month_start(next_period(period), tz).date()
    while day < end:
        yield from day_samples(agent, month_index, day, tz, until)
        day += timedelta(days=1)


def _score(rng: random.Random, base: float, q: float, spread: float = 4.0) -> float:
    return round(min(max(base + 38 * q + rng.uniform(-spread, spread), 0.0), 100.0))


def self_scores(agent: DemoAgent, month_index: int, period: str) -> dict[str, float]:
    """Return the agent's self-evaluation of a month."""
    rng = _rng(f"self|{_twin_key(agent, month_index)}|{period}")
    q = agent.skill[month_index]
    return {"task_completion": min(_score(rng, 58, q) + agent.self_bias, 100.0)}


def manager_scores(agent: DemoAgent, month_index: int, period: str) -> dict[str, float]:
    """Return the manager's evaluation of a month."""
    rng = _rng(f"manager|{_twin_key(agent, month_index)}|{period}")
    q = agent.skill[month_index]
    names = ("work_ability", "cooperation", "service", "report_timeliness",
             "report_reliability", "report_quality")
    return {name: _score(rng, 55, q, 5.0) for name in names}


def _twin_key(agent: DemoAgent, month_index: int) -> str:
    if agent.twin is not None and month_index in agent.twin_months:
        return agent.twin
    return agent.agent_id


def manager_comment(agent: DemoAgent, month_index: int) -> str | None:
    """Return a manager's remark for the month, when the story has one."""
    q = agent.skill[month_index]
    if month_index and q - agent.skill[month_index - 1] > 0.15:
        return "Clear progress since last month: faster first replies, more chats converted."
    if q >= 0.85:
        return "Consistently fast and warm with customers; helps colleagues at peak hours."
    if q <= 0.2:
        return "Slow first replies at peak hours; many chats end without a purchase."
    return None


# -- the in-process API ------------------------------------------------------------------------


class DemoClock:
    """The clock of the in-process app: moved step by step, never past the real present."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.at = now - timedelta(days=130)

    def __call__(self) -> datetime:
        return self.at

    def move(self, moment: datetime) -> None:
        """Go to ``moment`` (or to now if it is later); time never runs backwards."""
        self.at = max(self.at, min(moment, self.now))


class Api:
    """The demo's HTTP client of the in-process app, with a token per role and subject."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self.client = client
        self.secret = secret

    def as_(self, role: str, subject: str, source: str | None = None) -> dict[str, str]:
        """Return headers with a short-lived token for role and subject."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {"sub": subject, "role": role, "iat": now,
                                  "exp": now + timedelta(hours=2)}
        if source is not None:
            claims["source"] = source
        return {"Authorization": "Bearer " + jwt.encode(claims, self.secret, algorithm="HS256")}

    async def send(self, method: str, url: str, headers: dict[str, str],
                   body: Any = None, ok: Sequence[int] = (200, 201)) -> Any:
        """Send a request; fail loudly on an unexpected status."""
        content = orjson.dumps(body) if body is not None else None
        response = await self.client.request(
            method, url, headers={**headers, "Content-Type": "application/json"},
            content=content)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None


@dataclass
class Summary:
    """What a run did."""

    samples_sent: int = 0
    samples_new: int = 0
    steps: list[str] = field(default_factory=list)


@dataclass(order=True)
class Step:
    """One thing the shop does at a moment."""

    at: datetime
    order: int
    label: str = field(compare=False)
    run: Callable[[], Awaitable[None]] = field(compare=False)


async def seed(api: Api, clock: DemoClock, ctx: ServiceContext, *, now: datetime,
               out: TextIO | None = None) -> Summary:
    """Build the demo shop through the API, skipping whatever already exists."""
    summary = Summary()
    months = months_for(now)
    admin = api.as_("admin", "demo")

    def say(text: str) -> None:
        summary.steps.append(text)
        if out is not None:
            print(f"  {text}", file=out, flush=True)

    current = months[-1]

    def team_members(team: DemoTeam, index: int) -> list[DemoAgent]:
        """Return the team's agents in a month: a late hire only from the current month."""
        return [a for a in AGENTS if a.team_id == team.team_id
                and (a.hired_day is None or months[index] == current)]

    async def absences(team: DemoTeam, period: str) -> None:
        for agent in team_members(team, len(months) - 1):
            if agent.away is None:
                continue
            first, last, kind, note = agent.away
            start = month_start(period, ZoneInfo(team.timezone)).date()
            end = start + timedelta(days=(last or 120) - 1)
            url = f"/v1/agents/{agent.agent_id}/absences/{period}-{kind}"
            manager = api.as_("manager", team.manager_id)
            if (await api.client.get(url, headers=manager)).status_code == 200:
                continue
            await api.send("PUT", url, manager, {
                "from": (start + timedelta(days=first - 1)).isoformat(),
                "to": end.isoformat(), "kind": kind, "note": note})
            say(f"{agent.agent_id}: {note} recorded")

    async def hire(agent: DemoAgent, period: str, team: DemoTeam) -> None:
        start = month_start(period, ZoneInfo(team.timezone)).date()
        assert agent.hired_day is not None
        known = await api.client.get(f"/v1/agents/{agent.agent_id}", headers=admin)
        if known.status_code == 200:
            return
        await api.send("PUT", f"/v1/agents/{agent.agent_id}", admin, {
            "name": agent.name, "team_id": agent.team_id, "position": agent.position,
            "hired_on": (start + timedelta(days=agent.hired_day - 1)).isoformat()})
        say(f"{agent.agent_id} hired")

    clock.move(month_start(months[0], ZoneInfo("UTC")) - timedelta(days=1))
    for team in TEAMS:
        await api.send("PUT", f"/v1/teams/{team.team_id}", admin, {
            "name": team.name, "timezone": team.timezone, "currency": team.currency,
            "manager_ids": [team.manager_id, *team.co_managers], "locale": team.locale or ""})
    for agent in AGENTS:
        if agent.hired_day is None:
            await api.send("PUT", f"/v1/agents/{agent.agent_id}", admin, {
                "name": agent.name, "team_id": agent.team_id, "position": agent.position})
    say(f"{len(TEAMS)} teams, {len(AGENTS)} agents")
    # Version 2 of the scheme asks every rater with weight, managers included, for evaluator
    # training on record: HR recorded the managers' course before the demo's first month.
    trained_at = clock.at - timedelta(days=30)
    for manager_id in [m for t in TEAMS for m in (t.manager_id, *t.co_managers)]:
        for topic in TOPICS:
            await api.send("PUT", f"/v1/training/{manager_id}/{topic}", admin, {
                "completed_at": trained_at.isoformat(),
                "valid_until": (trained_at + timedelta(days=730)).isoformat()})

    async def cycle(team: DemoTeam, period: str) -> dict[str, Any] | None:
        response = await api.client.get(f"/v1/teams/{team.team_id}/cycles/{period}",
                                        headers=api.as_("manager", team.manager_id))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RuntimeError(f"GET cycle {team.team_id}/{period}: {response.status_code}"
                               f" {response.text[:300]}")
        found: dict[str, Any] = response.json()
        return found

    async def open_month(team: DemoTeam, period: str) -> None:
        if await cycle(team, period) is None:
            # The past months were opened before the upgrade to version 2 (fair months) and
            # keep version 1; the current month is the first under version 2.
            body: dict[str, Any] = {"period": period}
            if period != months[-1]:
                body["scheme_version"] = 1
            await api.send("POST", f"/v1/teams/{team.team_id}/cycles",
                           api.as_("manager", team.manager_id), body)
            say(f"{team.team_id} {period}: opened")

    async def ingest(team: DemoTeam, period: str, index: int, until: datetime | None) -> None:
        state = await cycle(team, period)
        if state is None or state["status"] != "open":
            return  # sent before the month closed; a closed month takes no samples
        batches: dict[str, list[dict[str, Any]]] = {SOURCE_CHAT: [], SOURCE_ORDERS: []}
        new = 0
        for agent in team_members(team, index):
            for source, sample in month_samples(agent, team, period, index, until):
                day = datetime.fromisoformat(sample["occurred_at"]).date()
                if period == current and not (present(agent, period, day, team)
                                              and sample["metric"] not in team.missing_now):
                    continue
                batches[source].append(sample)
        for source, samples in batches.items():
            headers = api.as_("ingest", f"demo-{source}", source=source)
            for start in range(0, len(samples), BATCH):
                chunk = samples[start:start + BATCH]
                result = await api.send("POST", "/v1/metrics", headers,
                                        {"source": source, "samples": chunk})
                if result["rejected"]:
                    raise RuntimeError(f"samples rejected: {result['rejected'][:3]}")
                summary.samples_sent += len(chunk)
                summary.samples_new += result["accepted"]
                new += result["accepted"]
        if new:
            say(f"{team.team_id} {period}: {new:,} metric samples ingested")

    async def evaluate(team: DemoTeam, period: str, index: int, role: str,
                       agents: Sequence[DemoAgent] | None = None) -> None:
        state = await cycle(team, period)
        if state is None or state["status"] != "open":
            return
        chosen = agents if agents is not None else team_members(team, index)
        before = state["evaluations_submitted"]
        for agent in chosen:
            url = f"/v1/teams/{team.team_id}/cycles/{period}/evaluations/{agent.agent_id}/{role}"
            if role == "self":
                headers = api.as_("agent", agent.agent_id)
                body: dict[str, Any] = {"scores": self_scores(agent, index, period)}
            else:
                headers = api.as_("manager", team.manager_id)
                body = {"scores": manager_scores(agent, index, period),
                        "comment": manager_comment(agent, index)}
            # A second run finds the first submission instead of revising it.
            headers["Idempotency-Key"] = f"demo:{team.team_id}:{period}:{agent.agent_id}:{role}"
            await api.send("PUT", url, headers, body)
        after = await cycle(team, period)
        new = (after["evaluations_submitted"] if after else before) - before
        if new:
            say(f"{team.team_id} {period}: {new} {role} evaluation{'s' if new > 1 else ''}")

    async def close(team: DemoTeam, period: str) -> None:
        state = await cycle(team, period)
        if state is None or state["status"] != "open":
            return
        # Closing freezes the KPIs; they include every sample sent so far (fresh at commit).
        await api.send("POST", f"/v1/teams/{team.team_id}/cycles/{period}/close",
                       api.as_("manager", team.manager_id), {})
        say(f"{team.team_id} {period}: closed")

    async def publish(team: DemoTeam, period: str) -> None:
        state = await cycle(team, period)
        if state is None or state["status"] != "closed":
            return
        await api.send("POST", f"/v1/teams/{team.team_id}/cycles/{period}/publish",
                       api.as_("manager", team.manager_id))
        say(f"{team.team_id} {period}: published")

    async def plans(team: DemoTeam, period: str) -> list[dict[str, Any]]:
        listing = await api.send(
            "GET", f"/v1/sanctions?team_id={team.team_id}&period={period}"
                   "&kind=improvement_plan", api.as_("manager", team.manager_id))
        owed = [i for i in listing["items"] if i["entry"] == "grant"]
        # Worst first: the last place, then the one above it.
        return sorted(owed, key=lambda i: (-(i["rank"] or 0), i["agent_id"]))

    def plan_url(team: DemoTeam, period: str, agent_id: str) -> str:
        return f"/v1/teams/{team.team_id}/cycles/{period}/improvement-plans/{agent_id}"

    async def submit_plan(team: DemoTeam, period: str, which: int, attempt: int = 1) -> None:
        owed = await plans(team, period)
        if len(owed) <= which:
            return
        agent_id = owed[which]["agent_id"]
        plan = await api.send("GET", plan_url(team, period, agent_id),
                              api.as_("agent", agent_id))
        if len(plan["submissions"]) >= attempt or plan["status"] not in (
                "due", "overdue", "rejected"):
            return
        published = datetime.fromisoformat(plan["due_at"]) - timedelta(days=7)
        first = (published + timedelta(days=14)).date().isoformat()
        second = (published + timedelta(days=28)).date().isoformat()
        body = {
            "root_causes": (
                "Too many chats at peak hours end without a purchase: I answer late and do"
                " not follow up on questions about sizes and delivery times."
                if attempt == 1 else
                "As discussed: besides slow replies, I did not use the product FAQ and"
                " escalated simple questions."),
            "actions": [
                {"action": "Answer every new chat within 30 seconds at peak hours, using the"
                           " quick replies", "due_date": first},
                {"action": "Shadow a top colleague for two shifts and review ten of my lost"
                           " chats with the manager", "due_date": second},
            ],
        }
        await api.send("PUT", plan_url(team, period, agent_id), api.as_("agent", agent_id),
                       body)
        say(f"{team.team_id} {period}: plan of {agent_id} submitted"
            + (" again" if attempt > 1 else ""))

    async def review_plan(team: DemoTeam, period: str, which: int, decision: str,
                          reviews: int = 1) -> None:
        owed = await plans(team, period)
        if len(owed) <= which:
            return
        agent_id = owed[which]["agent_id"]
        headers = api.as_("manager", team.manager_id)
        plan = await api.send("GET", plan_url(team, period, agent_id), headers)
        done = sum(1 for s in plan["submissions"] if s["review"] is not None)
        if plan["status"] != "submitted" or done >= reviews:
            return
        comment = ("Good analysis and concrete actions; we check progress weekly."
                   if decision == "approved" else
                   "The causes are too vague: name the chats you lost and why.")
        await api.send("POST", plan_url(team, period, agent_id) + "/review", headers,
                       {"decision": decision, "comment": comment})
        say(f"{team.team_id} {period}: plan of {agent_id} {decision}")

    async def interview(team: DemoTeam, period: str, index: int, agent: DemoAgent,
                        slot: datetime, stage: str) -> None:
        url = f"/v1/teams/{team.team_id}/cycles/{period}/interviews/{agent.agent_id}"
        manager = api.as_("manager", team.manager_id)
        response = await api.client.get(url, headers=manager)
        if response.status_code not in (200, 404):
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
        status = response.json()["status"] if response.status_code == 200 else None
        if stage == "schedule" and status is None:
            await api.send("POST", url, manager, {
                "starts_at": slot.isoformat(), "ends_at": (slot + timedelta(minutes=40))
                .isoformat(), "place": "Small meeting room, 3rd floor"})
        elif stage == "outline" and status == "scheduled":
            await api.send("PUT", url + "/outline", manager, OUTLINE)
        elif stage == "record" and status == "scheduled":
            await api.send("PUT", url + "/record", manager,
                           interview_record(agent, index, slot))
            say(f"{team.team_id} {period}: feedback interview with {agent.agent_id} held")
        elif stage == "acknowledge" and status == "recorded":
            q = agent.skill[index]
            await api.send("POST", url + "/acknowledge", api.as_("agent", agent.agent_id),
                           {"comment": "Agreed; I would like a check-in after two weeks."
                            if q < 0.35 else None})

    async def appeal(team: DemoTeam, period: str, agent_id: str, reason: str) -> None:
        listing = await api.send("GET", f"/v1/appeals?team_id={team.team_id}&period={period}",
                                 api.as_("manager", team.manager_id))
        if any(a["agent_id"] == agent_id for a in listing["items"]):
            return
        await api.send("POST", f"/v1/teams/{team.team_id}/cycles/{period}/appeals/{agent_id}",
                       api.as_("agent", agent_id), {"reason": reason}, ok=(201,))
        say(f"{team.team_id} {period}: {agent_id} appealed")

    async def decide_appeal(team: DemoTeam, period: str, agent_id: str, decision: str,
                            note: str) -> None:
        listing = await api.send("GET", f"/v1/appeals?team_id={team.team_id}&period={period}",
                                 api.as_("manager", team.manager_id))
        found = next((a for a in listing["items"] if a["agent_id"] == agent_id), None)
        if found is None or found["status"] != "open":
            return
        await api.send("POST", f"/v1/appeals/{found['appeal_id']}/decision",
                       api.as_("manager", team.manager_id), {"decision": decision, "note": note})
        say(f"{team.team_id} {period}: appeal of {agent_id}"
            f" {'upheld' if decision == 'uphold' else 'amended'}")

    async def correct(team: DemoTeam, period: str, index: int, agent: DemoAgent) -> None:
        """The amended appeal's correction: revise, close and publish the month again."""
        state = await cycle(team, period)
        if state is None or state["status"] != "open" or state["publications"] == 0:
            return
        url = f"/v1/teams/{team.team_id}/cycles/{period}/evaluations/{agent.agent_id}/manager"
        scores = {k: min(v + CORRECTED_BY, 100.0)
                  for k, v in manager_scores(agent, index, period).items()}
        await api.send("PUT", url, api.as_("manager", team.manager_id), {
            "scores": scores, "comment": "corrected after the appeal: the first week's chats"
                                         " were logged under a colleague's account"})
        await close(team, period)
        await publish(team, period)
        say(f"{team.team_id} {period}: corrected after the appeal of {agent.agent_id}")

    steps: list[Step] = []

    def at(team: DemoTeam, period: str, day: int, hour: int) -> datetime:
        """Return day ``day`` (1-based) of the month after ``period``, at hour, team time."""
        start = month_start(next_period(period), ZoneInfo(team.timezone))
        return (start + timedelta(days=day - 1, hours=hour)).astimezone(UTC)

    def add(moment: datetime, label: str, run: Callable[[], Awaitable[None]]) -> None:
        # What would happen after now happens now, in the order it was planned.
        steps.append(Step(min(moment, now), len(steps), label, run))

    for index, period in enumerate(months):
        for team in TEAMS:
            if index < team.first_month:
                continue
            tz = ZoneInfo(team.timezone)
            opened = month_start(period, tz) + timedelta(hours=9)
            add(opened.astimezone(UTC), "open", partial(open_month, team, period))
            if period == current:
                add(opened.astimezone(UTC), "absences", partial(absences, team, period))
                members = [a for a in team_members(team, index)
                           if a.hired_day is None and (a.away is None or a.away[1] is not None)]
                if team.co_managers:  # a new team: everyone evaluated so far
                    few, managed = members, members
                else:
                    few, managed = members[:4], members[:2]
                add(now, "ingest", partial(ingest, team, period, index, now))
                add(now, "self", partial(evaluate, team, period, index, "self", few))
                add(now, "manager", partial(evaluate, team, period, index, "manager", managed))
                continue
            add(at(team, period, 1, 0), "ingest", partial(ingest, team, period, index, None))
            add(at(team, period, 2, 10), "self", partial(evaluate, team, period, index, "self"))
            add(at(team, period, 3, 15), "manager",
                partial(evaluate, team, period, index, "manager"))
            add(at(team, period, 4, 17), "close", partial(close, team, period))
            if (team.team_id, index) in UNPUBLISHED:
                continue
            add(at(team, period, 5, 10), "publish", partial(publish, team, period))
            for day, hour, label, run in _plan_script(team, period, index, submit_plan,
                                                      review_plan):
                add(at(team, period, 5 + day, hour), label, run)
            if (team.team_id, index) == APPEALS:
                # Feedback before results: one appeal upheld, one amended (a real correction,
                # with its ledger reversals), on the day of the publication.
                for hour, agent_id, reason in (
                        (11, UPHELD, "I sold more than Mia this month: the tie should be broken"
                                     " in my favour."),
                        (11, AMENDED, "My first week's chats were logged under another"
                                      " agent's account: my manager evaluation is not mine.")):
                    add(at(team, period, 5, hour), "appeal",
                        partial(appeal, team, period, agent_id, reason))
                add(at(team, period, 5, 12), "decide", partial(
                    decide_appeal, team, period, UPHELD, "uphold",
                    "Ties share a rank by policy: the composite is what counts, and yours and"
                    " Mia's are equal. The result stands."))
                add(at(team, period, 5, 12), "decide", partial(
                    decide_appeal, team, period, AMENDED, "amend",
                    "Confirmed with the chat logs: the evaluation is corrected."))
                amended = next(a for a in AGENTS if a.agent_id == AMENDED)
                add(at(team, period, 5, 13), "correct",
                    partial(correct, team, period, index, amended))
            if index >= 2:
                continue  # the latest month's interviews are still to be held
            for n, agent in enumerate(team_members(team, index)):
                slot = at(team, period, 7, 10) + timedelta(minutes=45 * n)
                for moment, stage in ((at(team, period, 6, 17), "schedule"),
                                      (at(team, period, 7, 9), "outline"),
                                      (slot + timedelta(minutes=40), "record"),
                                      (at(team, period, 8, 9), "acknowledge")):
                    add(moment, stage, partial(interview, team, period, index, agent, slot,
                                               stage))

    # Hired late in the current month: registered on the day, after last month's closes.
    for agent in AGENTS:
        if agent.hired_day is not None:
            team = next(t for t in TEAMS if t.team_id == agent.team_id)
            hired = month_start(current, ZoneInfo(team.timezone)) + timedelta(
                days=agent.hired_day - 1, hours=9)
            add(hired.astimezone(UTC), "hire", partial(hire, agent, current, team))

    for step in sorted(steps):
        clock.move(step.at)
        await step.run()
    return summary


OUTLINE = {
    "objective": "Agree on last month's result and on next month's targets and actions.",
    "sub_objectives": ["Go through the KPIs against their targets",
                       "Find the causes together", "Agree on two or three actions"],
    "questions": [
        "How did the month feel to you?",
        "Which KPI are you proudest of, and which worries you?",
        "What got in your way at peak hours?",
        "What should we change in your work or in your support?",
        "Which targets do you commit to next month?",
    ],
}


def interview_record(agent: DemoAgent, month_index: int, held: datetime) -> dict[str, Any]:
    """Return the record of a feedback interview: the seed's four questions, and what next."""
    q = agent.skill[month_index]
    better = month_index > 0 and q - agent.skill[month_index - 1] > 0.15
    if q >= 0.8:
        achieved = "Best conversion in the team and fast replies, even at the evening peaks."
        reasons = "Strong product knowledge; uses quick replies and follows up every open chat."
        improve = "Share the follow-up routine with the team; keep refunds low."
    elif q < 0.35:
        achieved = "Conversion and first-reply times well below target; reports on time."
        reasons = "Slow first replies at peak hours; chats end without a purchase proposal."
        improve = "First reply within 30 seconds; propose a product in every sales chat."
    else:
        achieved = ("Clear progress on every KPI since last month." if better else
                    "A solid month: orders on target, conversion and reply time a little"
                    " behind.")
        reasons = "Good service; loses time looking up delivery and size questions."
        improve = "Use the product FAQ and quick replies; keep the reports as they are."
    return {
        "expectations": "Convert 30 % of consultations, first reply within 30 seconds, churn"
                        " and refunds under 5 %, reports on time.",
        "achievements": achieved,
        "reasons": reasons,
        "improvements": improve,
        "agreed_actions": [
            {"action": improve.split(";")[0], "due_date": (held + timedelta(days=21))
             .date().isoformat()},
        ],
        "next_cycle_plan": "Same targets; weekly five-minute check on conversion and reply"
                           " time.",
    }


PlanStep = tuple[int, int, str, Callable[[], Awaitable[None]]]


def _plan_script(
    team: DemoTeam, period: str, index: int,
    submit: Callable[..., Awaitable[None]], review: Callable[..., Awaitable[None]],
) -> list[PlanStep]:
    """Return what happens to a published month's two plans: (days after, hour, label, run)."""
    if index == 0:  # both submitted on time and approved
        return [
            (3, 11, "submit", lambda: submit(team, period, 0)),
            (3, 15, "submit", lambda: submit(team, period, 1)),
            (5, 16, "review", lambda: review(team, period, 0, "approved")),
            (5, 16, "review", lambda: review(team, period, 1, "approved")),
        ]
    if index == 1 and team.team_id == "shop-sh":  # one waits for review, one never comes
        return [(4, 18, "submit", lambda: submit(team, period, 0))]
    if index == 1:  # one late and approved, one rejected and resubmitted
        return [
            (2, 12, "submit", lambda: submit(team, period, 1)),
            (4, 10, "review", lambda: review(team, period, 1, "rejected")),
            (6, 17, "submit", lambda: submit(team, period, 1, 2)),
            (9, 11, "submit", lambda: submit(team, period, 0)),
            (10, 9, "review", lambda: review(team, period, 0, "approved")),
        ]
    return []  # the latest month's plans are still due (or overdue)


# -- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoKey:
    """A key the demo prints."""

    label: str
    role: str
    subject: str | None
    describe: str


def wanted_keys() -> list[DemoKey]:
    """Return the keys the demo hands out: a manager per team, the weak agent, an admin."""
    agent = next(a for a in AGENTS if a.agent_id == SHOWN_AGENT)
    return [
        *(DemoKey(t.manager_id, "manager", t.manager_id, f"manager of {t.name}")
          for t in TEAMS),
        DemoKey(agent.agent_id, "agent", agent.agent_id, f"agent {agent.name}"),
        DemoKey("admin", "admin", None, "admin (everything)"),
    ]


async def ensure_keys(ctx: ServiceContext, path: Path) -> dict[str, str]:
    """Return the demo's keys: those in ``path`` that still work, new ones for the rest."""
    known = _read_keys(path)
    caller = Caller(event_metadata(CLI_PRINCIPAL, request_id=f"demo-{uuid.uuid4().hex[:12]}"))
    result: dict[str, str] = {}
    for want in wanted_keys():
        key = known.get(want.label)
        record = await key_store.find_active(ctx.db, key) if key else None
        if record is not None and (record.role, record.subject) == (want.role, want.subject):
            result[want.label] = key or ""
            continue
        issued = await key_commands.issue(
            ctx, caller, role=want.role, subject=want.subject, source=None,
            name=f"demo: {want.describe}", created_by="demo")
        result[want.label] = issued.key
    # Keys a lost file left behind stop working, so only the printed ones are live.
    live = {key_store.key_prefix(k) for k in result.values()}
    for record in await key_store.list_keys(ctx.db, include_revoked=False):
        if record.created_by == "demo" and record.key_id not in live:
            await key_commands.revoke(ctx, caller, record.key_id, revoked_by="demo")
    _write_keys(path, result)
    return result


def _read_keys(path: Path) -> dict[str, str]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _write_keys(path: Path, keys: dict[str, str]) -> None:
    # Created readable by its owner only: the keys are as good as passwords.
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle, indent=2)


# -- the command -------------------------------------------------------------------------------


async def run(
    settings: Settings, database_url: str, *, now: datetime | None = None,
    keys_file: Path | None = None, out: TextIO = sys.stdout,
) -> dict[str, str]:
    """Seed the demo into the database and return the keys (label -> key)."""
    from service.main import create_app

    now = now or datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    # The in-process app trusts only its own short-lived secret and runs no scheduler: the
    # demo moves its clock through the past months, which a scheduler must not see.
    local = settings.model_copy(update={
        "jwt_secret": SecretStr(secret), "jwt_public_key": None, "jwt_audience": None,
        "jwt_issuer": None, "run_scheduler": False, "auth_failure_limit": 0,
    })
    clock = DemoClock(now)
    app = create_app(local, database_url=database_url, migrate_on_start=False, clock=clock)
    async with app.router.lifespan_context(app):
        ctx: ServiceContext = app.state.ctx
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csperf.demo",
                                     timeout=300) as client:
            months = months_for(now)
            print(f"Seeding the demo shop: {months[0]} to {months[-2]}, and {months[-1]}"
                  " so far", file=out, flush=True)
            summary = await seed(Api(client, secret), clock, ctx, now=now, out=out)
        keys = await ensure_keys(ctx, keys_file or settings.data_dir / "demo-keys.json")
    changes = len(summary.steps) - 1
    print(f"Done: {changes} change{'s' if changes != 1 else ''}"
          + (" (the shop was already there)" if not changes else "")
          + f"; {summary.samples_sent:,} metric samples sent, {summary.samples_new:,} of them"
          " new.", file=out)
    return keys


def describe_keys(keys: dict[str, str], url: str) -> str:
    """Return the text that tells a newcomer where to go and which key to use."""
    lines = [f"\nOpen {url}/ui and sign in with one of these keys:"]
    lines.append("  (the pages in each language: " + ", ".join(
        f"{url}/ui?lang={language}" for language in LANGUAGES) + ")")
    for want in wanted_keys():
        if want.label in keys:
            lines.append(f"  {want.describe:<34} {keys[want.label]}")
    return "\n".join(lines)


def serving(url: str) -> bool:
    """Tell whether a csperf service answers at url."""
    try:
        return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
