"""The directory projection applies a batch as it would apply its events one at a time: the
renames of a run go in one statement, in order with the events around them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from service.domain import directory as d
from service.domain.events import DomainEvent
from service.projections.directory import Directory
from service.store.database import Database
from service.store.event_store import RecordedEvent

START = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def _history(uid: str, seed: int) -> list[RecordedEvent]:
    """Agents registered, renamed (often several times in a row), moved and renamed again."""
    rng = random.Random(seed)
    agents = [f"a{uid}-{k}" for k in range(4)]
    teams = [f"t{uid}-{k}" for k in range(2)]
    where = dict.fromkeys(agents, teams[0])
    events: list[DomainEvent] = [
        d.AgentRegistered(agent_id=a, name=f"{a} first", team_id=teams[0], position=None,
                          effective_at=START) for a in agents[:3]]
    for n in range(60):
        agent = rng.choice(agents)
        roll = rng.random()
        if roll < 0.75:
            events.append(d.AgentChanged(agent_id=agent, name=f"{agent} r{n}",
                                         position=rng.choice([None, "pre-sale", "after-sale"])))
        elif roll < 0.9:
            to = teams[1] if where[agent] == teams[0] else teams[0]
            events.append(d.AgentTransferred(agent_id=agent, from_team_id=where[agent],
                                             to_team_id=to,
                                             effective_at=START + timedelta(minutes=n)))
            where[agent] = to
        else:
            events.append(d.AgentRegistered(agent_id=agents[3], name="late", team_id=teams[1],
                                             position="pre-sale",
                                             effective_at=START + timedelta(minutes=n)))
    return [RecordedEvent(position=i + 1, tx_id=i + 1, stream_id=d.agent_stream(e.agent_id),
                          version=i + 1, event_id=uuid.uuid4(), type=e.type, schema_version=1,
                          data=e.data(), metadata={}, recorded_at=START + timedelta(seconds=i))
            for i, e in enumerate(events) if isinstance(e, d.AgentRegistered | d.AgentChanged
                                                        | d.AgentTransferred)]


async def test_a_batch_leaves_the_agents_as_its_events_one_by_one(db: Database) -> None:
    projection = Directory()
    uid = uuid.uuid4().hex[:8]
    one_by_one, batched = (projection.table_names(random.randrange(10**6, 10**9))
                           for _ in range(2))
    async with db.connection() as conn:
        for tables in (one_by_one, batched):
            for logical, physical in tables.items():
                await conn.execute(f"CREATE TEMPORARY TABLE {physical} "
                                   f"{projection.tables[logical]}")
        for seed in range(5):
            history = _history(f"{uid}s{seed}", seed)
            for recorded in history:
                await projection.apply(conn, [recorded], one_by_one)
            await projection.apply(conn, history, batched)
        rows = [
            [tuple(r) for r in await conn.fetch(
                f"SELECT * FROM {tables[name]} ORDER BY 1, 3")]
            for tables in (one_by_one, batched) for name in ("agents", "agent_memberships")]
    assert rows[0] and rows[1]
    assert rows[:2] == rows[2:]
