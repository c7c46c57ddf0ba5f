"""cycle_results stores a batch of evaluations, the counts of their months, the months' rater
calibration and their agents' self-vs-manager gaps as ``service/domain/calibration.py`` computes
them over every evaluation the month holds, whatever the batches (a revision later in a batch
replacing an earlier one, a month's evaluations spread over batches)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import pytest

from service.domain import calibration as cal
from service.domain import cycle as c
from service.domain.events import DomainEvent
from service.projections.base import Tables
from service.projections.cycle_results import CycleResults
from service.store.database import Database
from service.store.event_store import RecordedEvent
from tests.support.projections import scratch_tables

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
FORM = ("work_ability", "cooperation", "service", "report_timeliness", "report_reliability",
        "report_quality")
_positions = count(1)


def _recorded(stream_id: str, event: DomainEvent) -> RecordedEvent:
    position = next(_positions)
    return RecordedEvent(position, 1, stream_id, position, uuid.uuid4(), event.type,
                         type(event).schema_version, event.model_dump(mode="json"), {}, NOW)


def _evaluation(agent: str, role: str, rater: str, score: float, revision: int,
                minutes: int) -> c.EvaluationSubmitted:
    return c.EvaluationSubmitted(agent_id=agent, rater_role=role, rater_id=rater,
                                 scores=dict.fromkeys(FORM, score), revision=revision,
                                 submitted_at=NOW + timedelta(minutes=minutes))


@pytest.fixture
async def tables(db: Database, uid: str) -> object:
    projection = CycleResults()
    async with scratch_tables(db, projection, uid) as made:
        yield made


async def test_a_months_calibration_and_gaps_are_the_domains_over_all_its_evaluations(
    db: Database, uid: str, tables: Tables
) -> None:
    team, period = f"t{uid}", "2026-11"
    stream = c.cycle_stream(team, period)
    opened = c.CycleOpened(team_id=team, period=period, scheme_id="default", scheme_version=1,
                           deadline=NOW + timedelta(days=30), opened_at=NOW)
    batches = [
        [opened,
         *(_evaluation(a, "manager", "m1", 60 + i, 1, i) for i, a in enumerate("abcd")),
         _evaluation("a", "self", "a", 90, 1, 5)],
        # m1 revises a twice in one batch (the last stands); m2 rates everyone, b rates self.
        [_evaluation("a", "manager", "m1", 20, 2, 10), _evaluation("a", "manager", "m1", 30, 3, 11),
         *(_evaluation(a, "manager", "m2", 95, 1, 12) for a in "abcd"),
         _evaluation("b", "self", "b", 50, 1, 13)],
        [_evaluation("c", "manager", "m2", 40, 2, 20)],
    ]
    projection = CycleResults()
    latest: dict[tuple[str, str, str], c.EvaluationSubmitted] = {}
    async with db.connection() as conn:
        for batch in batches:
            async with conn.transaction():
                await projection.apply(conn, [_recorded(stream, e) for e in batch], tables)
            for e in batch:
                if isinstance(e, c.EvaluationSubmitted):
                    latest[(e.agent_id, e.rater_role, e.rater_id)] = e
            await _agrees(conn, tables, team, period, list(latest.values()))


async def _agrees(conn: asyncpg.Connection, tables: Tables, team: str, period: str,
                  evaluations: list[c.EvaluationSubmitted]) -> None:
    levels = cal.levels_of(evaluations, 100.0)
    stored = await conn.fetch(
        f"SELECT agent_id, rater_role, rater_id, revision, level FROM {tables['evaluations']}"
        " WHERE team_id = $1 AND period = $2 ORDER BY 1, 2, 3", team, period)
    assert [tuple(r) for r in stored] == sorted(
        (e.agent_id, e.rater_role, e.rater_id, e.revision, cal.level(e, 100.0))
        for e in evaluations)
    assert await conn.fetchval(
        f"SELECT evaluations FROM {tables['cycles']} WHERE team_id = $1 AND period = $2",
        team, period) == len(evaluations)
    raters = await conn.fetch(
        f"SELECT rater_id, rater_role, evaluations, mean, stddev, min, max,"
        f" baseline_evaluations, baseline, deviation, flag, reason"
        f" FROM {tables['rater_calibration']} WHERE team_id = $1 AND period = $2"
        " ORDER BY rater_id, rater_role", team, period)
    assert [tuple(r) for r in raters] == [
        (r["rater_id"], r["rater_role"], r["count"], r["mean"], r["stddev"], r["min"],
         r["max"], r["baseline_count"], r["baseline"], r["deviation"], r["flag"], r["reason"])
        for r in cal.rater_statistics(levels)]
    gaps = await conn.fetch(
        f"SELECT agent_id, self_level, manager_level, gap, flagged"
        f" FROM {tables['self_manager_gaps']} WHERE team_id = $1 AND period = $2"
        " ORDER BY agent_id", team, period)
    assert [tuple(r) for r in gaps] == [
        (g["agent_id"], g["self"], g["manager"], g["gap"], g["flag"])
        for g in (cal.self_manager_gap(levels, a)
                  for a in sorted({e.agent_id for e in evaluations}))]
