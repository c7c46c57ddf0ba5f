"""`csperf demo`: the story it seeds, through the service, and that a second run adds nothing."""

from __future__ import annotations

import io
import stat

import asyncpg
import httpx
import pytest

from service import demo
from tests import conftest
from tests.ui.conftest import DEMO_NOW, Shop
from tests.ui.test_pages import api_get


def test_the_demo_fills_the_three_months_before_now_and_the_current_one() -> None:
    assert demo.months_for(DEMO_NOW) == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert demo.months_for(DEMO_NOW.replace(month=1)) == [
        "2025-10", "2025-11", "2025-12", "2026-01"]


def test_the_shop_is_two_teams_of_six_a_late_hire_and_a_new_team_of_four() -> None:
    assert len(demo.TEAMS) == 3 and len(demo.AGENTS) == 6 + 1 + 6 + 4
    for team in demo.TEAMS:
        positions = {a.position for a in demo.AGENTS if a.team_id == team.team_id}
        assert positions == {"pre-sale", "in-sale", "after-sale"}


async def test_the_current_month_shows_each_fair_months_rule(shop: Shop) -> None:
    month = "/v1/teams/{}/cycles/2026-11"
    sh = await api_get(shop, month.format("shop-sh"))
    assert sh["scheme_version"] >= 2
    assert (await api_get(shop, month.format("shop-sh") + "?x"))["status"] == "open"
    ranking = await api_get(shop, month.format("shop-sh") + "/ranking")
    not_ranked = {n["agent_id"]: n["reason"] for n in ranking["not_ranked"]}
    assert not_ranked == {"sh-liu-yang": "active 0 of 30 days",
                          "sh-xu-ming": "active 11 of 30 days"}
    leave = await api_get(shop, "/v1/agents/sh-liu-yang/absences")
    assert [(a["kind"], a["note"]) for a in leave["items"]] == [("leave", "parental leave")]
    card = await api_get(shop, month.format("shop-sh") + "/scorecards/sh-zhou-jie")
    assert card["eligibility"]["active_days"] == 18 and card["eligibility"]["ranked"]
    assert card["kpis"]["order_amount"]["target"] == 50000 * 18 / 30
    berlin = await api_get(shop, month.format("shop-be") + "/ranking")
    assert berlin["unavailable_kpis"] == ["avg_response_time_seconds"]
    team = await api_get(shop, "/v1/teams/shop-gz")
    assert team["manager_ids"] == ["m-lin", "gz-huang"]
    huang = await api_get(shop, month.format("shop-gz") + "/scorecards/gz-huang")
    assert [(e["rater_role"], e["rater_id"]) for e in huang["evaluations"]
            if e["rater_role"] == "manager"] == [("manager", "m-lin")]


async def test_the_story_is_in_the_service(shop: Shop) -> None:
    for period in ("2026-08", "2026-09", "2026-10"):
        ranking = await api_get(shop, f"/v1/teams/shop-sh/cycles/{period}/ranking")
        assert ranking["status"] == "published"
        assert ranking["entries"][0]["agent_id"] == "sh-li-na"
        assert ranking["entries"][-1]["agent_id"] == "sh-wang-lei"
    climb = [next(e["rank"] for e in (await api_get(
        shop, f"/v1/teams/shop-sh/cycles/{p}/ranking"))["entries"]
        if e["agent_id"] == "sh-zhao-min") for p in ("2026-08", "2026-09", "2026-10")]
    assert climb == sorted(climb, reverse=True) and climb[0] > climb[-1]
    tie = await api_get(shop, "/v1/teams/shop-be/cycles/2026-09/ranking")
    assert [e["agent_id"] for e in tie["entries"] if e["tied"]] == [
        "be-mia-schulz", "be-noah-wagner"]
    reviews = await api_get(shop, "/v1/sanctions?kind=reassignment_review")
    assert [(r["agent_id"], r["period"], r["status"]) for r in reviews["items"]] == [
        ("sh-wang-lei", "2026-10", "open")]
    current = await api_get(shop, "/v1/teams/shop-sh/cycles/2026-11")
    assert current["status"] == "open" and current["evaluations_submitted"] > 0
    live = await api_get(shop, "/v1/agents/sh-li-na/kpis?period=2026-11")
    assert live["samples"] > 500


async def _counts(url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        return (await conn.fetchval("SELECT count(*) FROM event"),
                await conn.fetchval("SELECT count(*) FROM metric_sample"),
                await conn.fetchval("SELECT count(*) FROM api_key"))
    finally:
        await conn.close()


async def test_running_the_demo_again_changes_nothing(shop: Shop) -> None:
    before = await _counts(shop.database_url)
    out = io.StringIO()
    keys = await demo.run(conftest.test_settings(db_pool_size=8), shop.database_url, now=DEMO_NOW,
                          keys_file=shop.keys_file, out=out)
    assert await _counts(shop.database_url) == before
    assert keys == shop.keys
    assert "Done: 0 changes" in out.getvalue() and "0 of them new" in out.getvalue()
    assert stat.S_IMODE(shop.keys_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("label", ["m-chen", "m-weber", "sh-wang-lei", "admin"])
async def test_the_printed_keys_work(shop: Shop, label: str) -> None:
    url = "/v1/agents/sh-wang-lei" if label != "m-weber" else "/v1/agents/be-paul-koch"
    assert (await api_get(shop, url, label))["name"]
    assert shop.keys[label] in demo.describe_keys(shop.keys, "http://127.0.0.1:8000")


async def test_the_demo_prints_the_pages_in_each_language(shop: Shop) -> None:
    text = demo.describe_keys(shop.keys, "http://127.0.0.1:8000")
    for language in ("en", "ko", "zh_Hans"):
        url = f"http://127.0.0.1:8000/ui?lang={language}"
        assert url in text
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                     base_url="http://csperf.test") as client:
            page = await client.get(f"/ui/signin?lang={language}")
        assert f'<html lang="{language.replace("_", "-")}">' in page.text
