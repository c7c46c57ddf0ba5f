"""A realistic day of a 500-agent contact centre, as the metric feeds would push it.

Ten teams of 50 agents (most in China, two in Seoul) work 08:00-22:00 local time. Consultations
follow the day's curve (a morning ramp, a lunch peak, an evening e-commerce peak) with short
flash-sale bursts at three times the rate. Each consultation yields one ``consultations``
sample, one ``response_time_seconds`` sample per agent reply, sometimes ``lost_customers``,
and, from the order system, conversions, orders, amounts, valid and paid orders, paying
customers and the odd refund.

Eight feeds push it, as eight concurrent clients: six chat servers (agents split between them)
and two order-system nodes. Each flushes 1,000 samples a batch in time order. Like real
clients they misbehave a little: about 2 % of batches are sent twice (a timeout after the
server had stored them), about 1 % overlap the previous batch by 200 samples (a client resuming
from an old checkpoint), and about 0.05 % of samples are bad (an agent hired this morning and
not registered yet, a negative response time, a metric the catalogue does not know, half an
order).

    python -m bench.loadgen --url http://127.0.0.1:8000 --admin-key KEY --jwt-secret SECRET

plays the day against a running service (registering the teams and agents first) as fast as
it takes it, and prints what the service answered.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

TEAMS = 10
AGENTS_PER_TEAM = 50
CHAT_FEEDS = 6
ORDER_FEEDS = 2
BATCH = 1_000
#: Team time zones: a Chinese shop with two Korean teams.
ZONES = ("Asia/Shanghai",) * 8 + ("Asia/Seoul",) * 2
#: Relative consultation rate per local hour (index 0 = 00:00); closed outside 08-22.
HOURLY = (0, 0, 0, 0, 0, 0, 0, 0, 0.6, 0.9, 1.2, 1.3, 1.1, 0.9, 0.9, 1.0, 1.0, 0.9, 0.8,
          1.3, 1.5, 1.4, 0.8, 0)
#: Flash sales: (local hour, minute, minutes long); the rate triples.
BURSTS = ((10, 0, 15), (14, 30, 10), (20, 0, 20))


@dataclass(frozen=True)
class Team:
    """A team of the centre."""

    team_id: str
    timezone: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Batch:
    """One POST /v1/metrics, encoded."""

    source: str
    body: bytes
    samples: int
    ids: tuple[str, ...]
    retry: bool = False


@dataclass
class Day:
    """Everything a benchmark needs: the directory, the batches, and the rows they store."""

    teams: list[Team]
    feeds: dict[str, list[Batch]]
    #: Every distinct usable sample as the service stores it (for the COPY baseline):
    #: (source, sample_id, agent_id, team_id, period, metric, value, occurred_at).
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    bad: int = 0
    sent: int = 0
    #: Ids of the bad samples: each is rejected every time it is sent (a retry included).
    bad_ids: set[tuple[str, str]] = field(default_factory=set)

    @property
    def rejections(self) -> int:
        """Return how many rejections the service should answer in all (resent bad samples
        are rejected again)."""
        return sum((b.source, i) in self.bad_ids
                   for batches in self.feeds.values() for b in batches for i in b.ids)

    @property
    def batches(self) -> int:
        """Return how many batches the feeds send in all."""
        return sum(len(b) for b in self.feeds.values())


def centre(prefix: str = "") -> list[Team]:
    """Return the centre's teams and agents (ids prefixed so several runs never collide)."""
    return [
        Team(f"{prefix}team-{t:02d}", ZONES[t % len(ZONES)],
             tuple(f"{prefix}agent-{t:02d}-{a:02d}" for a in range(AGENTS_PER_TEAM)))
        for t in range(TEAMS)
    ]


def _weights() -> list[float]:
    weights = []
    for minute in range(24 * 60):
        hour = minute // 60
        w = HOURLY[hour]
        if any(0 <= minute - (h * 60 + s) < length for h, s, length in BURSTS):
            w *= 3
        weights.append(w)
    return weights


_WEIGHTS = _weights()


def _moments(rng: random.Random, day: date, zone: ZoneInfo, count: int) -> list[datetime]:
    """Return count consultation start times following the day's curve and bursts."""
    minutes = rng.choices(range(24 * 60), weights=_WEIGHTS, k=count)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return sorted(start + timedelta(minutes=mi, seconds=rng.random() * 60) for mi in minutes)


