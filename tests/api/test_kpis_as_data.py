"""KPIs as data through the API (issue 19): metrics and KPIs declared in a scheme, per
position and per team, validated, replayed from the quarantine, and shown with their source."""

from __future__ import annotations

from typing import Any

import httpx

from service.store import reporting
from service.store.database import Database
from tests.conftest import bearer, make_token
from tests.support.raters import train
from tests.support.scenario import ADMIN, Team, make_team

PERIOD = "2026-11"
AT = "2026-11-20T10:00:00+09:00"
ATTENDANCE = {"name": "attendance_rate", "kind": "measured", "direction": "higher",
              "target": 0.98, "floor": 0.80, "unit": "ratio", "label": "Attendance rate",
              "formula": {"op": "ratio", "of": "days_present", "over": "days_scheduled"}}
DAYS = [{"name": "days_present", "unit": "count", "aggregation": "sum", "label": "Days present"},
        {"name": "days_scheduled", "unit": "count", "aggregation": "sum",
         "label": "Days scheduled"}]


def ingest(source: str) -> dict[str, str]:
    return bearer(make_token("ingest", source=source))


def sample(agent_id: str, sample_id: str, metric: str, value: float) -> dict[str, Any]:
    return {"id": sample_id, "agent_id": agent_id, "metric": metric, "value": value,
            "occurred_at": AT}


async def send(client: httpx.AsyncClient, source: str, samples: list[dict[str, Any]]
               ) -> dict[str, Any]:
    response = await client.post("/v1/metrics", json={"source": source, "samples": samples},
                                 headers=ingest(source))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def base_scheme(client: httpx.AsyncClient) -> dict[str, Any]:
    """The built-in scheme in force (version 2, fair months) as a PUT body."""
    body: dict[str, Any] = (await client.get("/v1/schemes/online-shop-cs",
                                             headers=ADMIN)).json()
    body.pop("scheme_id"), body.pop("version")
    return body


async def publish(client: httpx.AsyncClient, scheme_id: str, body: dict[str, Any]
                  ) -> httpx.Response:
    return await client.put(f"/v1/schemes/{scheme_id}", json=body, headers=ADMIN)


async def use_scheme(client: httpx.AsyncClient, team: Team, scheme_id: str,
                     **extra: Any) -> httpx.Response:
    response = await client.put(f"/v1/teams/{team.team_id}", headers=ADMIN, json={
        "name": "T", "scheme_id": scheme_id, **extra})
    return response


async def evaluate(client: httpx.AsyncClient, team: Team, score: float = 80.0) -> None:
    await train(client, team.manager_id)
    for agent in team.agents:
        await team.self_eval(PERIOD, agent, score)
        await team.manager_eval(PERIOD, agent, score)


