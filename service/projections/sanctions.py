"""sanctions: the ledger of rewards, deductions, improvement plans and reassignment reviews.

One row per ledger entry. Rows are only ever inserted, except for their status and the plan or
review progress columns: the amount, kind and reason of an entry never change, and a correction
adds reversal or cancellation rows (see ``service.domain.sanctions``). So ``sum(amount)`` over a
month's rewards (or deductions) is what the latest publication owes, and so is the sum over the
rows whose status is ``active``.

Every value written comes from an event (no ``now()``), so a rebuild from zero gives the same
rows. ``overdue`` is stored once the scheduler records it; readers also derive it from their
clock for plans still ``due``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.domain import cycle as c
from service.domain import release as r
from service.domain import sanctions as s
from service.projections.base import Only, Projection, Tables
from service.projections.decoded import LARGE, decoded
from service.store.event_store import DataOnly, RecordedEvent

#: Cycle events the ledger needs; evaluations (most of a cycle stream) are skipped undecoded.
_CYCLE_TYPES = frozenset({"CycleOpened", "CycleClosed", "CyclePublished",
                          "ConsequencesRevised"})
#: Review statuses that record a person's decision (kept when the basis of the review changes).
_DECIDED = ["reassign", "retain"]


class Sanctions(Projection):
    """The ledger read model, and each month's ledger state that the next publication needs."""

    name = "sanctions"
    # 2: a decided review no longer called for keeps its decision (basis_changed, basis_note).
    # 3: a release moves the plan's due date (``release.plan_due``).
    version = 3
    stream_types = ("cycle", "plan", "review", "result")
    data_only = DataOnly(("cycle",), _CYCLE_TYPES, on_demand=LARGE)
    applies = Only(("cycle",), _CYCLE_TYPES)
    tables = {
        "sanctions": """(
            id           text PRIMARY KEY,
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            kind         text NOT NULL,
            entry        text NOT NULL,
            publication  integer NOT NULL,
            ordinal      integer NOT NULL,
            amount       double precision,
            currency     text,
            due_at       timestamptz,
            status       text NOT NULL,
            reason       text NOT NULL,
            rank         integer,
            place_from   integer,
            place_to     integer,
            months       text[] NOT NULL,
            reverses     text,
            late         boolean,
            submitted_at timestamptz,
            decided_at   timestamptz,
            decided_by   text,
            note         text,
            overdue_at   timestamptz,
            basis_changed boolean NOT NULL DEFAULT false,
            basis_note   text,
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL,
            -- The ledger order of a month (also its index for team and period filters).
            UNIQUE (team_id, period, publication, ordinal),
            -- Trivially unique; it is here as the index of the per-agent filter.
            UNIQUE (agent_id, id)
        )""",
        "sanction_ledgers": """(
            team_id text NOT NULL,
            period  text NOT NULL,
            state   jsonb NOT NULL,
            PRIMARY KEY (team_id, period)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply publications to the month's ledger and plan and review events to their rows."""
        for recorded in events:
            if recorded.stream_id.startswith("cycle:") and recorded.type not in _CYCLE_TYPES:
                continue
            e = decoded(recorded)
            if isinstance(e, c.CycleOpened | c.CycleClosed | c.CyclePublished
                          | c.ConsequencesRevised):
                await self._cycle(conn, tables, e)
            elif isinstance(e, s.PlanSubmitted):
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET status = 'submitted',"
                    " late = coalesce(late, $2), submitted_at = $3, decided_at = NULL,"
                    " decided_by = NULL, note = NULL, updated_at = $3"
                    " WHERE id = $1 AND status <> 'cancelled'",
                    _plan_id(e), e.late, e.submitted_at,
                )
            elif isinstance(e, s.PlanReviewed):
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET status = $2, decided_at = $3,"
                    " decided_by = $4, note = $5, updated_at = $3"
                    " WHERE id = $1 AND status <> 'cancelled'",
                    _plan_id(e), e.decision, e.reviewed_at, e.reviewer_id, e.comment,
                )
            elif isinstance(e, s.PlanOverdue):
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET status = 'overdue', overdue_at = $2,"
                    " updated_at = $2 WHERE id = $1 AND status = 'due'",
                    _plan_id(e), e.detected_at,
                )
            elif isinstance(e, r.ResultReleased):
                # release.plan_due: plans granted up to the release are due after it.
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET due_at = $5, updated_at = $4"
                    " WHERE team_id = $1 AND period = $2 AND agent_id = $3"
                    " AND kind = 'improvement_plan' AND entry = 'grant' AND created_at <= $4",
                    e.team_id, e.period, e.agent_id, e.released_at, e.plan_due_at,
                )
            elif isinstance(e, s.ReassignmentReviewDecided):
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET status = $2, decided_at = $3,"
                    " decided_by = $4, note = $5, updated_at = $3"
                    " WHERE id = $1 AND status = 'open'",
                    s.entry_id(e.team_id, e.period, e.agent_id, "reassignment_review",
                               e.publication),
                    e.decision, e.decided_at, e.decided_by, e.note,
                )

    async def _cycle(
        self, conn: asyncpg.Connection, tables: Tables,
        e: c.CycleOpened | c.CycleClosed | c.CyclePublished | c.ConsequencesRevised,
    ) -> None:
        stored = await conn.fetchval(
            f"SELECT state FROM {tables['sanction_ledgers']} WHERE team_id = $1 AND period = $2",
            e.team_id, e.period,
        )
        ledger = s.Ledger.model_validate(stored) if stored is not None else None
        if isinstance(e, c.CyclePublished | c.ConsequencesRevised) and ledger is not None:
            # Reviews decided so far are in this table (their events came earlier in the
            # feed, so a rebuild finds the same ones).
            reviews = [g.id for g in ledger.active.values() if g.kind == "reassignment_review"]
            decided = {r["id"] for r in await conn.fetch(
                f"SELECT id FROM {tables['sanctions']} WHERE id = ANY($1::text[])"
                " AND status = ANY($2::text[])", reviews, _DECIDED)} if reviews else set()
            ledger, settlement = s.settle(ledger, e, decided)
            await self._settle(conn, tables, settlement)
        else:
            ledger = s.evolve_ledger(ledger, e)
        if ledger is None:
            return
        await conn.execute(
            f"INSERT INTO {tables['sanction_ledgers']} VALUES ($1, $2, $3)"
            " ON CONFLICT (team_id, period) DO UPDATE SET state = $3",
            e.team_id, e.period, ledger.model_dump(mode="json"),
        )

    async def _settle(
        self, conn: asyncpg.Connection, tables: Tables, settlement: s.Settlement
    ) -> None:
        endings = {x.reverses: x for x in settlement.entries if x.reverses is not None}
        for ended, status in settlement.ended:
            at = endings[ended].created_at
            if status == "basis_changed":
                await conn.execute(
                    f"UPDATE {tables['sanctions']} SET basis_changed = true, basis_note = $2,"
                    " updated_at = $3 WHERE id = $1", ended, endings[ended].reason, at,
                )
                continue
            await conn.execute(
                f"UPDATE {tables['sanctions']} SET status = $2, updated_at = $3 WHERE id = $1",
                ended, status, at,
            )
        await conn.executemany(
            f"""
            INSERT INTO {tables['sanctions']} (id, team_id, period, agent_id, kind, entry,
                publication, ordinal, amount, currency, due_at, status, reason, rank, place_from,
                place_to, months, reverses, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                    $18, $19, $19)
            ON CONFLICT (id) DO NOTHING
            """,
            [
                (x.id, x.team_id, x.period, x.agent_id, x.kind, x.entry, x.publication,
                 x.ordinal, x.amount, x.currency, x.due_at, x.initial_status, x.reason, x.rank,
                 x.places[0] if x.places else None, x.places[1] if x.places else None,
                 list(x.months), x.reverses, x.created_at)
                for x in settlement.entries
            ],
        )


def _plan_id(e: s.PlanSubmitted | s.PlanReviewed | s.PlanOverdue) -> str:
    return s.entry_id(e.team_id, e.period, e.agent_id, "improvement_plan", e.publication)
