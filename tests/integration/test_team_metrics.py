"""The declared-metrics read model ingestion looks up (issue 19): the projection and the
streams give the same answer, and a scheme published a moment ago decides the next batch."""

from __future__ import annotations

import httpx

from service.context import ServiceContext
from service.domain.team_metrics import ANY_MONTH
from service.projections.team_metrics import TeamMetrics
from service.queries.wait import wait
from service.store import team_metrics
from service.store.database import Database
from tests.support.scenario import ADMIN, Team, make_team

PERIOD = "2026-11"


def context(client: httpx.AsyncClient) -> ServiceContext:
    ctx: ServiceContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


async def _team_between_versions(app_client: httpx.AsyncClient, uid: str) -> Team:
    """Make a scheme whose version 1 declares v1_metric, a team on it with November open on
    version 1, and version 2 declaring v2_metric instead."""
    base = (await app_client.get("/v1/schemes/online-shop-cs", headers=ADMIN)).json()
    base.pop("scheme_id"), base.pop("version")
    scheme_id = f"tm-{uid}"
    base["metrics"].append({"name": "v1_metric", "unit": "count"})
    assert (await app_client.put(f"/v1/schemes/{scheme_id}", json=base,
                                 headers=ADMIN)).status_code == 200
    team = await make_team(app_client, uid, 1)
    await app_client.put(f"/v1/teams/{team.team_id}", headers=ADMIN,
                         json={"name": "T", "scheme_id": scheme_id})
    await team.open(PERIOD, scheme_version=None)
    base["metrics"][-1] = {"name": "v2_metric", "unit": "count"}
    assert (await app_client.put(f"/v1/schemes/{scheme_id}", json=base,
                                 headers=ADMIN)).status_code == 200
    return team


async def test_the_read_model_and_the_streams_agree(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    # Given a scheme whose version 1 declares v1_metric, a team on it with November open on
    # version 1, and version 2 declaring v2_metric instead
    team = await _team_between_versions(app_client, uid)
    pairs = {(team.team_id, PERIOD), (team.team_id, "2026-12")}
    # When the projection has caught up
    assert await wait(context(app_client), TeamMetrics(), timeout=30)
    async with context(app_client).db.connection() as conn:
        rows = await conn.fetch("SELECT period, metric FROM team_metrics WHERE team_id = $1",
                                team.team_id)
        looked_up = await team_metrics.declared(conn, pairs)
        from_streams = await team_metrics.from_streams(conn, pairs)
    # Then the read model holds the latest version's metrics for any month, and the pinned
    # version's for November; the lookup equals what the streams say
    stored = {(r["period"], r["metric"]) for r in rows}
    assert (ANY_MONTH, "v2_metric") in stored and (ANY_MONTH, "v1_metric") not in stored
    assert (PERIOD, "v1_metric") in stored and (PERIOD, "v2_metric") not in stored
    assert looked_up == from_streams
    assert {"v1_metric", "v2_metric"} <= set(looked_up[(team.team_id, PERIOD)])
    december = looked_up[(team.team_id, "2026-12")]
    assert "v2_metric" in december and "v1_metric" not in december
    assert december["consultations"].unit == "count"


async def test_a_month_opened_before_the_read_model_took_it_in_is_read_from_the_streams(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    # Given a team whose November is open on the scheme's version 1, which declares
    # v1_metric, while version 2 (the latest) declares v2_metric instead
    team = await _team_between_versions(app_client, uid)
    assert await wait(context(app_client), TeamMetrics(), timeout=30)
    async with context(app_client).db.connection() as conn:
        # When the read model shows no row of November yet (its cycle opened a moment ago;
        # rolled back after, so the read model is left as it was)
        undo = conn.transaction()
        await undo.start()
        await conn.execute("DELETE FROM team_metrics WHERE team_id = $1 AND period = $2",
                           team.team_id, PERIOD)
        looked_up = await team_metrics.declared(conn, {(team.team_id, PERIOD)})
        await undo.rollback()
    # Then November takes the metrics of the version its cycle pinned too, from the streams
    assert "v1_metric" in looked_up[(team.team_id, PERIOD)]
