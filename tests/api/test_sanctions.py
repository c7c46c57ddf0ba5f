"""Consequences of published months through the API: ledger, plans, reviews, payroll, CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from service.scheduler import Scheduler, overdue_pass
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import ADMIN, Team, make_team

PERIOD = "2026-11"
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DUE = PUBLISHED + timedelta(days=7)
PLAN_BODY = {"root_causes": "slow first replies on weekends",
             "actions": [{"action": "cover the weekend queue", "due_date": "2026-12-20"}]}


async def publish_month(team: Team, clock: PinnedClock, period: str, scores: dict[str, float],
                        at: datetime = PUBLISHED) -> None:
    """Open, evaluate, close and publish a month at a pinned time."""
    clock.set(at)
    await team.open(period)
    await team.evaluate_all(period, scores)
    assert (await team.close(period)).status_code == 200
    published = await team.publish(period)
    assert published.status_code == 200, published.text


def ranked(team: Team, *scores: float) -> dict[str, float]:
    return dict(zip(team.agents, scores, strict=True))


async def items(client: httpx.AsyncClient, headers: dict[str, str], **params: str
                ) -> list[dict[str, Any]]:
    response = await client.get("/v1/sanctions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found


def who(found: list[dict[str, Any]], kind: str) -> set[str]:
    return {i["agent_id"] for i in found if i["kind"] == kind and i["entry"] == "grant"}


# --- the rules of domain.md, once published -------------------------------------------------


async def test_publication_rewards_first_deducts_last_and_asks_the_bottom_two_for_plans(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    a, _, c, d = team.agents
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    found = await items(app_client, team.manager, team_id=team.team_id)
    assert [(i["kind"], i["agent_id"], i["amount"], i["currency"], i["status"])
            for i in found] == [
        ("reward", a, 100.0, "CNY", "active"),
        ("deduction", d, 100.0, "CNY", "active"),
        ("improvement_plan", c, None, None, "due"),
        ("improvement_plan", d, None, None, "due"),
    ]
    reward = found[0]
    assert reward["id"] == f"{team.team_id}:{PERIOD}:{a}:reward:p1"
    assert (reward["rank"], reward["places"], reward["publication"]) == (1, [1, 1], 1)
    assert "first place: rank 1 of 4" in reward["reason"]
    # due exactly seven days after the publication time
    assert {i["due_at"] for i in found if i["kind"] == "improvement_plan"} == {
        "2026-12-10T09:30:00Z"}


async def test_ties_at_both_ends_and_across_the_bottom_two_boundary(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    both = await make_team(app_client, uid + "b", 5)
    await publish_month(both, app_clock, PERIOD, ranked(both, 90, 90, 50, 10, 10))
    found = await items(app_client, ADMIN, team_id=both.team_id)
    a, b, _, d, e = both.agents
    assert who(found, "reward") == {a, b}
    assert who(found, "deduction") == {d, e}
    assert who(found, "improvement_plan") == {d, e}
    assert any("tied (places 1-2)" in i["reason"] for i in found if i["kind"] == "reward")

    boundary = await make_team(app_client, uid + "x", 4)
    await publish_month(boundary, app_clock, PERIOD, ranked(boundary, 90, 80, 80, 60))
    found = await items(app_client, ADMIN, team_id=boundary.team_id)
    a, b, c, d = boundary.agents
    # the pair at rank 2 occupies places 2-3, and place 3 is one of the two lowest
    assert who(found, "improvement_plan") == {b, c, d}
    assert who(found, "reward") == {a} and who(found, "deduction") == {d}


async def test_small_teams_and_everyone_tied_have_no_consequences(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    for size, scores in ((1, (50,)), (2, (90, 10)), (3, (75, 75, 75))):
        team = await make_team(app_client, f"{uid}{size}", size)
        await publish_month(team, app_clock, PERIOD, ranked(team, *scores))
        assert await items(app_client, ADMIN, team_id=team.team_id) == [], size
    three = await make_team(app_client, uid + "3r", 3)
    await publish_month(three, app_clock, PERIOD, ranked(three, 90, 80, 70))
    found = await items(app_client, ADMIN, team_id=three.team_id)
    assert who(found, "reward") == {three.agents[0]}
    assert who(found, "deduction") == {three.agents[2]}
    assert who(found, "improvement_plan") == set(three.agents[1:])


async def _three_months(team: Team, clock: PinnedClock, months: list[str],
                        scores: list[dict[str, float]]) -> None:
    for i, (month, month_scores) in enumerate(zip(months, scores, strict=True)):
        await publish_month(team, clock, month, month_scores, PUBLISHED + timedelta(days=31 * i))


async def test_three_published_last_places_in_a_row_open_a_review_decided_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 3)
    a, _, c = team.agents
    months = ["2026-09", "2026-10", "2026-11"]
    await _three_months(team, app_clock, months, [ranked(team, 90, 80, 70)] * 3)
    reviews = await items(app_client, team.manager, team_id=team.team_id,
                          kind="reassignment_review")
    assert [(r["agent_id"], r["period"], r["months"], r["status"]) for r in reviews] == [
        (c, "2026-11", months, "open")]
    review_id = reviews[0]["review_id"]
    assert review_id == f"{team.team_id}:2026-11:{c}"
    url = f"/v1/reassignment-reviews/{review_id}/decision"
    body = {"decision": "retain", "note": "new coaching plan agreed"}
    other = await make_team(app_client, uid + "o", 1)
    assert (await app_client.post(url, json=body, headers=other.manager)).status_code == 403
    assert (await app_client.post(url, json=body, headers=team.agent(c))).status_code == 403
    decided = await app_client.post(url, json=body, headers=team.manager)
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == ("retain",
                                                                       team.manager_id)
    again = await app_client.post(url, json={"decision": "reassign", "note": "x"},
                                  headers=team.manager)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    mine = await app_client.get(f"/v1/reassignment-reviews/{review_id}", headers=team.agent(c))
    assert mine.status_code == 200 and mine.json()["note"] == "new coaching plan agreed"
    found = await items(app_client, team.manager, team_id=team.team_id,
                        kind="reassignment_review")
    assert found[0]["status"] == "retain" and found[0]["note"] == body["note"]
    history = await app_client.get(f"/v1/streams/review:{review_id}/events", headers=ADMIN)
    assert [e["type"] for e in history.json()["items"]] == ["ReassignmentReviewDecided"]
    missing = await app_client.post(f"/v1/reassignment-reviews/{team.team_id}:2026-11:{a}"
                                    "/decision", json=body, headers=team.manager)
    assert missing.status_code == 404


async def test_a_month_without_a_published_cycle_breaks_the_streak(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    # One team skips October; the other closes October but never publishes it.
    skipped = await make_team(app_client, uid + "s", 3)
    unpublished = await make_team(app_client, uid + "u", 3)
    for team in (skipped, unpublished):
        scores = ranked(team, 90, 80, 70)
        await publish_month(team, app_clock, "2026-08", scores)
        await publish_month(team, app_clock, "2026-09", scores)
        await publish_month(team, app_clock, "2026-11", scores)
    app_clock.set(PUBLISHED)
    await unpublished.open("2026-10")
    await unpublished.evaluate_all("2026-10", ranked(unpublished, 90, 80, 70))
    assert (await unpublished.close("2026-10")).status_code == 200
    # (November was decided before October closed; decide it again as a correction would)
    reopened = await app_client.post(unpublished.url("2026-11", "/reopen"),
                                     json={"reason": "re-check"}, headers=unpublished.manager)
    assert reopened.status_code == 200
    assert (await unpublished.close("2026-11")).status_code == 200
    assert (await unpublished.publish("2026-11")).status_code == 200
    for team in (skipped, unpublished):
        found = await items(app_client, ADMIN, team_id=team.team_id, kind="reassignment_review")
        assert found == [], team.team_id
        deductions = await items(app_client, ADMIN, team_id=team.team_id, kind="deduction",
                                 status="active")
        assert {d["period"] for d in deductions} == {"2026-08", "2026-09", "2026-11"}


async def test_a_streak_does_not_follow_an_agent_to_another_team(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    old = await make_team(app_client, uid + "o", 4)
    new = await make_team(app_client, uid + "n", 2)
    mover = old.agents[3]
    for i, month in enumerate(("2026-09", "2026-10")):
        await publish_month(old, app_clock, month, ranked(old, 90, 80, 70, 60),
                            PUBLISHED + timedelta(days=31 * i))
    app_clock.set(PUBLISHED + timedelta(days=40))
    moved = await app_client.put(f"/v1/agents/{mover}",
                                 json={"name": "Mover", "team_id": new.team_id}, headers=ADMIN)
    assert moved.status_code == 200
    await publish_month(new, app_clock, "2026-11",
                        {new.agents[0]: 90, new.agents[1]: 80, mover: 10},
                        PUBLISHED + timedelta(days=62))
    found = await items(app_client, ADMIN, agent_id=mover)
    assert {(i["team_id"], i["period"], i["kind"]) for i in found if i["entry"] == "grant"} == {
        (old.team_id, "2026-09", "deduction"), (old.team_id, "2026-09", "improvement_plan"),
        (old.team_id, "2026-10", "deduction"), (old.team_id, "2026-10", "improvement_plan"),
        (new.team_id, "2026-11", "deduction"), (new.team_id, "2026-11", "improvement_plan"),
    }
    assert "reassignment_review" not in {i["kind"] for i in found}


# --- improvement plans ----------------------------------------------------------------------


def plan_url(team: Team, agent: str, tail: str = "") -> str:
    return team.url(PERIOD, f"/improvement-plans/{agent}{tail}")


async def test_a_plan_after_the_deadline_is_accepted_and_marked_late(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    c, d = team.agents[2:]
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    app_clock.set(DUE)  # the deadline instant itself is still on time
    on_time = await app_client.put(plan_url(team, c), json=PLAN_BODY, headers=team.agent(c))
    assert on_time.status_code == 200, on_time.text
    assert (on_time.json()["status"], on_time.json()["late"]) == ("submitted", False)
    app_clock.set(DUE + timedelta(hours=5))
    late = await app_client.put(plan_url(team, d), json=PLAN_BODY, headers=team.agent(d))
    assert late.status_code == 200, late.text
    assert (late.json()["status"], late.json()["late"]) == ("submitted", True)
    assert late.json()["submissions"][0]["actions"] == PLAN_BODY["actions"]
    found = await items(app_client, team.manager, team_id=team.team_id, kind="improvement_plan")
    assert {(i["agent_id"], i["status"], i["late"]) for i in found} == {
        (c, "submitted", False), (d, "submitted", True)}


async def test_overdue_from_the_clock_at_read_time_and_as_an_event_from_the_scheduler(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    c, d = team.agents[2:]
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    app_clock.set(DUE)
    assert {i["status"] for i in await items(app_client, team.manager, team_id=team.team_id,
                                             kind="improvement_plan")} == {"due"}
    app_clock.set(DUE + timedelta(seconds=1))
    overdue = await items(app_client, team.manager, team_id=team.team_id, status="overdue")
    assert {i["agent_id"] for i in overdue} == {c, d}
    assert {i["overdue_at"] for i in overdue} == {None}  # computed, not yet recorded
    plan = await app_client.get(plan_url(team, d), headers=team.agent(d))
    assert plan.json()["status"] == "overdue"

    # The scheduler records it once, however often it runs
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    await overdue_pass(ctx)
    await overdue_pass(ctx)
    for agent in (c, d):
        stream = await app_client.get(
            f"/v1/streams/plan:{team.team_id}:{PERIOD}:{agent}/events", headers=ADMIN)
        assert [e["type"] for e in stream.json()["items"]] == ["PlanOverdue"]
        assert stream.json()["items"][0]["metadata"]["actor"]["subject"] == "scheduler"
    recorded = await items(app_client, team.manager, team_id=team.team_id, kind="improvement_plan")
    assert {(i["status"], i["overdue_at"]) for i in recorded} == {
        ("overdue", "2026-12-10T09:30:01Z")}
    # A late plan still counts, and is marked late
    submitted = await app_client.put(plan_url(team, d), json=PLAN_BODY, headers=team.agent(d))
    assert submitted.status_code == 200
    assert (submitted.json()["status"], submitted.json()["late"]) == ("submitted", True)


async def _until(condition: Any, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_one_scheduler_scans_at_a_time_and_another_takes_over(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(datetime(2026, 1, 1, tzinfo=UTC))  # nothing is overdue yet
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    first, second = (Scheduler(ctx, interval_seconds=0.05, lock_name=f"test:{uid}")
                     for _ in range(2))
    first.start()
    try:
        assert await _until(lambda: first.holding)
        second.start()
        await asyncio.sleep(0.3)
        assert not second.holding
        await first.stop()  # its connection closes and the lock with it
        assert await _until(lambda: second.holding)
    finally:
        await first.stop()
        await second.stop()


async def test_rejected_then_resubmitted_then_approved(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    d = team.agents[3]
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    review = plan_url(team, d, "/review")
    early = await app_client.post(review, json={"decision": "approved"}, headers=team.manager)
    assert early.status_code == 409 and "nothing to review" in early.json()["detail"]
    app_clock.set(PUBLISHED + timedelta(days=1))
    assert (await app_client.put(plan_url(team, d), json=PLAN_BODY,
                                 headers=team.agent(d))).status_code == 200
    by_agent = await app_client.post(review, json={"decision": "approved"}, headers=team.agent(d))
    assert by_agent.status_code == 403
    no_reason = await app_client.post(review, json={"decision": "rejected"}, headers=team.manager)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "comment"
    rejected = await app_client.post(review, json={"decision": "rejected",
                                                   "comment": "actions need dates in December"},
                                     headers=team.manager)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    found = await items(app_client, team.agent(d), kind="improvement_plan")
    assert (found[0]["status"], found[0]["note"]) == ("rejected", "actions need dates in December")
    app_clock.set(PUBLISHED + timedelta(days=2))
    again = await app_client.put(plan_url(team, d), json=PLAN_BODY, headers=team.agent(d))
    assert again.status_code == 200 and again.json()["status"] == "submitted"
    approved = await app_client.post(review, json={"decision": "approved", "comment": "good"},
                                     headers=team.manager)
    assert approved.status_code == 200
    plan = approved.json()
    assert plan["status"] == "approved" and plan["late"] is False
    assert [(x["submission"], x["review"]["decision"]) for x in plan["submissions"]] == [
        (1, "rejected"), (2, "approved")]
    closed = await app_client.put(plan_url(team, d), json=PLAN_BODY, headers=team.agent(d))
    assert closed.status_code == 409
    app_clock.set(DUE + timedelta(days=30))  # approved plans never turn overdue
    found = await items(app_client, team.manager, team_id=team.team_id, agent_id=d,
                        kind="improvement_plan")
    assert found[0]["status"] == "approved"


async def test_plans_are_owed_only_where_decided_and_bodies_are_checked(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    a, _, c, _ = team.agents
    no_cycle = await app_client.put(plan_url(team, c), json=PLAN_BODY, headers=team.agent(c))
    assert no_cycle.status_code == 404
    app_clock.set(PUBLISHED)
    await team.open(PERIOD)
    unpublished = await app_client.put(plan_url(team, c), json=PLAN_BODY, headers=team.agent(c))
    assert unpublished.status_code == 409 and "not been published" in unpublished.json()["detail"]
    await team.evaluate_all(PERIOD, ranked(team, 90, 80, 70, 60))
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    not_owed = await app_client.put(plan_url(team, a), json=PLAN_BODY, headers=team.agent(a))
    assert not_owed.status_code == 409
    assert f"decided no improvement plan for agent {a}" in not_owed.json()["detail"]
    someone_else = await app_client.put(plan_url(team, c), json=PLAN_BODY, headers=team.agent(a))
    assert someone_else.status_code == 403
    by_manager = await app_client.put(plan_url(team, c), json=PLAN_BODY, headers=team.manager)
    assert by_manager.status_code == 403
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({**PLAN_BODY, "root_causes": ""}, "root_causes"),
        ({**PLAN_BODY, "root_causes": "   "}, "root_causes"),
        ({**PLAN_BODY, "actions": []}, "actions"),
        ({**PLAN_BODY, "actions": [{"action": "x", "due_date": "2026-02-30"}]},
         "actions.0.due_date"),
        ({**PLAN_BODY, "actions": [{"action": "x", "due_date": 20261220}]}, "actions.0.due_date"),
        ({**PLAN_BODY, "actions": [{"action": " ", "due_date": "2026-12-20"}]},
         "actions.0.action"),
        ({"actions": PLAN_BODY["actions"]}, "root_causes"),
        ({**PLAN_BODY, "extra": 1}, "extra"),
    ]
    for body, field in bad_bodies:
        response = await app_client.put(plan_url(team, c), json=body, headers=team.agent(c))
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    nothing = await app_client.get(plan_url(team, a), headers=team.manager)
    assert nothing.status_code == 404


# --- corrections, payroll -------------------------------------------------------------------


async def test_republication_after_a_correction_reverses_and_the_ledger_sums_to_what_is_owed(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    a, b, c, d = team.agents
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    # d disputes; the manager reopens, revises d's evaluations, closes and publishes again
    app_clock.set(PUBLISHED + timedelta(days=2))
    reopened = await app_client.post(team.url(PERIOD, "/reopen"),
                                     json={"reason": "dispute upheld"}, headers=team.manager)
    assert reopened.status_code == 200
    await team.evaluate_all(PERIOD, {d: 95})
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    found = await items(app_client, team.manager, team_id=team.team_id)
    second = [(i["kind"], i["agent_id"], i["entry"], i["amount"], i["status"])
              for i in found if i["publication"] == 2]
    assert second == [
        ("deduction", d, "reversal", -100.0, "reversal"),
        ("improvement_plan", d, "cancellation", None, "cancellation"),
        ("reward", a, "reversal", -100.0, "reversal"),
        ("reward", d, "grant", 100.0, "active"),
        ("deduction", c, "grant", 100.0, "active"),
        ("improvement_plan", b, "grant", None, "due"),
    ]
    first = {(i["kind"], i["agent_id"]): i["status"] for i in found if i["publication"] == 1}
    assert first == {("reward", a): "reversed", ("deduction", d): "reversed",
                     ("improvement_plan", c): "due", ("improvement_plan", d): "cancelled"}
    # Every entry is kept; amounts over all entries, or over the active ones, are what is owed
    sums: dict[tuple[str, str], float] = defaultdict(float)
    for i in found:
        if i["amount"] is not None:
            sums[(i["kind"], i["agent_id"])] += i["amount"]
    assert {k: v for k, v in sums.items() if v} == {("reward", d): 100.0, ("deduction", c): 100.0}
    active = {(i["kind"], i["agent_id"]): i["amount"] for i in found if i["status"] == "active"}
    assert active == {("reward", d): 100.0, ("deduction", c): 100.0}
    # d's cancelled plan can no longer be submitted
    cancelled = await app_client.put(plan_url(team, d), json=PLAN_BODY, headers=team.agent(d))
    assert cancelled.status_code == 409 and "cancelled" in cancelled.json()["detail"]

    payroll = await app_client.get("/v1/payroll", params={"period": PERIOD,
                                                          "team_id": team.team_id},
                                   headers=team.manager)
    assert payroll.status_code == 200, payroll.text
    document = payroll.json()
    totals = {t["agent_id"]: (t["rewards"], t["deductions"], t["net"])
              for t in document["totals"]}
    assert totals == {a: (0.0, 0.0, 0.0), c: (0.0, 100.0, -100.0), d: (100.0, 0.0, 100.0)}
    assert document["net_by_currency"] == {"CNY": 0.0}
    assert math.fsum(line["effect"] for line in document["lines"]) == 0.0
    reward = next(x for x in document["lines"]
                  if (x["agent_id"], x["kind"], x["entry"]) == (d, "reward", "grant"))
    assert (reward["team_id"], reward["period"], reward["publication"], reward["rank"],
            reward["places"]) == (team.team_id, PERIOD, 2, 1, [1, 1])
    assert "first place" in reward["reason"]
    reversal = next(x for x in document["lines"] if x["entry"] == "reversal" and x["agent_id"] == a)
    assert reversal["reverses"] == f"{team.team_id}:{PERIOD}:{a}:reward:p1"
    assert (reversal["effect"], reversal["rank"]) == (-100.0, 2)
    as_csv = await app_client.get("/v1/payroll", params={"period": PERIOD,
                                                         "team_id": team.team_id},
                                  headers={**team.manager, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    assert len(rows) == len(document["lines"]) == 6
    assert math.fsum(float(r["effect"]) for r in rows if r["agent_id"] == d) == 100.0


# --- who sees what, CSV ---------------------------------------------------------------------


async def test_managers_see_their_teams_agents_their_own(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock, token_headers: Any
) -> None:
    team = await make_team(app_client, uid, 3)
    other = await make_team(app_client, uid + "o", 3)
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70))
    await publish_month(other, app_clock, PERIOD, ranked(other, 90, 80, 70))
    a, _, c = team.agents
    assert {i["agent_id"] for i in await items(app_client, team.agent(c))} == {c}
    assert await items(app_client, team.agent(a), kind="deduction") == []
    peek = await app_client.get("/v1/sanctions", params={"agent_id": c}, headers=team.agent(a))
    assert peek.status_code == 403
    mine = await items(app_client, team.manager)
    assert {i["team_id"] for i in mine} == {team.team_id}
    foreign = await app_client.get("/v1/sanctions", params={"team_id": other.team_id},
                                   headers=team.manager)
    assert foreign.status_code == 403
    reader = token_headers("reader")
    # Team by team: in the suite's shared database the unfiltered first page holds other
    # tests' teams too.
    for seen in (team, other):
        found = await items(app_client, reader, team_id=seen.team_id, period=PERIOD)
        assert found and {i["team_id"] for i in found} == {seen.team_id}
    bad = await app_client.get("/v1/sanctions", params={"kind": "bonus", "status": "x",
                                                        "period": "2026-13"}, headers=ADMIN)
    assert bad.status_code == 422
    assert {"kind", "status"} <= {e["field"] for e in bad.json()["errors"]}
    bad_period = await app_client.get("/v1/sanctions", params={"period": "2026-13"},
                                      headers=ADMIN)
    assert bad_period.status_code == 422 and bad_period.json()["errors"][0]["field"] == "period"
    for headers, status in ((team.agent(a), 403), (other.manager, 403), (reader, 200)):
        response = await app_client.get("/v1/payroll", params={"period": PERIOD,
                                                               "team_id": team.team_id},
                                        headers=headers)
        assert response.status_code == status, response.text
    no_period = await app_client.get("/v1/payroll", headers=ADMIN)
    assert no_period.status_code == 422


async def test_csv_neutralises_hostile_values(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 2)
    hostile_agent = f"-{uid}"  # ids may start with '-', which a spreadsheet reads as a formula
    response = await app_client.put(f"/v1/agents/{hostile_agent}",
                                    json={"name": "=cmd", "team_id": team.team_id},
                                    headers=ADMIN)
    assert response.status_code == 201
    team.agents.append(hostile_agent)
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 10))
    agent = team.agent(hostile_agent)
    assert (await app_client.put(plan_url(team, hostile_agent), json=PLAN_BODY,
                                 headers=agent)).status_code == 200
    comment = '=HYPERLINK("http://evil.example","click"), "quoted"\nsecond line'
    rejected = await app_client.post(plan_url(team, hostile_agent, "/review"),
                                     json={"decision": "rejected", "comment": comment},
                                     headers=team.manager)
    assert rejected.status_code == 200
    response = await app_client.get("/v1/sanctions", params={"team_id": team.team_id},
                                    headers={**team.manager, "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.startswith("id,team_id,period,agent_id,kind,entry,amount,")
    assert "\r\n" in response.text
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    plan = next(r for r in rows if r["kind"] == "improvement_plan"
                and r["agent_id"] == "'" + hostile_agent)
    assert plan["note"] == "'" + comment  # quoted per RFC 4180, and neutralised
    assert plan["status"] == "rejected"
    deduction = next(r for r in rows if r["kind"] == "deduction")
    assert deduction["agent_id"] == "'" + hostile_agent and deduction["amount"] == "100.0"
    assert deduction["places"] == "3-3" and deduction["created_at"].startswith("2026-12-03T")
    # JSON keeps the value as it was written
    found = await items(app_client, team.manager, team_id=team.team_id, kind="improvement_plan")
    assert comment in {i["note"] for i in found}
    payroll = await app_client.get("/v1/payroll", params={"period": PERIOD,
                                                          "team_id": team.team_id},
                                   headers={**ADMIN, "Accept": "text/csv"})
    lines = list(csv.DictReader(io.StringIO(payroll.text, newline="")))
    assert {r["agent_id"] for r in lines} == {team.agents[0], "'" + hostile_agent}


async def test_ids_outside_the_alphabet_are_422_not_a_server_error(
    app_client: httpx.AsyncClient,
) -> None:
    for url, params in (
        ("/v1/teams/t%00/cycles/2026-11/improvement-plans/a", None),
        ("/v1/teams/t/cycles/2026-11/improvement-plans/a%00", None),
        ("/v1/sanctions", {"team_id": "t\x00"}),
        ("/v1/payroll", {"period": "2026-11", "team_id": "t\x00"}),
    ):
        response = await app_client.get(url, params=params, headers=ADMIN)
        assert response.status_code == 422, (url, response.text)
    # A review id is an id like any other: held to the id pattern before any lookup.
    unknown = await app_client.get("/v1/reassignment-reviews/t%00:2026-11:a", headers=ADMIN)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "review_id"
