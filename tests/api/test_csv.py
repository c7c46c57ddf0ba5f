"""Lists answer CSV for BI tools: header row, RFC 4180 quoting, formulas neutralised."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import yaml

from service.api.events import FEED_COLUMNS
from service.api.feedback import CLASSIFICATION_COLUMNS, INTERVIEW_COLUMNS
from service.api.goals import GOAL_COLUMNS
from service.api.metrics import KPI_COLUMNS, QUARANTINE_COLUMNS
from service.api.monitoring import CALIBRATION_COLUMNS
from service.api.raters import EVALUATION_COLUMNS, INVITATION_COLUMNS
from service.api.releases import APPEAL_COLUMNS
from service.api.tabular import cell
from service.api.training import TRAINING_COLUMNS
from service.domain.cycle import cycle_stream
from service.queries.results import RANKING_COLUMNS
from service.queries.sanctions import PAYROLL_COLUMNS, SANCTION_COLUMNS
from tests.conftest import TestClock as PinnedClock
from tests.support.raters import invite, rater, train
from tests.support.scenario import ADMIN, make_team
from tests.support.server import ROOT

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


# -- every list a BI tool would load answers CSV ------------------------------------------------

PERIOD = "2026-11"
EVALUATING = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

#: Every endpoint that answers `Accept: text/csv` (the README lists exactly these).
CSV_ENDPOINTS = {
    "/v1/teams/{team_id}/agents",
    "/v1/teams/{team_id}/cycles/{period}/ranking",
    "/v1/teams/{team_id}/cycles/{period}/evaluations",
    "/v1/teams/{team_id}/cycles/{period}/invitations",
    "/v1/teams/{team_id}/cycles/{period}/goals",
    "/v1/teams/{team_id}/cycles/{period}/feedback/classification",
    "/v1/teams/{team_id}/cycles/{period}/interviews",
    "/v1/teams/{team_id}/cycles/{period}/calibration",
    "/v1/training/{evaluator_id}",
    "/v1/agents/{agent_id}/kpis",
    "/v1/teams/{team_id}/kpis",
    "/v1/sanctions",
    "/v1/payroll",
    "/v1/appeals",
    "/v1/metrics/quarantine",
    "/v1/events",
    "/v1/streams/{stream_id}/events",
}


def test_the_csv_endpoints_are_exactly_these() -> None:
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    offered = {path for path, operations in document["paths"].items()
               if "text/csv" in operations.get("get", {}).get("responses", {})
               .get("200", {}).get("content", {})}
    assert offered == CSV_ENDPOINTS


async def test_every_csv_endpoint_answers_csv_with_its_header_and_rows(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(EVALUATING)
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await team.open(PERIOD)
    peer = f"r-{uid}"
    await train(app_client, peer)
    assert (await invite(app_client, team.url(PERIOD), team.manager, peer, "peer",
                         [a])).status_code == 200
    assert (await app_client.put(team.url(PERIOD, f"/evaluations/{a}/peer"),
                                 json={"scores": {"collaboration": 70}},
                                 headers=rater(peer))).status_code == 200
    await team.evaluate_all(PERIOD, {a: 90, b: 80, c: 70})
    app_clock.set(PUBLISHED)
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    start = PUBLISHED + timedelta(days=1)
    assert (await app_client.post(
        team.url(PERIOD, f"/interviews/{a}"), headers=team.manager,
        json={"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1))
              .isoformat(), "place": "room 2"})).status_code == 201

    t, m = team.team_id, team.manager
    # (path, headers, its columns, at least this many rows)
    cases: list[tuple[str, dict[str, str], tuple[str, ...], int]] = [
        (f"/v1/teams/{t}/agents", m, ("agent_id", "name", "team_id", "position", "since"), 3),
        (team.url(PERIOD, "/ranking"), m, RANKING_COLUMNS, 3),
        (team.url(PERIOD, "/evaluations"), m, EVALUATION_COLUMNS, 3 * 6 + 1),
        (team.url(PERIOD, "/invitations"), m, INVITATION_COLUMNS, 1),
        (team.url(PERIOD, "/goals"), m, GOAL_COLUMNS, 3),
        (team.url(PERIOD, "/feedback/classification"), m, CLASSIFICATION_COLUMNS, 3),
        (team.url(PERIOD, "/interviews"), m, INTERVIEW_COLUMNS, 3),
        (team.url(PERIOD, "/calibration"), m, CALIBRATION_COLUMNS, 2),
        (f"/v1/training/{peer}", m, TRAINING_COLUMNS, 4),
        (f"/v1/agents/{a}/kpis?period={PERIOD}", m, KPI_COLUMNS, 1),
        (f"/v1/teams/{t}/kpis?period={PERIOD}", m, KPI_COLUMNS, 1),
        (f"/v1/sanctions?team_id={t}", m, SANCTION_COLUMNS, 0),
        (f"/v1/payroll?period={PERIOD}&team_id={t}", m, PAYROLL_COLUMNS, 0),
        (f"/v1/appeals?team_id={t}", m, APPEAL_COLUMNS, 0),
        ("/v1/metrics/quarantine", ADMIN, QUARANTINE_COLUMNS, 0),
        ("/v1/events?limit=5", ADMIN, FEED_COLUMNS, 5),
        (f"/v1/streams/{cycle_stream(t, PERIOD)}/events", ADMIN, FEED_COLUMNS, 3),
    ]
    assert len(cases) == len(CSV_ENDPOINTS)
    failures = []
    for path, headers, columns, at_least in cases:
        response = await app_client.get(path, headers={**headers, "Accept": "text/csv"})
        if response.status_code != 200 or not response.headers["content-type"].startswith(
                "text/csv"):
            failures.append(f"{path}: {response.status_code} {response.headers['content-type']}")
            continue
        reader = csv.reader(io.StringIO(response.text, newline=""))
        header, *rows = list(reader)
        if tuple(header) != columns or len(rows) < at_least:
            failures.append(f"{path}: header {header}, {len(rows)} rows")
        if any(len(row) != len(columns) for row in rows):
            failures.append(f"{path}: a row of another width")
    assert not failures, "\n".join(failures)
    # One shape from each: a row per score, per invited agent, per target, ISO 8601 times.
    evaluations = await app_client.get(team.url(PERIOD, "/evaluations"),
                                       headers={**m, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(evaluations.text, newline="")))
    peer_rows = [r for r in rows if r["rater_role"] == "peer"]
    assert [(r["agent_id"], r["criterion"], r["score"]) for r in peer_rows] == [
        (a, "collaboration", "70.0")]
    assert datetime.fromisoformat(peer_rows[0]["submitted_at"]) == EVALUATING
    interviews = await app_client.get(team.url(PERIOD, "/interviews"),
                                      headers={**m, "Accept": "text/csv"})
    by_agent = {r["agent_id"]: r["status"]
                for r in csv.DictReader(io.StringIO(interviews.text, newline=""))}
    assert by_agent[b] == by_agent[c] == "unscheduled" and by_agent[a] != "unscheduled"