def _consultation(
    rng: random.Random, agent: str, at: datetime, n: int
) -> tuple[list[tuple[str, str, float, datetime]], list[tuple[str, str, float, datetime]]]:
    """Return the chat samples and the order samples of one consultation."""
    chat = [("consultations", f"{agent}:{n}:c", 1.0, at)]
    t = at
    for r in range(1 + min(int(rng.expovariate(1 / 5)), 30)):
        t += timedelta(seconds=rng.uniform(5, 90))
        chat.append(("response_time_seconds", f"{agent}:{n}:r{r}",
                     round(rng.lognormvariate(3.0, 0.6), 1), t))
    orders: list[tuple[str, str, float, datetime]] = []
    if rng.random() < 0.08:
        chat.append(("lost_customers", f"{agent}:{n}:l", 1.0, t))
    elif rng.random() < 0.3:
        t += timedelta(minutes=rng.uniform(1, 20))
        count = 1 + (rng.random() < 0.15)
        amount = round(rng.lognormvariate(5.0, 0.7) * count, 2)
        orders += [("conversions", f"{agent}:{n}:v", 1.0, t),
                   ("orders", f"{agent}:{n}:o", float(count), t),
                   ("order_amount", f"{agent}:{n}:a", amount, t)]
        if rng.random() < 0.95:
            orders.append(("valid_orders", f"{agent}:{n}:vo", float(count), t))
        if rng.random() < 0.9:
            paid = t + timedelta(minutes=rng.uniform(0, 30))
            orders += [("paid_orders", f"{agent}:{n}:p", float(count), paid),
                       ("paying_customers", f"{agent}:{n}:pc", 1.0, paid)]
            if rng.random() < 0.05:
                orders.append(("refunded_orders", f"{agent}:{n}:rf", 1.0,
                               paid + timedelta(hours=rng.uniform(1, 6))))
    return chat, orders


def _bad(rng: random.Random, metric: str, agent: str, value: float) -> tuple[str, str, float]:
    kind = rng.randrange(4)
    if kind == 0:
        return metric, agent.rsplit("-", 1)[0] + "-new", value  # hired today, not registered
    if kind == 1:
        return "response_time_seconds", agent, -abs(value) - 1
    if kind == 2:
        return "csat", agent, 4.0
    return "orders", agent, 0.5


def make_day(
    *,
    prefix: str = "",
    day: date | None = None,
    consultations_per_agent: float = 120,
    seed: int = 2026,
    bad_rate: float = 0.0005,
    resend_rate: float = 0.02,
    overlap_rate: float = 0.01,
) -> Day:
    """Generate the day: the centre, its samples, and the batches the eight feeds send."""
    rng = random.Random(seed)
    day = day or (datetime.now(UTC) - timedelta(days=1)).date()
    teams = centre(prefix)
    feeds = [f"chat-{i}" for i in range(CHAT_FEEDS)] + [f"orders-{i}" for i in range(ORDER_FEEDS)]
    streams: dict[str, list[tuple[str, str, str, float, datetime]]] = {f: [] for f in feeds}
    placement: dict[str, tuple[str, ZoneInfo]] = {}
    for t, team in enumerate(teams):
        zone = ZoneInfo(team.timezone)
        for index, agent in enumerate(team.agents):
            placement[agent] = (team.team_id, zone)
            count = max(0, round(rng.gauss(consultations_per_agent,
                                           consultations_per_agent / 5)))
            chat_feed = f"chat-{(t * AGENTS_PER_TEAM + index) % CHAT_FEEDS}"
            order_feed = f"orders-{index % ORDER_FEEDS}"
            for n, at in enumerate(_moments(rng, day, zone, count)):
                chat, orders = _consultation(rng, agent, at, n)
                streams[chat_feed] += [(s, agent, m, v, t) for m, s, v, t in chat]
                streams[order_feed] += [(s, agent, m, v, t) for m, s, v, t in orders]
    result = Day(teams=teams, feeds={})
    for source, samples in streams.items():
        samples.sort(key=lambda s: s[4])
        encoded: list[dict[str, Any]] = []
        for sample_id, agent, metric, value, at in samples:
            if rng.random() < bad_rate:
                metric, agent, value = _bad(rng, metric, agent, value)
                result.bad += 1
                result.bad_ids.add((source, sample_id))
            elif agent in placement:
                team_id, zone = placement[agent]
                local = at.astimezone(zone)
                result.rows.append((source, sample_id, agent, team_id,
                                    f"{local.year:04d}-{local.month:02d}", metric, value,
                                    at.astimezone(UTC)))
            encoded.append({"id": sample_id, "agent_id": agent, "metric": metric,
                            "value": value, "occurred_at": at.isoformat()})
        result.feeds[source] = list(_batches(rng, source, encoded, resend_rate, overlap_rate))
    result.sent = sum(b.samples for batches in result.feeds.values() for b in batches)
    return result


