"""A rebuild of the sanctions read model from position zero gives the same ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from service.projections import admin, checkpoints
from service.projections.sanctions import Sanctions
from service.queries.wait import wait
from service.scheduler import overdue_pass
from service.store.database import Database
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import make_team

START = datetime(2026, 10, 3, 9, 0, tzinfo=UTC)
PLAN = {"root_causes": "too few follow-ups",
        "actions": [{"action": "call back within a day", "due_date": "2027-01-15"}]}


async def _rows(db: Database, team_id: str) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        items = await conn.fetch("SELECT * FROM sanctions WHERE team_id = $1 ORDER BY id",
                                 team_id)
        ledgers = await conn.fetch(
            "SELECT period, state FROM sanction_ledgers WHERE team_id = $1 ORDER BY period",
            team_id)
    return [dict(r) for r in items] + [dict(r) for r in ledgers]


async def test_rebuilding_the_sanctions_projection_gives_the_same_ledger(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    a, b, c, d = team.agents
    scores = {a: 90, b: 80, c: 70, d: 60}
    # Three published months with d last: a review in November
    for i, month in enumerate(("2026-09", "2026-10", "2026-11")):
        app_clock.set(START + timedelta(days=31 * i))
        await team.open(month)
        await team.evaluate_all(month, scores)
        assert (await team.close(month)).status_code == 200
        assert (await team.publish(month)).status_code == 200
    review = f"/v1/reassignment-reviews/{team.team_id}:2026-11:{d}/decision"
    decided = await app_client.post(review, json={"decision": "retain", "note": "coaching"},
                                    headers=team.manager)
    assert decided.status_code == 200, decided.text
    # c's November plan: rejected, resubmitted, approved
    plan = team.url("2026-11", f"/improvement-plans/{c}")
    assert (await app_client.put(plan, json=PLAN, headers=team.agent(c))).status_code == 200
    rejected = await app_client.post(plan + "/review", json={"decision": "rejected",
                                                             "comment": "dates?"},
                                     headers=team.manager)
    assert rejected.status_code == 200
    assert (await app_client.put(plan, json=PLAN, headers=team.agent(c))).status_code == 200
    approved = await app_client.post(plan + "/review", json={"decision": "approved"},
                                     headers=team.manager)
    assert approved.status_code == 200
    # A correction of November: d is now first; reversals, cancellations, new grants
    app_clock.set(START + timedelta(days=65))
    reopened = await app_client.post(team.url("2026-11", "/reopen"), json={"reason": "dispute"},
                                     headers=team.manager)
    assert reopened.status_code == 200
    await team.evaluate_all("2026-11", {d: 95})
    assert (await team.close("2026-11")).status_code == 200
    assert (await team.publish("2026-11")).status_code == 200
    # b's new plan passes its deadline and the scheduler records it
    app_clock.set(START + timedelta(days=80))
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    await overdue_pass(ctx)

    assert await wait(app_client.app.state.ctx, Sanctions(),  # type: ignore[attr-defined]
                      timeout=10)
    before = await _rows(db, team.team_id)
    statuses = {(r["kind"], r["agent_id"], r["period"], r["status"]) for r in before
                if "kind" in r}
    # d's review was decided before the correction: it keeps its decision, marked
    assert ("reassignment_review", d, "2026-11", "retain") in statuses
    review_row = next(r for r in before if r.get("kind") == "reassignment_review"
                      and r["entry"] == "grant")
    assert review_row["basis_changed"] and "correction: dispute" in review_row["basis_note"]
    assert ("improvement_plan", c, "2026-11", "approved") in statuses
    assert ("improvement_plan", b, "2026-11", "overdue") in statuses
    assert ("reward", a, "2026-11", "reversed") in statuses
    async with db.connection() as conn:
        old = await checkpoints.current(conn, "sanctions", "live")
    assert old is not None

    # The running service holds the projection's lease, so it builds the new generation
    # beside the live one and swaps it in; the CLI's rebuild waits for that.
    assert await admin.rebuild(db, "sanctions") == 0

    async with db.connection() as conn:
        new = await checkpoints.current(conn, "sanctions", "live")
    assert new is not None and new.generation > old.generation
    assert await _rows(db, team.team_id) == before


async def test_a_rebuild_gives_the_same_ledger_after_a_correction_carried_forward(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    months = ("2026-09", "2026-10", "2026-11", "2026-12")
    for i, month in enumerate(months):
        app_clock.set(START + timedelta(days=31 * i))
        await team.open(month)
        await team.evaluate_all(month, {a: 90, b: 80, c: 70})
        assert (await team.close(month)).status_code == 200
        assert (await team.publish(month)).status_code == 200
    decided = await app_client.post(
        f"/v1/reassignment-reviews/{team.team_id}:2026-11:{c}/decision",
        json={"decision": "retain", "note": "coaching"}, headers=team.manager)
    assert decided.status_code == 200, decided.text
    # October corrected: c first. November's decided review keeps its decision (basis
    # changed); December's open review is cancelled.
    app_clock.set(START + timedelta(days=130))
    reopened = await app_client.post(team.url("2026-10", "/reopen"),
                                     json={"reason": "mixed-up agents"}, headers=team.manager)
    assert reopened.status_code == 200
    await team.evaluate_all("2026-10", {c: 95})
    assert (await team.close("2026-10")).status_code == 200
    assert (await team.publish("2026-10")).status_code == 200

    assert await wait(app_client.app.state.ctx, Sanctions(),  # type: ignore[attr-defined]
                      timeout=10)
    before = await _rows(db, team.team_id)
    reviews = {(r["period"], r["status"], r["basis_changed"]) for r in before
               if r.get("kind") == "reassignment_review" and r["entry"] == "grant"}
    assert reviews == {("2026-11", "retain", True), ("2026-12", "cancelled", False)}
    assert await admin.rebuild(db, "sanctions") == 0
    assert await _rows(db, team.team_id) == before
