"""cycle_process: the cycle's process around the numbers: goals, raters, training, interviews.

Plain tables for lists and BI: one row per agent's goals, per invitation, per evaluator's
training topic and per feedback interview. Single documents (an agent's goals, an interview) are
read from their streams, always current; these tables serve lists, process monitoring and BI.

``goals.status`` is the status as the last event left it (acknowledged, disputed, or pending
after a resolution); an agent with no row has not responded yet. Whether an acknowledgement
still matches the targets (a later change of position) is judged by the API, not stored here.
Every value comes from an event, so a rebuild from zero gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.domain import feedback as f
from service.domain import goals as g
from service.domain import invitations as inv
from service.domain import training as t
from service.projections.base import Only, Projection, Tables
from service.projections.decoded import decoded
from service.store.event_store import DataOnly, RecordedEvent

#: Cycle events this read model needs; evaluations (most of a cycle stream) are skipped.
_CYCLE_TYPES = frozenset({"GoalsAcknowledged", "GoalsDisputed", "GoalDisputeResolved",
                          "RaterInvited"})


def _cycle_key(stream_id: str) -> tuple[str, str]:
    # Team ids may contain ':', periods never do: the period is the last part.
    team_id, period = stream_id.removeprefix("cycle:").rsplit(":", 1)
    return team_id, period


class CycleProcess(Projection):
    """Goals, invitations, training records and interviews as plain tables."""

    name = "cycle_process"
    version = 1
    stream_types = ("cycle", "training", "interview")
    data_only = DataOnly(("cycle",), _CYCLE_TYPES)
    applies = Only(("cycle",), _CYCLE_TYPES)
    tables = {
        "goals": """(
            team_id         text NOT NULL,
            period          text NOT NULL,
            agent_id        text NOT NULL,
            status          text NOT NULL,
            acknowledged_at timestamptz,
            disputed_at     timestamptz,
            dispute_comment text,
            resolved_at     timestamptz,
            decision        text,
            adjustments     jsonb NOT NULL DEFAULT '{}',
            updated_at      timestamptz NOT NULL,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
        "rater_invitations": """(
            team_id    text NOT NULL,
            period     text NOT NULL,
            rater_id   text NOT NULL,
            rater_role text NOT NULL,
            agent_id   text NOT NULL,
            invited_by text NOT NULL,
            invited_at timestamptz NOT NULL,
            PRIMARY KEY (team_id, period, rater_id, rater_role, agent_id)
        )""",
        "training_records": """(
            evaluator_id text NOT NULL,
            topic        text NOT NULL,
            completed_at timestamptz NOT NULL,
            valid_until  timestamptz NOT NULL,
            recorded_by  text NOT NULL,
            recorded_at  timestamptz NOT NULL,
            PRIMARY KEY (evaluator_id, topic)
        )""",
        "interviews": """(
            team_id         text NOT NULL,
            period          text NOT NULL,
            agent_id        text NOT NULL,
            manager_id      text NOT NULL,
            starts_at       timestamptz NOT NULL,
            ends_at         timestamptz NOT NULL,
            place           text NOT NULL,
            participants    text[] NOT NULL,
            status          text NOT NULL,
            outline         boolean NOT NULL DEFAULT false,
            recorded_at     timestamptz,
            acknowledged_at timestamptz,
            scheduled_at    timestamptz NOT NULL,
            PRIMARY KEY (team_id, period, agent_id)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply each event of interest to its row."""
        for recorded in events:
            is_cycle = recorded.stream_id.startswith("cycle:")
            if is_cycle and recorded.type not in _CYCLE_TYPES:
                continue
            e = decoded(recorded)
            if is_cycle:
                team_id, period = _cycle_key(recorded.stream_id)
                if isinstance(e, inv.RaterInvited):
                    await conn.executemany(
                        f"INSERT INTO {tables['rater_invitations']} VALUES"
                        " ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                        [(team_id, period, e.rater_id, e.rater_role, a, e.invited_by,
                          e.invited_at) for a in e.agent_ids],
                    )
                elif isinstance(e, g.GOAL_EVENTS):
                    await self._goal(conn, tables, team_id, period, e)
            elif isinstance(e, t.TrainingRecorded):
                await conn.execute(
                    f"INSERT INTO {tables['training_records']} VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (evaluator_id, topic) DO UPDATE SET completed_at = $3,"
                    " valid_until = $4, recorded_by = $5, recorded_at = $6",
                    e.evaluator_id, e.topic, e.completed_at, e.valid_until, e.recorded_by,
                    e.recorded_at,
                )
            else:
                await self._interview(conn, tables, e)

    async def _goal(
        self, conn: asyncpg.Connection, tables: Tables, team_id: str, period: str,
        e: g.GoalEvent,
    ) -> None:
        table = tables["goals"]
        if isinstance(e, g.GoalsAcknowledged):
            await conn.execute(
                f"INSERT INTO {table} (team_id, period, agent_id, status, acknowledged_at,"
                " updated_at) VALUES ($1, $2, $3, 'acknowledged', $4, $4)"
                " ON CONFLICT (team_id, period, agent_id) DO UPDATE SET"
                " status = 'acknowledged', acknowledged_at = $4, updated_at = $4",
                team_id, period, e.agent_id, e.acknowledged_at,
            )
        elif isinstance(e, g.GoalsDisputed):
            await conn.execute(
                f"INSERT INTO {table} (team_id, period, agent_id, status, disputed_at,"
                " dispute_comment, updated_at) VALUES ($1, $2, $3, 'disputed', $4, $5, $4)"
                " ON CONFLICT (team_id, period, agent_id) DO UPDATE SET status = 'disputed',"
                " acknowledged_at = NULL, disputed_at = $4, dispute_comment = $5,"
                " updated_at = $4",
                team_id, period, e.agent_id, e.disputed_at, e.comment,
            )
        else:
            adjustments = {k: v.model_dump() for k, v in e.adjustments.items()}
            await conn.execute(
                f"INSERT INTO {table} (team_id, period, agent_id, status, resolved_at, decision,"
                " adjustments, updated_at) VALUES ($1, $2, $3, 'pending', $4, $5, $6, $4)"
                " ON CONFLICT (team_id, period, agent_id) DO UPDATE SET status = 'pending',"
                f" resolved_at = $4, decision = $5, adjustments = {table}.adjustments || $6,"
                " updated_at = $4",
                team_id, period, e.agent_id, e.resolved_at, e.decision, adjustments,
            )

    async def _interview(self, conn: asyncpg.Connection, tables: Tables, e: object) -> None:
        table = tables["interviews"]
        if isinstance(e, f.InterviewScheduled):
            await conn.execute(
                f"INSERT INTO {table} (team_id, period, agent_id, manager_id, starts_at, ends_at,"
                " place, participants, status, scheduled_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scheduled', $9)"
                " ON CONFLICT (team_id, period, agent_id) DO UPDATE SET manager_id = $4,"
                " starts_at = $5, ends_at = $6, place = $7, participants = $8,"
                " scheduled_at = $9",
                e.team_id, e.period, e.agent_id, e.manager_id, e.starts_at, e.ends_at, e.place,
                list(e.participants), e.scheduled_at,
            )
        elif isinstance(e, f.InterviewOutlinePrepared):
            await conn.execute(
                f"UPDATE {table} SET outline = true"
                " WHERE team_id = $1 AND period = $2 AND agent_id = $3",
                e.team_id, e.period, e.agent_id,
            )
        elif isinstance(e, f.InterviewRecorded):
            await conn.execute(
                f"UPDATE {table} SET status = 'recorded', recorded_at = $4"
                " WHERE team_id = $1 AND period = $2 AND agent_id = $3",
                e.team_id, e.period, e.agent_id, e.recorded_at,
            )
        elif isinstance(e, f.InterviewAcknowledged):
            await conn.execute(
                f"UPDATE {table} SET status = 'acknowledged', acknowledged_at = $4"
                " WHERE team_id = $1 AND period = $2 AND agent_id = $3",
                e.team_id, e.period, e.agent_id, e.acknowledged_at,
            )

