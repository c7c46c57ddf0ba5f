"""The monthly cycle through the API: open, evaluate, close, publish, rankings, scorecards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service import observability
from service.commands import base
from service.commands import cycles as commands
from service.domain import directory as d
from service.domain.events import DomainEvent, decode
from service.queries.streams import load
from service.store.database import Database
from service.store.event_store import append, read_stream
from tests.support.scenario import ADMIN, MANAGER_FORM, make_team, uniform_composite

PERIOD = "2026-11"


@pytest.mark.parametrize("period", ["2026-13", "26-1", "2026-1", "2026-00", "x"])
async def test_bad_periods_are_422(app_client: httpx.AsyncClient, uid: str, period: str) -> None:
    team = await make_team(app_client, uid, 1)
    response = await app_client.post(f"/v1/teams/{team.team_id}/cycles",
                                     json={"period": period}, headers=team.manager)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "period"


async def test_open_pins_scheme_and_deadline_and_refuses_twice(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1, timezone="Asia/Seoul")
    opened = (await team.open(PERIOD)).json()
    assert opened["status"] == "open"
    assert opened["scheme_id"] == "online-shop-cs" and opened["scheme_version"] >= 1
    # The 7th of the following month ends at midnight Seoul time.
    assert opened["deadline"] == "2026-12-07T15:00:00Z"
    again = await app_client.post(f"/v1/teams/{team.team_id}/cycles",
                                  json={"period": PERIOD}, headers=team.manager)
    assert again.status_code == 409


async def test_unknown_team_or_cycle_is_404(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 1)
    missing_cycle = await app_client.post(team.url("2026-10", "/publish"), headers=team.manager)
    assert missing_cycle.status_code == 404
    missing_team = await app_client.get(f"/v1/teams/none-{uid}/cycles/{PERIOD}", headers=ADMIN)
    assert missing_team.status_code == 404


async def test_evaluation_forms_are_checked(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 2)
    await team.open(PERIOD)
    agent = team.agents[0]
    url = team.url(PERIOD, f"/evaluations/{agent}")
    cases: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        ("/self", {"scores": {}}, team.agent(agent), "scores.task_completion"),
        ("/self", {"scores": {"task_completion": 50, "charm": 3}}, team.agent(agent),
         "scores.charm"),
        ("/self", {"scores": {"task_completion": 101}}, team.agent(agent),
         "scores.task_completion"),
        ("/manager", {"scores": dict.fromkeys(MANAGER_FORM[1:], 50)}, team.manager,
         "scores.work_ability"),
        ("/manager", {"scores": {**dict.fromkeys(MANAGER_FORM, 50), "work_performance": 90}},
         team.manager, "scores.work_performance"),
    ]
    for tail, body, headers, field in cases:
        response = await app_client.put(url + tail, json=body, headers=headers)
        assert response.status_code == 422, (tail, body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    bad_role = await app_client.put(url + "/boss", json={"scores": {}}, headers=ADMIN)
    assert bad_role.status_code == 422


async def test_self_evaluation_only_by_the_agent(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 2)
    await team.open(PERIOD)
    a, b = team.agents
    response = await app_client.put(team.url(PERIOD, f"/evaluations/{a}/self"),
                                    json={"scores": {"task_completion": 80}}, headers=team.agent(b))
    assert response.status_code == 403
    response = await app_client.put(team.url(PERIOD, f"/evaluations/{a}/self"),
                                    json={"scores": {"task_completion": 80}}, headers=team.manager)
    assert response.status_code == 403


async def test_evaluating_an_agent_of_another_team_is_422(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid + "a", 1)
    other = await make_team(app_client, uid + "b", 1)
    await team.open(PERIOD)
    response = await app_client.put(
        team.url(PERIOD, f"/evaluations/{other.agents[0]}/manager"),
        json={"scores": dict.fromkeys(MANAGER_FORM, 70)}, headers=team.manager)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "agent_id"


async def test_close_lists_missing_then_forced_close_records_policy(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 3)
    await team.open(PERIOD)
    a, b, c = team.agents
    await team.evaluate_all(PERIOD, {a: 90, b: 70})
    await team.self_eval(PERIOD, c, 80)
    refused = await team.close(PERIOD)
    assert refused.status_code == 409
    assert refused.json()["missing"] == [{"agent_id": c, "rater_role": "manager"}]
    no_reason = await team.close(PERIOD, force=True)
    assert no_reason.status_code == 422
    forced = await team.close(PERIOD, force=True, reason="manager on leave",
                              missing_policy="zero")
    assert forced.status_code == 200, forced.text
    cycle = forced.json()
    assert cycle["status"] == "closed" and cycle["forced"] is True
    assert cycle["missing_policy"] == "zero"
    assert cycle["missing_at_close"] == [{"agent_id": c, "rater_role": "manager"}]
    ranking = await team.ranking(PERIOD)
    scores = {e["agent_id"]: e["score"] for e in ranking["entries"]}  # type: ignore[index]
    # c: self 80 counts 30 %, the missing manager part counts as 0.
    assert scores == {a: uniform_composite(90), b: uniform_composite(70), c: 24.0}
    after_close = await app_client.put(team.url(PERIOD, f"/evaluations/{a}/self"),
                                       json={"scores": {"task_completion": 10}},
                                       headers=team.agent(a))
    assert after_close.status_code == 409


async def test_ranking_with_ties_and_publication(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 4)
    await team.open(PERIOD)
    a, b, c, d = team.agents
    await team.evaluate_all(PERIOD, {a: 90, b: 80, c: 80, d: 60})
    provisional = await team.ranking(PERIOD)
    assert provisional["provisional"] is True and provisional["status"] == "open"
    early = await team.publish(PERIOD)
    assert early.status_code == 409
    assert (await team.close(PERIOD)).status_code == 200

    async def card_status() -> tuple[object, object]:
        card = (await app_client.get(team.url(PERIOD, f"/scorecards/{a}"),
                                     headers=team.manager)).json()
        return card["status"], card["provisional"]

    assert await card_status() == ("closed", False)
    published = await team.publish(PERIOD)
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    ranking = await team.ranking(PERIOD)
    assert ranking["status"] == "published" and ranking["provisional"] is False
    assert await card_status() == ("published", False)
    entries = ranking["entries"]
    assert [(e["agent_id"], e["rank"], e["tied"]) for e in entries] == [  # type: ignore[union-attr]
        (a, 1, False), (b, 2, True), (c, 2, True), (d, 4, False)]
    assert [e["places"] for e in entries] == [[1, 1], [2, 3], [2, 3], [4, 4]]  # type: ignore
    twice = await team.publish(PERIOD)
    assert twice.status_code == 409


async def test_a_frozen_ranking_revalidates_with_its_etag_and_changes_with_every_write(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 2)
    await team.open(PERIOD)
    a, b = team.agents
    await team.evaluate_all(PERIOD, {a: 90, b: 60})
    url = team.url(PERIOD, "/ranking")
    provisional = await app_client.get(url, headers=team.manager)
    assert "etag" not in provisional.headers  # computed live while open
    # RFC 9110: "*" matches any current representation, the provisional one included.
    anything = await app_client.get(url, headers={**team.manager, "If-None-Match": "*"})
    assert anything.status_code == 304 and anything.content == b""
    assert (await team.close(PERIOD)).status_code == 200

    closed = await app_client.get(url, headers=team.manager)
    tag = closed.headers["etag"]
    assert closed.json()["status"] == "closed"
    unchanged = await app_client.get(url, headers={**team.manager, "If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    weak = await app_client.get(url, headers={**team.manager, "If-None-Match": f'"x", W/{tag}'})
    assert weak.status_code == 304
    star = await app_client.get(url, headers={**team.manager, "If-None-Match": "*"})
    assert star.status_code == 304 and star.headers["etag"] == tag
    other = await app_client.get(url, headers={**team.manager, "If-None-Match": '"x"'})
    assert other.status_code == 200 and other.json() == closed.json()
    as_csv = await app_client.get(url, headers={**team.manager, "Accept": "text/csv"})
    assert as_csv.headers["etag"] not in (tag, None)

    assert (await team.publish(PERIOD)).status_code == 200
    published = await app_client.get(url, headers={**team.manager, "If-None-Match": tag})
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert published.headers["etag"] != tag
    assert [e["agent_id"] for e in published.json()["entries"]] == [a, b]

    # A correction reopens, changes the order and freezes again: the document read after it
    # is the new one, never the one held from before.
    reopened = await app_client.post(team.url(PERIOD, "/reopen"),
                                     json={"reason": "dispute upheld"}, headers=team.manager)
    assert reopened.status_code == 200
    await team.evaluate_all(PERIOD, {b: 95})
    assert (await team.close(PERIOD)).status_code == 200
    again = await app_client.get(url, headers={**team.manager,
                                               "If-None-Match": published.headers["etag"]})
    assert again.status_code == 200 and again.json()["status"] == "closed"
    assert [e["agent_id"] for e in again.json()["entries"]] == [b, a]
    assert again.headers["etag"] not in (tag, published.headers["etag"])


async def test_everyone_tied_and_a_team_of_one(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 3)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict.fromkeys(team.agents, 75))
    assert (await team.close(PERIOD)).status_code == 200
    entries = (await team.ranking(PERIOD))["entries"]
    assert {(e["rank"], e["tied"]) for e in entries} == {(1, True)}  # type: ignore[union-attr]

    solo = await make_team(app_client, uid + "s", 1)
    await solo.open(PERIOD)
    await solo.evaluate_all(PERIOD, {solo.agents[0]: 50})
    assert (await solo.close(PERIOD)).status_code == 200
    entries = (await solo.ranking(PERIOD))["entries"]
    assert [(e["rank"], e["tied"]) for e in entries] == [(1, False)]  # type: ignore[union-attr]


async def test_scorecard_explains_every_number(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 1)
    await team.open(PERIOD)
    agent = team.agents[0]
    await team.self_eval(PERIOD, agent, 80)
    scores = {"work_ability": 60, "cooperation": 70, "service": 80, "report_timeliness": 100,
              "report_reliability": 50, "report_quality": 0}
    response = await app_client.put(team.url(PERIOD, f"/evaluations/{agent}/manager"),
                                    json={"scores": scores}, headers=team.manager)
    assert response.status_code == 200
    assert (await team.close(PERIOD)).status_code == 200
    # Closed, not published: the result has not reached the agent yet (the manager sees it).
    own = (await app_client.get(team.url(PERIOD, f"/scorecards/{agent}"),
                                headers=team.agent(agent))).json()
    assert (own["released"], own["rank"], own["composite"]) == (False, None, None)
    card = (await app_client.get(team.url(PERIOD, f"/scorecards/{agent}"),
                                 headers=team.manager)).json()
    # No metrics: order_amount is 0 (at its floor, attainment 0, weight 0.15), the ratio KPIs
    # have no data and drop out, the rated ones weigh 0.1 each: (0 + 10 + 5 + 0) / 0.45 =
    # 33.33. Manager = (33.33 + 60 + 70 + 80) / 4 = 60.83. Composite = 24 + 0.7 * 60.83.
    assert card["work_performance"]["score"] == pytest.approx(100 / 3, abs=1e-3)
    assert card["components"]["manager"]["score"] == pytest.approx(60.8333, abs=1e-3)
    assert card["composite"] == pytest.approx(66.5833, abs=1e-3)
    assert card["kpis"]["conversion_rate"]["dropped"] is True
    assert card["kpis"]["order_amount"]["value"] == 0 and card["kpis"]["order_amount"][
        "attainment"] == 0
    assert card["kpis"]["conversion_rate"]["target"] == 0.30
    assert any("conversion_rate" in note for note in card["notes"])
    assert {e["rater_role"] for e in card["evaluations"]} == {"self", "manager"}
    assert card["formula_version"] and card["formula"]
    assert card["rank"] == 1


async def test_concurrent_revisions_never_fail_and_last_wins(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1)
    await team.open(PERIOD)
    agent = team.agents[0]
    url = team.url(PERIOD, f"/evaluations/{agent}/self")
    responses = await asyncio.gather(*[
        app_client.put(url, json={"scores": {"task_completion": float(s)}},
                       headers=team.agent(agent))
        for s in range(20)
    ])
    assert {r.status_code for r in responses} == {200}
    revisions = sorted(r.json()["revision"] for r in responses)
    assert revisions == list(range(1, 21)), "a revision was lost or duplicated"
    last = max(responses, key=lambda r: r.json()["revision"]).json()
    history = await app_client.get(f"/v1/streams/cycle:{team.team_id}:{PERIOD}/events",
                                   headers=ADMIN)
    if history.status_code == 200:
        submitted = [e for e in history.json()["items"] if e["type"] == "EvaluationSubmitted"]
        assert len(submitted) == 20
    card = await app_client.get(team.url(PERIOD, f"/scorecards/{agent}"), headers=team.manager)
    assert card.json()["evaluations"][0]["scores"] == last["scores"]


async def test_scheme_published_while_open_does_not_change_the_cycle(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    scheme_id = f"s-{uid}"
    base = (await app_client.get("/v1/schemes/online-shop-cs?version=1", headers=ADMIN)).json()
    base.pop("scheme_id"), base.pop("version")
    first = await app_client.put(f"/v1/schemes/{scheme_id}", json=base, headers=ADMIN)
    assert first.status_code == 200 and first.json()["version"] == 1
    team = await make_team(app_client, uid, 1)
    await app_client.put(f"/v1/teams/{team.team_id}",
                         json={"name": "T", "scheme_id": scheme_id}, headers=ADMIN)
    opened = (await team.open(PERIOD)).json()
    assert (opened["scheme_id"], opened["scheme_version"]) == (scheme_id, 1)
    changed = {**base, "roles": [
        {**r, "weight": {"self": 0.5, "manager": 0.5}.get(r["role"], 0.0)} for r in base["roles"]
    ]}
    second = await app_client.put(f"/v1/schemes/{scheme_id}", json=changed, headers=ADMIN)
    assert second.status_code == 200 and second.json()["version"] == 2
    await team.self_eval(PERIOD, team.agents[0], 100)
    await team.manager_eval(PERIOD, team.agents[0], 0)
    assert (await team.close(PERIOD)).status_code == 200
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["scheme_version"] == 1
    entries = (await team.ranking(PERIOD))["entries"]
    assert entries[0]["score"] == pytest.approx(30.0)  # type: ignore[index]


async def test_invalid_scheme_lists_every_problem(app_client: httpx.AsyncClient, uid: str) -> None:
    base = (await app_client.get("/v1/schemes/online-shop-cs?version=1", headers=ADMIN)).json()
    base.pop("scheme_id"), base.pop("version")
    base["roles"][0]["weight"] = 0.9
    base["kpis"][0]["target"] = 0.01  # conversion_rate target below its floor (0.05)
    # a KPI over a metric the scheme does not declare
    base["kpis"].append({**base["kpis"][1], "name": "happiness",
                         "formula": {"op": "mean", "of": "smiles"}})
    response = await app_client.put(f"/v1/schemes/s-{uid}", json=base, headers=ADMIN)
    assert response.status_code == 422
    reasons = " ".join(f"{e['field']}: {e['reason']}" for e in response.json()["errors"])
    assert "roles" in reasons and "conversion_rate" in reasons and "happiness" in reasons
    assert len(response.json()["errors"]) >= 3


async def test_agent_transferred_mid_month_is_ranked_in_the_new_team(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    from datetime import UTC, datetime

    app_clock.set(datetime(2026, 11, 10, tzinfo=UTC))
    old = await make_team(app_client, uid + "o", 2)
    new = await make_team(app_client, uid + "n", 1)
    mover = old.agents[0]
    await old.open(PERIOD)
    await new.open(PERIOD)
    app_clock.set(datetime(2026, 11, 15, tzinfo=UTC))
    moved = await app_client.put(f"/v1/agents/{mover}",
                                 json={"name": "Mover", "team_id": new.team_id}, headers=ADMIN)
    assert moved.status_code == 200
    await new.evaluate_all(PERIOD, {mover: 88, new.agents[0]: 77})
    await old.evaluate_all(PERIOD, {old.agents[1]: 66})
    assert (await new.close(PERIOD)).status_code == 200
    assert (await old.close(PERIOD)).status_code == 200
    new_ids = {e["agent_id"] for e in (await new.ranking(PERIOD))["entries"]}  # type: ignore
    old_ids = {e["agent_id"] for e in (await old.ranking(PERIOD))["entries"]}  # type: ignore
    assert mover in new_ids and mover not in old_ids
    card = (await app_client.get(new.url(PERIOD, f"/scorecards/{mover}"),
                                 headers=new.manager)).json()
    assert card["transfers"] == [{"from_team_id": old.team_id, "to_team_id": new.team_id,
                                  "effective_at": "2026-11-15T00:00:00+00:00"}]


async def test_a_close_is_held_as_written_and_equals_what_its_stored_data_decodes_to(
    app_client: httpx.AsyncClient, uid: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The projections of the writing process use the model the command wrote; it must be the
    # model every other process (and a rebuild) decodes from the stored data.
    written: dict[tuple[object, int, int], object] = {}
    hold = base.remember

    def spy(event_id: Any, tx_id: int, position: int, event: Any, dump: float) -> None:
        written[(event_id, tx_id, position)] = event
        hold(event_id, tx_id, position, event, dump)

    monkeypatch.setattr(base, "remember", spy)
    team = await make_team(app_client, uid, 3)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80, 70), strict=True)))
    assert (await team.close(PERIOD, force=True, reason="month end")).status_code == 200
    async with db.connection() as conn:
        stored = await read_stream(conn, f"cycle:{team.team_id}:{PERIOD}")
    closed = next(e for e in stored if e.type == "CycleClosed")
    model = written[(closed.event_id, closed.tx_id, closed.position)]
    assert model == decode(closed.type, closed.schema_version, closed.data)


async def _as_another_process(db: Database, stream_id: str, evolve: Any,
                              decide: Callable[[Any], Sequence[DomainEvent]]) -> None:
    """Change a directory stream as another process would: its own read and append, unseen by
    the states the service holds."""
    async with db.connection() as conn:
        state, version = await load(conn, stream_id, evolve)
        await append(conn, stream_id, base.to_new(list(decide(state))), expected_version=version,
                     metadata={"actor": {"subject": "elsewhere", "role": "admin"}},
                     recorded_at=datetime.now(UTC))


async def test_an_evaluation_on_held_states_is_checked_and_decided_again_once_they_moved(
    app_client: httpx.AsyncClient, db: Database, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PUT evaluation decides on the team, the agent and the month as the service holds them,
    # and its append checks that none of them moved. A change another process made meanwhile
    # (an agent renamed or moved to another team, a team's managers changed) refuses that
    # append, and the rater's check and the decision are made again on the streams read anew.
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "o", 1)
    await team.open(PERIOD)
    a, b = team.agents
    await team.manager_eval(PERIOD, a, 70)
    await team.manager_eval(PERIOD, b, 70)  # the service holds all three from here
    decided_on: list[tuple[tuple[str, ...], str | None]] = []
    evaluate = commands._evaluate

    async def recording(ctx: Any, caller: Any, cmd: Any, admit: Any, read: Any,
                        **kwargs: Any) -> Any:
        decided_on.append((tuple(read[0].manager_ids), read[1].team_id if read[1] else None))
        return await evaluate(ctx, caller, cmd, admit, read, **kwargs)

    monkeypatch.setattr(commands, "_evaluate", recording)
    held = ((team.manager_id,), team.team_id)
    assert (await team.manager_eval(PERIOD, a, 71)).json()["revision"] == 2
    assert decided_on == [held]  # nothing moved: decided once, on the states held

    decided_on.clear()
    await _as_another_process(db, d.agent_stream(a), d.evolve_agent, lambda s: d.decide_put_agent(
        s, d.PutAgent(agent_id=a, name="Renamed", team_id=team.team_id), datetime.now(UTC)))
    revised = await team.manager_eval(PERIOD, a, 75)
    assert revised.json()["revision"] == 3 and revised.json()["scores"]["service"] == 75
    assert decided_on == [held, held]  # refused on the agent's version, decided again

    decided_on.clear()
    await _as_another_process(db, d.agent_stream(b), d.evolve_agent, lambda s: d.decide_put_agent(
        s, d.PutAgent(agent_id=b, name="Moved", team_id=other.team_id), datetime.now(UTC)))
    moved = await app_client.put(team.url(PERIOD, f"/evaluations/{b}/manager"),
                                 json={"scores": dict.fromkeys(MANAGER_FORM, 80)},
                                 headers=team.manager)
    assert moved.status_code == 422, moved.text
    assert moved.json()["errors"][0]["field"] == "agent_id"
    assert decided_on == [held, ((team.manager_id,), other.team_id)]

    decided_on.clear()
    await _as_another_process(db, d.team_stream(team.team_id), d.evolve_team,
                              lambda s: d.decide_put_team(s, d.PutTeam(
                                  team.team_id, s.name, manager_ids=(f"m2-{uid}",))))
    refused = await app_client.put(team.url(PERIOD, f"/evaluations/{a}/manager"),
                                   json={"scores": dict.fromkeys(MANAGER_FORM, 90)},
                                   headers=team.manager)
    assert refused.status_code == 403, refused.text
    assert decided_on == [held, ((f"m2-{uid}",), team.team_id)]
    # Refused again on the states now held: they are current, so the refusal stands as it is.
    decided_on.clear()
    again = await app_client.put(team.url(PERIOD, f"/evaluations/{a}/manager"),
                                 json={"scores": dict.fromkeys(MANAGER_FORM, 90)},
                                 headers=team.manager)
    assert again.status_code == 403
    assert decided_on == [((f"m2-{uid}",), team.team_id)]
    events = await _month_events(db, team.team_id)
    assert [e["scores"]["service"] for e in events if e["agent_id"] == a] == [70, 71, 75]
    assert [e["scores"]["service"] for e in events if e["agent_id"] == b] == [70]


def _scope_refusals() -> float:
    counted = observability.REGISTRY.get_sample_value("csperf_auth_failures_total",
                                                      {"reason": "scope"})
    return counted or 0.0


async def test_an_evaluation_refused_on_held_states_and_again_on_fresh_ones_counts_once(
    app_client: httpx.AsyncClient, db: Database, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The rater's check refuses on the team the service holds; the agent moved meanwhile, so
    # the states are read anew and the check refuses again: one refused request, counted and
    # logged once.
    team = await make_team(app_client, uid, 1)
    await team.open(PERIOD)
    (a,) = team.agents
    await team.manager_eval(PERIOD, a, 70)
    await _as_another_process(db, d.team_stream(team.team_id), d.evolve_team,
                              lambda s: d.decide_put_team(s, d.PutTeam(
                                  team.team_id, s.name, manager_ids=(f"m2-{uid}",))))
    url = team.url(PERIOD, f"/evaluations/{a}/manager")
    body = {"scores": dict.fromkeys(MANAGER_FORM, 80)}
    # Held team still names the manager: admitted, the append refused, refused on the new team.
    before = _scope_refusals()
    assert (await app_client.put(url, json=body, headers=team.manager)).status_code == 403
    assert _scope_refusals() == before + 1
    await _as_another_process(db, d.agent_stream(a), d.evolve_agent, lambda s: d.decide_put_agent(
        s, d.PutAgent(agent_id=a, name="Renamed", team_id=team.team_id), datetime.now(UTC)))
    before = _scope_refusals()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="csperf.auth"):
        refused = await app_client.put(url, json=body, headers=team.manager)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/out-of-scope")
    assert _scope_refusals() == before + 1
    assert [r.getMessage() for r in caplog.records if r.name == "csperf.auth"] == [
        "authorisation refused: only a manager of this team may do this"]
    assert [e["scores"]["service"] for e in await _month_events(db, team.team_id)] == [70]


async def _month_events(db: Database, team_id: str) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        recorded = await read_stream(conn, f"cycle:{team_id}:{PERIOD}")
    return [r.data for r in recorded if r.type == "EvaluationSubmitted"]
