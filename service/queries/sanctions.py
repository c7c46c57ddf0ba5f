"""Read the sanctions ledger: filtered lists, the payroll export, plans past their deadline.

A plan still ``due`` after its deadline reads as ``overdue`` at once, whatever the scheduler has
recorded yet: the status is computed here from the caller's clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.sanctions import review_id

# The status a reader sees: a plan still due after its deadline ($1) is overdue.
_SELECT = """
SELECT id, team_id, period, agent_id, kind, entry, publication, ordinal, amount, currency,
       due_at, CASE WHEN status = 'due' AND due_at < $1 THEN 'overdue' ELSE status END AS status,
       reason, rank, place_from, place_to, months, reverses, late, submitted_at, decided_at,
       decided_by, note, overdue_at, basis_changed, basis_note, created_at,
       -- release.final_at, stored; compared with the caller's clock.
       coalesce((SELECT f.final_at <= $1 FROM result_final f
                 WHERE f.team_id = sanctions.team_id AND f.period = sanctions.period
                   AND f.agent_id = sanctions.agent_id), false) AS final
FROM sanctions
WHERE ($2::text IS NULL OR team_id = $2)
  AND ($3::text IS NULL OR period = $3)
  AND ($4::text IS NULL OR agent_id = $4)
  AND ($5::text[] IS NULL OR kind = ANY($5::text[]))
  AND ($6::text[] IS NULL OR team_id = ANY($6::text[]))
  AND ($7::text IS NULL
       OR CASE WHEN status = 'due' AND due_at < $1 THEN 'overdue' ELSE status END = $7)
  -- An agent's own view: entries of a month whose result is withheld from them are hidden.
  AND (NOT $8::boolean OR NOT EXISTS (
       SELECT 1 FROM result_months m
       WHERE m.team_id = sanctions.team_id AND m.period = sanctions.period
         AND m.release_due_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM result_releases x WHERE x.team_id = m.team_id
                         AND x.period = m.period AND x.agent_id = sanctions.agent_id)))
  AND ($9::boolean IS NULL OR coalesce((SELECT f.final_at <= $1 FROM result_final f
       WHERE f.team_id = sanctions.team_id AND f.period = sanctions.period
         AND f.agent_id = sanctions.agent_id), false) = $9)
ORDER BY period, team_id, publication, ordinal, id
"""


#: The columns of the ledger and of the payroll as tables (CSV, Excel), for both doors.
SANCTION_COLUMNS = (
    "id", "team_id", "period", "agent_id", "kind", "entry", "amount", "currency", "due_at",
    "status", "reason", "publication", "reverses", "rank", "places", "months", "late",
    "submitted_at", "decided_at", "decided_by", "note", "overdue_at", "review_id", "created_at",
    "basis_changed", "basis_note", "final",
)
PAYROLL_COLUMNS = (
    "sanction_id", "team_id", "period", "agent_id", "kind", "entry", "amount", "effect",
    "currency", "publication", "rank", "places", "reason", "reverses", "status", "created_at",
    "final",
)


def table_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Render a row's lists as single table cells (times stay times: typed cells in Excel)."""
    out = dict(row)
    if row.get("places"):
        out["places"] = "-".join(str(p) for p in row["places"])
    if "months" in row:
        out["months"] = " ".join(row["months"])
    return out


@dataclass(frozen=True)
class Filters:
    """What a caller asked for, narrowed to what they may see (None: no restriction)."""

    team_id: str | None = None
    period: str | None = None
    agent_id: str | None = None
    kinds: Sequence[str] | None = None
    status: str | None = None
    #: Only these teams (a manager's); None for admins and readers.
    teams: Sequence[str] | None = None
    #: An agent's own view: leave out months whose result is not released to them yet.
    released_only: bool = False
    #: Only entries that are final (True) or not yet final (False); None: both.
    final: bool | None = None


async def managed_teams(conn: asyncpg.Connection, manager_id: str) -> list[str]:
    """Return the teams whose managers include manager_id (directory read model)."""
    rows = await conn.fetch(
        "SELECT team_id FROM teams WHERE $1 = ANY(manager_ids) ORDER BY team_id", manager_id
    )
    return [r["team_id"] for r in rows]


