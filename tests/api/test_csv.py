"""Lists answer CSV for BI tools: header row, RFC 4180 quoting, formulas neutralised."""

from __future__ import annotations

import csv
import io

import httpx

from service.api.tabular import cell
from tests.support.scenario import ADMIN, make_team

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2", "@SUM(A1)", 'comma, "quote"\nnewline']


def test_cells_that_spreadsheets_would_evaluate_are_neutralised() -> None:
    assert [cell(v) for v in HOSTILE[:4]] == ["'" + v for v in HOSTILE[:4]]
    assert cell(HOSTILE[4]) == HOSTILE[4]
    assert (cell(None), cell(True), cell(3), cell(2.5), cell(-2)) == ("", "true", "3", "2.5", "-2")


async def test_agent_list_csv_round_trips_hostile_names(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 0)
    for i, name in enumerate(HOSTILE):
        response = await app_client.put(f"/v1/agents/h-{uid}-{i}",
                                        json={"name": name, "team_id": team.team_id},
                                        headers=ADMIN)
        assert response.status_code == 201
    response = await app_client.get(f"/v1/teams/{team.team_id}/agents",
                                    headers={**ADMIN, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.startswith("agent_id,name,team_id,position,since\r\n")
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    names = {r["agent_id"]: r["name"] for r in rows}
    for i, name in enumerate(HOSTILE):
        expected = "'" + name if name[0] in "=+-@" else name
        assert names[f"h-{uid}-{i}"] == expected


async def test_ranking_and_feed_answer_csv(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 2)
    await team.open("2026-11")
    await team.evaluate_all("2026-11", dict(zip(team.agents, (90, 80), strict=True)))
    response = await app_client.get(team.url("2026-11", "/ranking"),
                                    headers={**team.manager, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [r["agent_id"] for r in rows] == team.agents
    assert rows[0]["rank"] == "1" and rows[1]["rank"] == "2"
    feed = await app_client.get("/v1/events?limit=5", headers={**ADMIN, "Accept": "text/csv"})
    assert feed.status_code == 200 and feed.headers["x-next-cursor"]
    assert len(list(csv.DictReader(io.StringIO(feed.text, newline="")))) == 5
