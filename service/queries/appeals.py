"""Read appeals: filtered lists narrowed to what the caller may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.context import ServiceContext
from service.domain import release as r
from service.projections.releases import Releases
from service.queries.wait import READ_TIMEOUT, wait

AppealStatus = Literal["open", "upheld", "amended"]

_SELECT = """
SELECT appeal_id, team_id, period, agent_id, status, reason, filed_at, appeal_until, decision,
       note, decided_by, decided_at
FROM appeals
WHERE ($1::text IS NULL OR team_id = $1)
  AND ($2::text IS NULL OR period = $2)
  AND ($3::text IS NULL OR agent_id = $3)
  AND ($4::text IS NULL OR status = $4)
  AND ($5::text[] IS NULL OR team_id = ANY($5::text[]))
ORDER BY filed_at, appeal_id
"""


@dataclass(frozen=True)
class Filters:
    """What a caller asked for, narrowed to what they may see."""

    team_id: str | None = None
    period: str | None = None
    agent_id: str | None = None
    status: str | None = None
    teams: Sequence[str] | None = None


async def list_appeals(ctx: ServiceContext, filters: Filters) -> list[dict[str, Any]]:
    """Return the appeals matching the filters, oldest first."""
    await wait(ctx, Releases(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(_SELECT, filters.team_id, filters.period, filters.agent_id,
                                filters.status,
                                list(filters.teams) if filters.teams is not None else None)
    return [dict(row) for row in rows]


def appeal_document(appeal: r.AppealFiled, decision: r.AppealDecided | None,
                    cycle_status: str | None = None) -> dict[str, Any]:
    """Render an appeal from its events."""
    status = "open" if decision is None else (
        "upheld" if decision.decision == "uphold" else "amended")
    return {
        "appeal_id": appeal.appeal_id, "team_id": appeal.team_id, "period": appeal.period,
        "agent_id": appeal.agent_id, "status": status, "reason": appeal.reason,
        "filed_at": appeal.filed_at, "appeal_until": appeal.appeal_until,
        "decision": decision.decision if decision else None,
        "note": decision.note if decision else None,
        "decided_by": decision.decided_by if decision else None,
        "decided_at": decision.decided_at if decision else None,
        "cycle_status": cycle_status,
    }
