"""Corrections carry forward: a later month's review follows the corrected month's ranking."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import ADMIN, Team, make_team

MONTHS = ("2026-09", "2026-10", "2026-11")
FIRST = datetime(2026, 10, 3, 9, 0, tzinfo=UTC)
CORRECTED_AT = FIRST + timedelta(days=75)
REASON = "October's scores of c were keyed for the wrong agent"


async def publish_months(team: Team, clock: PinnedClock,
                         scores: list[tuple[float, float, float]]) -> None:
    """Publish September to November with the given scores of a, b and c."""
    for i, (month, month_scores) in enumerate(zip(MONTHS, scores, strict=True)):
        clock.set(FIRST + timedelta(days=31 * i))
        await team.open(month)
        await team.evaluate_all(month, dict(zip(team.agents, month_scores, strict=True)))
        assert (await team.close(month)).status_code == 200
        assert (await team.publish(month)).status_code == 200


async def correct(team: Team, clock: PinnedClock, month: str, scores: dict[str, float],
                  reason: str = REASON) -> None:
    """Reopen a published month, revise evaluations, close and publish it again."""
    clock.set(CORRECTED_AT)
    reopened = await team.client.post(team.url(month, "/reopen"), json={"reason": reason},
                                      headers=team.manager)
    assert reopened.status_code == 200, reopened.text
    await team.evaluate_all(month, scores)
    assert (await team.close(month)).status_code == 200
    published = await team.publish(month)
    assert published.status_code == 200, published.text


async def ledger(team: Team, **params: str) -> list[dict[str, Any]]:
    response = await team.client.get("/v1/sanctions", headers=team.manager,
                                      params={"team_id": team.team_id, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


async def review(team: Team, agent_id: str, month: str = "2026-11") -> httpx.Response:
    return await team.client.get(f"/v1/reassignment-reviews/{team.team_id}:{month}:{agent_id}",
                                 headers=team.manager)


async def stream_types(team: Team, month: str) -> list[str]:
    response = await team.client.get(f"/v1/streams/cycle:{team.team_id}:{month}/events",
                                     headers=ADMIN, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["items"]]


async def test_correcting_the_middle_month_cancels_the_later_review_naming_the_correction(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await publish_months(team, app_clock, [(90, 80, 70)] * 3)
    assert (await review(team, c)).json()["status"] == "open"
    # October is corrected: c was in fact first, so November ends no three-month streak
    await correct(team, app_clock, "2026-10", {c: 95})
    november = await ledger(team, period="2026-11", kind="reassignment_review")
    grant = next(i for i in november if i["entry"] == "grant")
    assert grant["status"] == "cancelled"
    cancellation = next(i for i in november if i["entry"] == "cancellation")
    assert cancellation["reverses"] == grant["id"]
    assert "correction of 2026-10 (publication 2: " + REASON + ")" in cancellation["reason"]
    shown = (await review(team, c)).json()
    assert shown["status"] == "cancelled" and not shown["basis_changed"]
    assert "correction of 2026-10" in shown["ended_by"]
    decided = await app_client.post(
        f"/v1/reassignment-reviews/{team.team_id}:2026-11:{c}/decision",
        json={"decision": "retain", "note": "x"}, headers=team.manager)
    assert decided.status_code == 409 and "correction of 2026-10" in decided.json()["detail"]
    # November's own consequences follow its own ranking: untouched
    november_all = await ledger(team, period="2026-11")
    others = [i for i in november_all if i["kind"] != "reassignment_review"]
    assert {(i["kind"], i["agent_id"], i["entry"]) for i in others} == {
        ("reward", a, "grant"), ("deduction", c, "grant"),
        ("improvement_plan", b, "grant"), ("improvement_plan", c, "grant")}
    assert {i["status"] for i in others} <= {"active", "due", "overdue"}
    # October's own ledger: c's deduction reversed, b now last
    october = await ledger(team, period="2026-10", status="active")
    assert {(i["kind"], i["agent_id"]) for i in october} == {("reward", c), ("deduction", b)}
    assert (await stream_types(team, "2026-11"))[-1] == "ConsequencesRevised"


async def test_a_correction_that_completes_a_streak_opens_a_review(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    _, b, c = team.agents
    # c is last in September and November; b is last in October: no streak
    await publish_months(team, app_clock, [(90, 80, 70), (90, 60, 70), (90, 80, 70)])
    assert await ledger(team, kind="reassignment_review") == []
    # October is corrected: b's scores were c's and c's were b's
    await correct(team, app_clock, "2026-10", {b: 70, c: 60})
    reviews = await ledger(team, kind="reassignment_review")
    assert [(r["agent_id"], r["period"], r["status"], r["months"]) for r in reviews] == [
        (c, "2026-11", "open", list(MONTHS))]
    assert "after the correction of 2026-10 (publication 2: " in reviews[0]["reason"]
    assert reviews[0]["publication"] == 2  # November's revision 2, after its publication 1
    decided = await app_client.post(
        f"/v1/reassignment-reviews/{team.team_id}:2026-11:{c}/decision",
        json={"decision": "reassign", "note": "three months last"}, headers=team.manager)
    assert decided.status_code == 200, decided.text
    # November was not republished: its publication time and its other entries stand
    cycle = (await app_client.get(team.url("2026-11"), headers=team.manager)).json()
    assert (cycle["status"], cycle["publications"], cycle["revisions"]) == ("published", 2, 1)
    assert cycle["published_at"] == (FIRST + timedelta(days=62)).isoformat().replace(
        "+00:00", "Z")


async def test_a_decided_review_keeps_its_decision_and_is_marked_basis_changed(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    c = team.agents[2]
    await publish_months(team, app_clock, [(90, 80, 70)] * 3)
    decided = await app_client.post(
        f"/v1/reassignment-reviews/{team.team_id}:2026-11:{c}/decision",
        json={"decision": "reassign", "note": "move to after-sale"}, headers=team.manager)
    assert decided.status_code == 200
    await correct(team, app_clock, "2026-10", {c: 95})
    november = await ledger(team, period="2026-11", kind="reassignment_review")
    grant = next(i for i in november if i["entry"] == "grant")
    assert (grant["status"], grant["note"], grant["basis_changed"]) == (
        "reassign", "move to after-sale", True)
    assert "correction of 2026-10" in grant["basis_note"]
    change = next(i for i in november if i["entry"] != "grant")
    assert (change["entry"], change["status"], change["reverses"]) == (
        "basis_change", "basis_change", grant["id"])
    shown = (await review(team, c)).json()
    assert (shown["status"], shown["decision"], shown["basis_changed"]) == (
        "reassign", "reassign", True)
    assert "correction of 2026-10" in shown["ended_by"]
    again = await app_client.post(
        f"/v1/reassignment-reviews/{team.team_id}:2026-11:{c}/decision",
        json={"decision": "retain", "note": "x"}, headers=team.manager)
    assert again.status_code == 409 and "no longer stands" in again.json()["detail"]
    as_csv = await app_client.get("/v1/sanctions", headers={**team.manager, "Accept": "text/csv"},
                                  params={"team_id": team.team_id, "period": "2026-11",
                                          "kind": "reassignment_review"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    assert [(r["entry"], r["basis_changed"]) for r in rows] == [("grant", "true"),
                                                               ("basis_change", "false")]


async def test_correcting_a_month_twice_the_same_way_changes_nothing_twice(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    c = team.agents[2]
    await publish_months(team, app_clock, [(90, 80, 70)] * 3)
    await correct(team, app_clock, "2026-10", {c: 95})
    after_first = await ledger(team)
    november_events = await stream_types(team, "2026-11")
    await correct(team, app_clock, "2026-10", {c: 95}, reason="checked again")
    after_second = await ledger(team)
    assert after_second == after_first
    assert await stream_types(team, "2026-11") == november_events
    # no double reversal: each month's amounts sum to what its latest publication owes
    owed: dict[tuple[str, str, str], float] = {}
    for i in after_second:
        if i["amount"] is not None:
            key = (i["period"], i["kind"], i["agent_id"])
            owed[key] = owed.get(key, 0.0) + i["amount"]
    assert {k: v for k, v in owed.items() if k[0] == "2026-10" and v} == {
        ("2026-10", "reward", c): 100.0, ("2026-10", "deduction", team.agents[1]): 100.0}


async def test_a_correction_reaches_only_the_months_a_streak_can_span(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    c = team.agents[2]
    await publish_months(team, app_clock, [(90, 80, 70)] * 3)
    app_clock.set(FIRST + timedelta(days=93))
    await team.open("2026-12")
    await team.evaluate_all("2026-12", dict(zip(team.agents, (90, 80, 70), strict=True)))
    assert (await team.close("2026-12")).status_code == 200
    assert (await team.publish("2026-12")).status_code == 200
    reviews = {r["period"] for r in await ledger(team, kind="reassignment_review")}
    assert reviews == {"2026-11", "2026-12"}
    # September's correction breaks November's streak; December's (Oct-Dec) never held it
    await correct(team, app_clock, "2026-09", {c: 95})
    open_reviews = await ledger(team, kind="reassignment_review", status="open")
    assert [(r["period"], r["agent_id"]) for r in open_reviews] == [("2026-12", c)]
    assert "ConsequencesRevised" not in await stream_types(team, "2026-12")


async def test_a_month_published_after_the_next_one_completes_its_streak(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    c = team.agents[2]
    scores = dict(zip(team.agents, (90, 80, 70), strict=True))
    for i, month in enumerate(MONTHS):
        app_clock.set(FIRST + timedelta(days=31 * i))
        await team.open(month)
        await team.evaluate_all(month, scores)
        assert (await team.close(month)).status_code == 200
        if month != "2026-10":
            assert (await team.publish(month)).status_code == 200
    assert await ledger(team, kind="reassignment_review") == []  # October unpublished
    app_clock.set(CORRECTED_AT)
    assert (await team.publish("2026-10")).status_code == 200
    reviews = await ledger(team, kind="reassignment_review")
    assert [(r["agent_id"], r["period"], r["status"]) for r in reviews] == [
        (c, "2026-11", "open")]
    assert "after the first publication of 2026-10" in reviews[0]["reason"]