async def card(client: httpx.AsyncClient, team: Team, agent: str) -> dict[str, Any]:
    response = await client.get(team.url(PERIOD, f"/scorecards/{agent}"), headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_hr_adds_attendance_for_a_security_desk_and_a_position_with_no_kpis(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: Any
) -> None:
    # Given a team whose scheme does not know days_present yet
    team = await make_team(app_client, uid, 3, positions=("security-desk", "courier", "sales"))
    guard, courier, seller = team.agents
    source = f"door-{uid}"
    early = await send(app_client, source, [sample(guard, f"{uid}-p", "days_present", 19)])
    # Then the sample is refused as unknown_metric, and kept
    assert [r["reason"] for r in early["rejected"]] == ["unknown_metric"]

    # When HR declares the metrics and the KPI for the security desk (every other KPI dropped
    # there) and leaves the courier position without any KPI
    body = await base_scheme(app_client)
    body["metrics"] += DAYS
    dropped = {k["name"]: {"weight": 0.0} for k in body["kpis"]}
    body["position_overrides"] = {
        "security-desk": {**dropped, "attendance_rate": {**ATTENDANCE, "weight": 1.0}},
        "courier": dropped,
    }
    for extra in body["position_overrides"]["security-desk"].values():
        extra.pop("name", None)
    scheme_id = f"desk-{uid}"
    published = await publish(app_client, scheme_id, body)
    assert published.status_code == 200, published.text
    assert (await use_scheme(app_client, team, scheme_id)).status_code == 200
    # then the kept sample is replayed, and new ones are taken
    replay = await app_client.post("/v1/metrics/quarantine/replay", json={"source": source},
                                   headers=ADMIN)
    assert replay.json()["replayed"] == 1, replay.text
    later = await send(app_client, source, [sample(guard, f"{uid}-s", "days_scheduled", 20),
                                            sample(seller, f"{uid}-o", "orders", 4)])
    assert later["accepted"] == 2, later

    # When the month is evaluated and closed
    await team.open(PERIOD, scheme_version=None)
    await evaluate(app_client, team)
    closed = await team.close(PERIOD)
    assert closed.status_code == 200, closed.text

    # Then the guard is judged on attendance alone: 19 / 20 = 0.95 against 0.98 / 0.80
    desk = await card(app_client, team, guard)
    attendance = desk["kpis"]["attendance_rate"]
    assert attendance["value"] == 0.95
    assert attendance["label"] == "Attendance rate"
    assert attendance["formula"] == "days_present / days_scheduled"
    assert attendance["target_source"] == "position"  # the position defined it
    assert abs(attendance["attainment"] - 100 * (0.95 - 0.80) / (0.98 - 0.80)) < 1e-9
    assert desk["work_performance"]["kpis"]["attendance_rate"]["effective_weight"] == 1.0
    # the courier has no KPIs: only the rated criteria count, and the scorecard says so
    courier_card = await card(app_client, team, courier)
    assert courier_card["work_performance"]["score"] is None
    assert any("has no KPIs" in n for n in courier_card["notes"])
    manager = courier_card["components"]["manager"]["criteria"]
    assert manager["work_performance"]["effective_weight"] == 0.0
    assert abs(courier_card["components"]["manager"]["score"] - 80.0) < 1e-9
    # the seller keeps the built-in KPIs and has no attendance KPI
    assert "attendance_rate" not in (await card(app_client, team, seller))["kpis"]

    # The reporting view shows each agent's KPIs as their card does: their position's own
    # (label, unit, formula and weight are stored once per position and month)
    async with db.connection() as conn:
        await reporting.ensure_reporting(conn)
        for agent in team.agents:
            shown = (await card(app_client, team, agent))["kpis"]
            rows = await conn.fetch(
                "SELECT * FROM reporting.scorecard_kpis WHERE team_id = $1 AND agent_id = $2",
                team.team_id, agent)
            assert {r["kpi"]: (r["label"], r["unit"], r["formula"], r["weight"], r["value"],
                               r["target"], r["target_source"]) for r in rows} == {
                name: (k["label"], k["unit"], k["formula"], k["weight"], k["value"],
                       k["target"], k["target_source"]) for name, k in shown.items()}, agent


async def test_every_kpi_problem_of_a_scheme_is_a_422_naming_each_field(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    body = await base_scheme(app_client)
    body["metrics"].append(DAYS[0])
    body["kpis"][0] = {**ATTENDANCE, "weight": 0.15}  # days_scheduled not declared
    body["kpis"][1]["formula"] = {"op": "ratio", "of": "orders", "over": "orders"}
    body["kpis"][2]["name"] = "cooperation"  # a criterion of the manager
    body["kpis"][3]["floor"] = 90000.0  # order_amount's floor above its target
    body["kpis"][4]["weight"] = 0.4  # weights sum to 1.35
    response = await publish(app_client, f"bad-{uid}", body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"kpis.attendance_rate.formula.over", "kpis.avg_response_time_seconds.formula.over",
            "roles[1].criteria[2].name", "kpis.order_amount.target", "kpis"} <= fields


async def test_a_metric_renamed_while_a_month_is_open_counts_for_that_month_only(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    # Given a scheme that declares presence_days, a team on it, and its November open
    body = await base_scheme(app_client)
    body["metrics"].append({"name": "presence_days", "unit": "count"})
    scheme_id = f"ren-{uid}"
    assert (await publish(app_client, scheme_id, body)).status_code == 200
    team = await make_team(app_client, uid, 1)
    agent = team.agents[0]
    assert (await use_scheme(app_client, team, scheme_id)).status_code == 200
    await team.open(PERIOD, scheme_version=None)
    # When version 2 renames the metric days_present
    body["metrics"][-1] = {"name": "days_present", "unit": "count"}
    assert (await publish(app_client, scheme_id, body)).json()["version"] == 2
    source = f"door-{uid}"
    old = await send(app_client, source, [sample(agent, f"{uid}-1", "presence_days", 3)])
    new = await send(app_client, source, [sample(agent, f"{uid}-2", "days_present", 3)])
    # Then the open November keeps its version: the old name still counts for it, and the
    # new name (in force for the team now) counts too
    assert (old["accepted"], new["accepted"]) == (1, 1), (old, new)
    cycle = (await app_client.get(team.url(PERIOD), headers=ADMIN)).json()
    assert cycle["scheme_version"] == 1
    # and December, not open on version 1, no longer takes the old name
    december = sample(agent, f"{uid}-3", "presence_days", 3) | {
        "occurred_at": "2026-12-02T10:00:00+09:00"}
    refused = await send(app_client, source, [december])
    assert [r["reason"] for r in refused["rejected"]] == ["unknown_metric"]
    # The live KPIs of November are measured by its version, December's by the latest, read
    # after reading the agent, the team and the scheme in turn and then together (held)
    for _ in range(2):
        live = (await app_client.get(f"/v1/agents/{agent}/kpis?period={PERIOD}",
                                     headers=ADMIN)).json()
        assert live["totals"]["presence_days"] == 3 and "days_present" not in live["totals"]
        later = (await app_client.get(f"/v1/agents/{agent}/kpis?period=2026-12",
                                      headers=ADMIN)).json()
        assert later["totals"]["days_present"] == 0 and "presence_days" not in later["totals"]


async def test_a_kpi_whose_over_metric_never_arrives_is_unavailable_for_the_team(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    body = await base_scheme(app_client)
    body["metrics"] += DAYS
    body["kpis"][0] = {**ATTENDANCE, "weight": 0.15}  # in place of conversion_rate
    scheme_id = f"un-{uid}"
    assert (await publish(app_client, scheme_id, body)).status_code == 200
    team = await make_team(app_client, uid, 3)
    assert (await use_scheme(app_client, team, scheme_id)).status_code == 200
    source = f"door-{uid}"
    # days_present arrives for everyone, days_scheduled for nobody
    sent = await send(app_client, source, [sample(a, f"{uid}-{i}", "days_present", 20)
                                           for i, a in enumerate(team.agents)])
    assert sent["accepted"] == 3
    await team.open(PERIOD, scheme_version=None)
    await evaluate(app_client, team)
    closed = await team.close(PERIOD)
    assert closed.status_code == 200, closed.text
    warnings = {w["kind"]: w for w in closed.json()["warnings"]}
    assert "attendance_rate" in warnings["kpi_unavailable"]["kpis"]
    ranking = await team.ranking(PERIOD)
    assert "attendance_rate" in ranking["unavailable_kpis"]  # type: ignore[operator]
    first = await card(app_client, team, team.agents[0])
    assert first["kpis"]["attendance_rate"]["status"] == "unavailable"
    assert first["kpis"]["attendance_rate"]["value"] is None


async def test_two_teams_with_their_own_currency_targets_in_one_payroll_export(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    # Given Berlin (EUR) and Shanghai (CNY), each with its own order_amount target
    berlin = await make_team(app_client, f"{uid}-b", 3)
    shanghai = await make_team(app_client, f"{uid}-s", 3)
    eur = await app_client.put(f"/v1/teams/{berlin.team_id}", headers=ADMIN, json={
        "name": "Berlin", "currency": "EUR",
        "kpi_targets": {"order_amount": {"target": 6000.0, "floor": 0.0}}})
    assert eur.status_code == 200, eur.text
    assert eur.json()["kpi_targets"] == {"order_amount": {"target": 6000.0, "floor": 0.0}}
    cny = await app_client.put(f"/v1/teams/{shanghai.team_id}", headers=ADMIN, json={
        "name": "Shanghai", "kpi_targets": {"order_amount": {"target": 45000.0}}})
    assert cny.status_code == 200, cny.text
    # A target on the wrong side of its floor, or for a KPI the scheme does not measure: 422
    bad = await app_client.put(f"/v1/teams/{berlin.team_id}", headers=ADMIN, json={
        "name": "Berlin", "kpi_targets": {"order_amount": {"target": -5.0},
                                          "charm": {"target": 1.0}}})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {
        "kpi_targets.order_amount.target", "kpi_targets.charm"}
    # When both months are closed and published with the same order amounts
    source = f"shop-{uid}"
    for team in (berlin, shanghai):
        await send(app_client, source, [
            sample(a, f"{team.team_id}-{i}", "order_amount", 3000.0 * (i + 1))
            for i, a in enumerate(team.agents)])
    for team in (berlin, shanghai):
        await team.open(PERIOD, scheme_version=None)
        await evaluate(app_client, team)
        assert (await team.close(PERIOD)).status_code == 200
        assert (await team.publish(PERIOD)).status_code == 200
    # Then each scorecard shows its team's target and where it came from
    b = (await card(app_client, berlin, berlin.agents[0]))["kpis"]["order_amount"]
    s = (await card(app_client, shanghai, shanghai.agents[0]))["kpis"]["order_amount"]
    assert (b["target"], b["target_source"]) == (6000.0, "team")
    assert (s["target"], s["floor"], s["target_source"]) == (45000.0, 0.0, "team")
    assert b["attainment"] == 50.0 and abs(s["attainment"] - 100 * 3000 / 45000) < 1e-9
    # the agents were issued the targets they were scored against
    goals = await app_client.get(berlin.url(PERIOD, f"/goals/{berlin.agents[0]}"),
                                 headers=ADMIN)
    assert goals.json()["targets"]["order_amount"]["target"] == 6000.0, goals.text
    # and one payroll export lists both teams, each in its own currency
    payroll = await app_client.get(f"/v1/payroll?period={PERIOD}", headers=ADMIN)
    assert payroll.status_code == 200, payroll.text
    currencies = {(i["team_id"], i["currency"]) for i in payroll.json()["lines"]
                  if i["team_id"] in (berlin.team_id, shanghai.team_id)}
    assert currencies == {(berlin.team_id, "EUR"), (shanghai.team_id, "CNY")}


async def test_one_batch_is_judged_by_each_sample_s_own_team_s_declarations(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    # Given a team on a scheme declaring a count and an hour metric, and one on the built-in
    body = await base_scheme(app_client)
    body["metrics"] += [DAYS[0], {"name": "hours_worked", "unit": "hours"}]
    scheme_id = f"mix-{uid}"
    assert (await publish(app_client, scheme_id, body)).status_code == 200
    desk = await make_team(app_client, f"{uid}d", 1)
    shop = await make_team(app_client, f"{uid}s", 1)
    assert (await use_scheme(app_client, desk, scheme_id)).status_code == 200
    guard, seller = desk.agents[0], shop.agents[0]
    # When one batch mixes them (and an agent nobody registered)
    result = await send(app_client, f"mix-{uid}", [
        sample(guard, f"{uid}-1", "days_present", 2.5),
        sample(guard, f"{uid}-2", "hours_worked", 7.5),
        sample(seller, f"{uid}-3", "hours_worked", 7.5),
        sample(seller, f"{uid}-4", "orders", 1),
        sample(f"ghost-{uid}", f"{uid}-5", "hours_worked", 1),
    ])
    # Then a count takes whole numbers only, hours take fractions, the shop's scheme does not
    # declare hours (the detail names the team), and an unknown agent is unknown_agent first
    assert result["accepted"] == 2, result
    rejected = {r["index"]: r for r in result["rejected"]}
    assert {i: r["reason"] for i, r in rejected.items()} == {
        0: "fractional_count", 2: "unknown_metric", 4: "unknown_agent"}
    assert shop.team_id in rejected[2]["detail"]