def item(row: asyncpg.Record) -> dict[str, Any]:
    """Render a ledger row for the API."""
    places = [row["place_from"], row["place_to"]] if row["place_from"] is not None else None
    return {
        "id": row["id"], "team_id": row["team_id"], "period": row["period"],
        "agent_id": row["agent_id"], "kind": row["kind"], "entry": row["entry"],
        "amount": row["amount"], "currency": row["currency"], "due_at": row["due_at"],
        "status": row["status"], "reason": row["reason"], "publication": row["publication"],
        "reverses": row["reverses"], "rank": row["rank"], "places": places,
        "months": list(row["months"]), "late": row["late"],
        "submitted_at": row["submitted_at"], "decided_at": row["decided_at"],
        "decided_by": row["decided_by"], "note": row["note"], "overdue_at": row["overdue_at"],
        "basis_changed": row["basis_changed"], "basis_note": row["basis_note"],
        "review_id": (review_id(row["team_id"], row["period"], row["agent_id"])
                      if row["kind"] == "reassignment_review" else None),
        "created_at": row["created_at"], "final": row["final"],
    }


async def list_items(conn: asyncpg.Connection, filters: Filters, now: datetime
                     ) -> list[dict[str, Any]]:
    """Return the ledger rows matching the filters, oldest month first, in ledger order."""
    rows = await conn.fetch(
        _SELECT, now, filters.team_id, filters.period, filters.agent_id,
        list(filters.kinds) if filters.kinds is not None else None,
        list(filters.teams) if filters.teams is not None else None, filters.status,
        filters.released_only, filters.final,
    )
    return [item(r) for r in rows]


def _sum(values: Sequence[float]) -> float:
    # Amounts are decimals typed by people; fsum keeps reward + reversal at exactly 0.
    return round(math.fsum(values), 6) + 0.0


async def payroll(conn: asyncpg.Connection, filters: Filters, now: datetime) -> dict[str, Any]:
    """Return a month's rewards and deductions, each line with its ranking, and the totals."""
    # ``effect`` is what a line changes in the agent's pay (rewards add, deductions take away,
    # reversals undo); the totals are sums of the lines, so they are what is owed.
    lines = []
    for row in await list_items(conn, Filters(
        team_id=filters.team_id, period=filters.period, agent_id=filters.agent_id,
        kinds=("reward", "deduction"), teams=filters.teams, released_only=filters.released_only,
        final=filters.final,
    ), now):
        amount = row["amount"] or 0.0
        lines.append({
            "sanction_id": row["id"], "team_id": row["team_id"], "period": row["period"],
            "agent_id": row["agent_id"], "kind": row["kind"], "entry": row["entry"],
            "amount": amount, "effect": amount if row["kind"] == "reward" else -amount,
            "currency": row["currency"], "publication": row["publication"],
            "rank": row["rank"], "places": row["places"], "reason": row["reason"],
            "reverses": row["reverses"], "status": row["status"],
            "created_at": row["created_at"], "final": row["final"],
        })
    per_agent: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for line in lines:
        key = (line["team_id"], line["agent_id"], line["currency"] or "")
        per_agent.setdefault(key, []).append(line)
    totals = [
        {
            "team_id": team_id, "agent_id": agent_id, "currency": currency or None,
            "rewards": _sum([x["amount"] for x in group if x["kind"] == "reward"]),
            "deductions": _sum([x["amount"] for x in group if x["kind"] == "deduction"]),
            "net": _sum([x["effect"] for x in group]),
        }
        for (team_id, agent_id, currency), group in sorted(per_agent.items())
    ]
    by_currency: dict[str, list[float]] = {}
    for line in lines:
        by_currency.setdefault(line["currency"] or "", []).append(line["effect"])
    return {
        "period": filters.period, "team_id": filters.team_id, "lines": lines,
        "totals": totals,
        "net_by_currency": {k or "none": _sum(v) for k, v in sorted(by_currency.items())},
    }


async def overdue_candidates(conn: asyncpg.Connection, now: datetime
                             ) -> list[tuple[str, str, str]]:
    """Return (team_id, period, agent_id) of plans still due after their deadline."""
    rows = await conn.fetch(
        "SELECT team_id, period, agent_id FROM sanctions WHERE kind = 'improvement_plan'"
        " AND entry = 'grant' AND status = 'due' AND due_at < $1"
        " ORDER BY due_at, team_id, period, agent_id",
        now,
    )
    return [(r["team_id"], r["period"], r["agent_id"]) for r in rows]
