"""One way to page, sort and filter every list: limit, after, sort, next and Link."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.api.pagination import Paging, Sort, decode_cursor, paginate, parse_sort
from service.api.problems import Problem
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


# -- the helper ---------------------------------------------------------------------------------


def test_sort_parameters_come_from_the_allow_list() -> None:
    assert parse_sort("-score,name", ("score", "name"), "name") == Sort(
        (("score", True), ("name", False)))
    assert parse_sort(None, ("score", "name"), "-score").text == "-score"
    for bad in ("nope", "score,score", "-", "score,,name", "drop table"):
        with pytest.raises(Problem) as caught:
            parse_sort(bad, ("score", "name"), "name")
        assert caught.value.status == 422
        assert caught.value.errors and caught.value.errors[0]["field"] == "sort"


def _walk(items: list[dict[str, Any]], sort: Sort, limit: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = paginate(items, Paging(limit, sort, after))
        seen += page.items
        if page.next is None:
            return seen
        after = decode_cursor(page.next, sort.text)


def test_keyset_pages_follow_the_order_with_nulls_and_ties() -> None:
    rng = random.Random(7)
    items = [{"id": f"i{n:03}", "score": rng.choice([None, 1, 2, 2.5, 3]),
              "at": datetime(2026, 11, rng.randint(1, 3), tzinfo=UTC)} for n in range(57)]
    for text in ("score,id", "-score,id", "at,-score,id", "-at,id"):
        sort = parse_sort(text, ("score", "id", "at"), "id")
        walked = _walk(items, sort, 5)
        assert len(walked) == len(items) and {i["id"] for i in walked} == {i["id"] for i in items}
        everything = paginate(items, Paging(1000, sort)).items
        assert walked == everything
    ascending = paginate(items, Paging(1000, parse_sort("score,id", ("score", "id"), "id")))
    scores = [i["score"] for i in ascending.items]
    assert scores[-1] is None and None not in scores[: scores.index(None)]  # nulls last
    descending = paginate(items, Paging(1000, parse_sort("-score,id", ("score", "id"), "id")))
    assert descending.items[0]["score"] is None  # and first when descending


def test_rows_added_between_pages_never_make_a_page_repeat_or_skip() -> None:
    sort = parse_sort("id", ("id",), "id")
    items = [{"id": f"k{n:02}"} for n in range(0, 40, 2)]
    first = paginate(items, Paging(5, sort))
    items += [{"id": "k01"}, {"id": "k99"}]  # one before the cursor, one after
    second = paginate(items, Paging(5, sort, decode_cursor(first.next or "", sort.text)))
    assert [i["id"] for i in first.items] == ["k00", "k02", "k04", "k06", "k08"]
    assert [i["id"] for i in second.items] == ["k10", "k12", "k14", "k16", "k18"]


# -- the API --------------------------------------------------------------------------------


async def _all_pages(client: httpx.AsyncClient, url: str, params: dict[str, Any],
                     headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    for _ in range(100):
        response = await client.get(url, params={**params, **({"after": after} if after else {})},
                                    headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        after = body["next"]
        if after is None:
            assert "link" not in response.headers
            return items
        link = response.headers["link"]
        assert link.endswith('>; rel="next"') and f"after={after}" in link
    raise AssertionError("too many pages")


async def test_team_agents_page_sort_and_filter(app_client: httpx.AsyncClient, uid: str) -> None:
    team = await make_team(app_client, uid, 7, positions=("pre-sale", "after-sale"))
    url = f"/v1/teams/{team.team_id}/agents"
    everyone = await _all_pages(app_client, url, {"limit": 2}, ADMIN)
    assert [a["agent_id"] for a in everyone] == sorted(team.agents)
    by_name = await _all_pages(app_client, url, {"limit": 3, "sort": "-name"}, ADMIN)
    assert [a["name"] for a in by_name] == sorted((a["name"] for a in everyone), reverse=True)
    after_sale = await _all_pages(app_client, url, {"position": "after-sale", "limit": 2}, ADMIN)
    assert {a["position"] for a in after_sale} == {"after-sale"} and len(after_sale) == 3

    # CSV pages the same way, with the cursor in headers.
    response = await app_client.get(url, params={"limit": 4},
                                    headers={**ADMIN, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(rows) == 4 and response.headers["x-next-cursor"]
    assert 'rel="next"' in response.headers["link"]
    rest = await app_client.get(url, params={"after": response.headers["x-next-cursor"]},
                                headers={**ADMIN, "Accept": "text/csv"})
    more = list(csv.DictReader(io.StringIO(rest.text, newline="")))
    assert [r["agent_id"] for r in rows + more] == sorted(team.agents)
    assert "x-next-cursor" not in rest.headers


async def test_bad_paging_parameters_are_422_naming_them(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 3)
    first = (await app_client.get(f"/v1/teams/{team.team_id}/agents?limit=1",
                                  headers=ADMIN)).json()
    lists = [f"/v1/teams/{team.team_id}/agents", "/v1/sanctions",
             f"/v1/payroll?period={PERIOD}", "/v1/keys", "/v1/webhooks"]
    for url in lists:
        joiner = "&" if "?" in url else "?"
        cases = {"sort=bogus": "sort", "sort=-": "sort", "limit=0": "limit",
                 "limit=1001": "limit", "limit=x": "limit", "after=%%%": "after",
                 "after=eyJ2IjoxfQ": "after"}
        for query, field in cases.items():
            response = await app_client.get(url + joiner + query, headers=ADMIN)
            assert response.status_code == 422, (url, query, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert field in [e["field"] for e in response.json()["errors"]], (url, query)
    # A cursor made for one order is refused under another.
    other = await app_client.get(f"/v1/teams/{team.team_id}/agents",
                                 params={"after": first["next"], "sort": "name"}, headers=ADMIN)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "after"


async def test_the_ledger_and_payroll_page_in_ledger_order(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 4)
    app_clock.set(PUBLISHED)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80, 70, 60), strict=True)))
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    everything = (await app_client.get("/v1/sanctions", params={"team_id": team.team_id},
                                       headers=team.manager)).json()
    assert everything["next"] is None and len(everything["items"]) == 4
    paged = await _all_pages(app_client, "/v1/sanctions", {"team_id": team.team_id,
                                                           "limit": 1}, team.manager)
    assert paged == everything["items"]
    assert [i["kind"] for i in paged] == ["reward", "deduction", "improvement_plan",
                                          "improvement_plan"]
    by_agent = await _all_pages(app_client, "/v1/sanctions", {
        "team_id": team.team_id, "sort": "-agent_id", "limit": 3}, team.manager)
    assert [i["agent_id"] for i in by_agent] == sorted((i["agent_id"] for i in paged),
                                                       reverse=True)
    page = (await app_client.get("/v1/payroll", params={
        "period": PERIOD, "team_id": team.team_id, "limit": 1}, headers=team.manager)).json()
    assert len(page["lines"]) == 1 and page["next"]
    assert {t["agent_id"] for t in page["totals"]} == {team.agents[0], team.agents[3]}


async def test_keys_page_and_filter(app_client: httpx.AsyncClient, uid: str) -> None:
    made = []
    for role in ("reader", "reader", "admin"):
        response = await app_client.post("/v1/keys", headers=ADMIN,
                                         json={"role": role, "name": f"pg-{uid}"})
        made.append(response.json()["key_id"])
    await app_client.post(f"/v1/keys/{made[1]}/revoke", headers=ADMIN)
    readers = await _all_pages(app_client, "/v1/keys", {"role": "reader", "limit": 2}, ADMIN)
    assert {made[0], made[1]} <= {k["key_id"] for k in readers}
    assert {k["role"] for k in readers} == {"reader"}
    revoked = await _all_pages(app_client, "/v1/keys", {"revoked": "true"}, ADMIN)
    assert made[1] in {k["key_id"] for k in revoked}
    assert all(k["revoked_at"] for k in revoked)
    newest = (await app_client.get("/v1/keys", params={"sort": "-created_at", "limit": 1},
                                   headers=ADMIN)).json()["items"]
    assert len(newest) == 1