def _batches(
    rng: random.Random, source: str, samples: Sequence[dict[str, Any]],
    resend_rate: float, overlap_rate: float,
) -> Iterator[Batch]:
    start = 0
    previous: list[dict[str, Any]] = []
    while start < len(samples):
        if previous and rng.random() < overlap_rate:
            chunk = previous[-200:] + list(samples[start:start + BATCH - 200])
            start += BATCH - 200
        else:
            chunk = list(samples[start:start + BATCH])
            start += BATCH
        batch = _encode(source, chunk)
        yield batch
        if rng.random() < resend_rate:
            yield Batch(batch.source, batch.body, batch.samples, batch.ids, retry=True)
        previous = chunk


def _encode(source: str, chunk: list[dict[str, Any]]) -> Batch:
    body = orjson.dumps({"source": source, "samples": chunk})
    return Batch(source, body, len(chunk), tuple(s["id"] for s in chunk))


# -- playing a day against a running service ---------------------------------------------------


async def register(client: Any, teams: Sequence[Team], admin: dict[str, str]) -> None:
    """Create the teams and agents through the API (idempotent PUTs)."""
    for team in teams:
        response = await client.put(f"/v1/teams/{team.team_id}", headers=admin,
                                    json={"name": team.team_id, "timezone": team.timezone})
        response.raise_for_status()
    sem = asyncio.Semaphore(8)

    async def put(agent: str, team_id: str) -> None:
        async with sem:
            r = await client.put(f"/v1/agents/{agent}", headers=admin,
                                 json={"name": agent, "team_id": team_id})
            r.raise_for_status()

    await asyncio.gather(*(put(a, t.team_id) for t in teams for a in t.agents))


async def play(
    client: Any, feeds: dict[str, list[Batch]], headers: dict[str, dict[str, str]],
    on_response: Any = None,
) -> dict[str, int]:
    """Send every feed's batches in order, one client task per feed; return the answers."""
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "batches": 0}

    async def feed(source: str, batches: list[Batch]) -> None:
        for batch in batches:
            sent = time.perf_counter()
            response = await client.post(
                "/v1/metrics", content=batch.body,
                headers={**headers[source], "content-type": "application/json"})
            if response.status_code != 200:
                raise RuntimeError(f"{source}: {response.status_code} {response.text[:300]}")
            body = orjson.loads(response.content)
            totals["accepted"] += body["accepted"]
            totals["duplicates"] += body["duplicates"]
            totals["rejected"] += len(body["rejected"])
            totals["batches"] += 1
            if on_response is not None:
                on_response(batch, sent, time.perf_counter(), body)

    await asyncio.gather(*(feed(s, b) for s, b in feeds.items()))
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    """Play a day against a running service."""
    import httpx
    import jwt

    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--admin-key", required=True, help="an admin API key")
    parser.add_argument("--jwt-secret", required=True, help="CSPERF_JWT_SECRET of the service")
    parser.add_argument("--prefix", default="lg-", help="prefix of team and agent ids")
    parser.add_argument("--consultations", type=float, default=120,
                        help="consultations per agent in the day")
    args = parser.parse_args(argv)
    day = make_day(prefix=args.prefix, consultations_per_agent=args.consultations)
    print(f"{day.sent:,} samples in {day.batches:,} batches ({day.bad} bad)", file=sys.stderr)
    now = datetime.now(UTC)
    headers = {
        source: {"Authorization": "Bearer " + jwt.encode(
            {"sub": source, "role": "ingest", "source": source, "iat": now,
             "exp": now + timedelta(hours=6)}, args.jwt_secret, algorithm="HS256")}
        for source in day.feeds
    }

    async def run() -> dict[str, int]:
        async with httpx.AsyncClient(base_url=args.url, timeout=60) as client:
            await register(client, day.teams, {"Authorization": f"Bearer {args.admin_key}"})
            started = time.perf_counter()
            totals = await play(client, day.feeds, headers)
            elapsed = time.perf_counter() - started
            print(f"{day.sent / elapsed:,.0f} samples/s", file=sys.stderr)
            return totals

    print(orjson.dumps(asyncio.run(run())).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
