"""The pages under /ui over the seeded demo shop, with httpx: what they show and who may see it.

The demo's data is fixed (``DEMO_NOW``): Shanghai's August to October are published with
Wang Lei last every month; Berlin's September has a tie for second place and its October is
closed, waiting for its manager.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from service.ui.session import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE
from tests.conftest import TEST_BOOTSTRAP_KEY, bearer, make_token
from tests.ui.conftest import Shop, SignIn, hidden_token

ROW = re.compile(r'<tr id="agent-[^"]+" data-agent="([^"]+)"[^>]*>\s*<td class="rank">([0-9=]+)')


def ranking_rows(html: str) -> list[tuple[str, str]]:
    """Return (rank as shown, agent id) of the board's ranking table, top to bottom."""
    return [(rank, agent) for agent, rank in ROW.findall(html)]


def api_rows(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (rank as the board should show it, agent id) of an API ranking."""
    return [(f"{e['rank']}=" if e["tied"] else str(e["rank"]), e["agent_id"])
            for e in body["entries"]]


def problem_kind(response: httpx.Response) -> str | None:
    match = re.search(r'data-problem="([^"]+)"', response.text)
    return match.group(1) if match else None


async def api_get(shop: Shop, url: str, label: str = "admin") -> dict[str, Any]:
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as api:
        response = await api.get(url, headers=shop.api(label))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- signing in ---------------------------------------------------------------------------------


async def test_the_signin_page_is_labelled_protected_and_sets_a_csrf_cookie(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/ui/signin")
    assert response.status_code == 200
    assert '<label for="key">API key</label>' in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-frame-options"] == "DENY"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert hidden_token(response.text) == anonymous.cookies.get(CSRF_COOKIE)


async def test_pages_send_a_visitor_without_a_session_to_sign_in(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/ui/teams/shop-sh?period=2026-10")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/signin?next=/ui/teams/shop-sh%3Fperiod%3D2026-10"


async def test_signing_in_keeps_the_key_in_an_httponly_strict_cookie(
    anonymous: httpx.AsyncClient, shop: Shop,
) -> None:
    page = await anonymous.get("/ui/signin?next=/ui/sanctions")
    response = await anonymous.post("/ui/signin", data={
        "key": shop.keys["m-chen"], CSRF_FIELD: hidden_token(page.text),
        "next": "/ui/sanctions"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/sanctions"
    session = next(c for c in response.headers.get_list("set-cookie")
                   if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/ui" in session
    home = await anonymous.get("/ui")
    assert home.status_code == 200 and "Shanghai flagship store" in home.text
    assert "Berlin web shop" not in home.text  # m-chen manages Shanghai only


async def test_signin_refuses_wrong_keys_foreign_sites_and_keys_without_pages(
    anonymous: httpx.AsyncClient, shop: Shop,
) -> None:
    page = await anonymous.get("/ui/signin")
    token = hidden_token(page.text)
    wrong = await anonymous.post("/ui/signin", data={"key": "csk_nope0000_notarealkeyatall",
                                                     CSRF_FIELD: token})
    assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.text
    no_token = await anonymous.post("/ui/signin", data={"key": shop.keys["m-chen"]})
    assert no_token.status_code == 403 and problem_kind(no_token) == "csrf"
    elsewhere = await anonymous.post(
        "/ui/signin", data={"key": shop.keys["m-chen"], CSRF_FIELD: token},
        headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and problem_kind(elsewhere) == "csrf"
    ingest = await anonymous.post("/ui/signin", data={
        "key": make_token("ingest", "feeder", source="chat-widget"), CSRF_FIELD: token})
    assert ingest.status_code == 403 and "no pages here" in ingest.text
    assert SESSION_COOKIE not in ingest.headers.get("set-cookie", "")


async def test_next_never_leads_to_another_site(anonymous: httpx.AsyncClient, shop: Shop) -> None:
    for target in ("https://evil.example/ui", "//evil.example/ui", "/v1/teams", "/ui\\@evil"):
        page = await anonymous.get("/ui/signin")  # each sign-in starts a new CSRF token
        response = await anonymous.post("/ui/signin", data={
            "key": shop.keys["m-chen"], CSRF_FIELD: hidden_token(page.text), "next": target})
        assert response.headers["location"] == "/ui", target


async def test_signing_out_forgets_the_session(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    home = await client.get("/ui")
    out = await client.post("/ui/signout", data={CSRF_FIELD: hidden_token(home.text)})
    assert out.status_code == 303 and out.headers["location"].startswith("/ui/signin")
    assert (await client.get("/ui")).status_code == 303


async def test_a_revoked_key_ends_the_session(sign_in: SignIn, shop: Shop) -> None:
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as api:
        issued = await api.post("/v1/keys", json={"role": "reader", "name": "ui test"},
                                headers=bearer(TEST_BOOTSTRAP_KEY))
        assert issued.status_code == 201, issued.text
        client = await sign_in(issued.json()["key"])
        assert (await client.get("/ui")).status_code == 200
        revoked = await api.post(f"/v1/keys/{issued.json()['key_id']}/revoke",
                                 headers=bearer(TEST_BOOTSTRAP_KEY))
        assert revoked.status_code == 200
    response = await client.get("/ui")
    assert response.status_code == 303 and "reason=expired" in response.headers["location"]


# -- the team board ------------------------------------------------------------------------------


async def test_the_board_shows_the_apis_ranking(sign_in: SignIn, shop: Shop) -> None:
    client = await sign_in("m-chen")
    for period in ("2026-08", "2026-09", "2026-10", "2026-11"):
        page = await client.get(f"/ui/teams/shop-sh?period={period}")
        assert page.status_code == 200
        api = await api_get(shop, f"/v1/teams/shop-sh/cycles/{period}/ranking", "m-chen")
        assert ranking_rows(page.text) == api_rows(api), period
    assert ranking_rows(page.text)  # the current month has a provisional ranking
    assert "Provisional" in page.text and "Evaluation deadline" in page.text


async def test_the_board_shows_fair_months(sign_in: SignIn) -> None:
    shanghai = (await (await sign_in("m-chen")).get("/ui/teams/shop-sh?period=2026-11")).text
    section = shanghai[shanghai.index('id="not-ranked"'):]
    assert 'data-agent="sh-liu-yang"' in section and "active 0 of 30 days" in section
    assert 'data-agent="sh-xu-ming"' in section and "active 11 of 30 days" in section
    assert 'data-agent="sh-liu-yang"' not in dict(ranking_rows(shanghai)).values()
    berlin = (await (await sign_in("m-weber")).get("/ui/teams/shop-be?period=2026-11")).text
    assert "Unavailable for the whole team this month" in berlin
    assert 'data-status="unavailable"' in berlin
    card = (await (await sign_in("m-chen")).get("/ui/agents/sh-zhou-jie?period=2026-11")).text
    assert "Present 18 of 30 days" in card and 'title="pro-rated to the days present"' in card


async def test_ties_are_visible(sign_in: SignIn, shop: Shop) -> None:
    client = await sign_in("m-weber")
    page = await client.get("/ui/teams/shop-be?period=2026-09")
    rows = ranking_rows(page.text)
    assert [rank for rank, _ in rows].count("2=") == 2
    assert page.text.count('<span class="badge badge-tie">tie</span>') == 2
    api = await api_get(shop, "/v1/teams/shop-be/cycles/2026-09/ranking", "m-weber")
    assert rows == api_rows(api)


async def test_numbers_and_times_follow_each_team(sign_in: SignIn) -> None:
    shanghai = await (await sign_in("m-chen")).get("/ui/teams/shop-sh?period=2026-10")
    assert "¥100.00" in shanghai.text and "CST" in shanghai.text
    assert "Published Nov 5, 2026, 10:00\u202fAM CST" in shanghai.text
    berlin = await (await sign_in("m-weber")).get("/ui/teams/shop-be?period=2026-09")
    # An English reader of a Berlin team: English words, German numbers (CLDR's en_DE).
    assert "100,00\u00a0€" in berlin.text and "30,0\u00a0%" in berlin.text
    # Berlin's September was re-published at 13:00 after the demo's amended appeal.
    assert "Published 5 Oct 2026, 13:00 CEST" in berlin.text


async def test_the_consequences_of_a_published_month_are_listed(sign_in: SignIn) -> None:
    page = await (await sign_in("m-chen")).get("/ui/teams/shop-sh?period=2026-10")
    consequences = page.text.split('id="consequences"')[1]
    for kind in ("reward", "deduction", "improvement_plan", "reassignment_review"):
        assert f'data-kind="{kind}"' in consequences, kind
    assert 'data-kind="reassignment_review" data-agent="sh-wang-lei"' in consequences


async def test_a_manager_cannot_open_another_teams_board(sign_in: SignIn) -> None:
    response = await (await sign_in("m-chen")).get("/ui/teams/shop-be")
    assert response.status_code == 403 and problem_kind(response) == "out-of-scope"


async def test_readers_see_the_pages_without_forms(sign_in: SignIn) -> None:
    client = await sign_in(make_token("reader", "bi-tool"))
    page = await client.get("/ui/teams/shop-be?period=2026-10")
    assert page.status_code == 200 and ranking_rows(page.text)
    assert "Manager actions" not in page.text
    refused = await client.post("/ui/teams/shop-be/months/2026-10/publish",
                                data={CSRF_FIELD: hidden_token(page.text)})
    assert refused.status_code == 403 and problem_kind(refused) == "forbidden"


# -- an agent's page ---------------------------------------------------------------------------


async def test_the_agent_page_shows_trends_attainment_feedback_and_plans(
    sign_in: SignIn,
) -> None:
    page = await (await sign_in("m-chen")).get("/ui/agents/sh-wang-lei")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 9  # composite and eight measured KPIs
    assert "Attainment against targets, Oct 2026" in page.text
    assert 'data-kpi="conversion_rate"' in page.text
    assert "What did they do?" in page.text  # a feedback interview's record
    assert 'class="plan" data-period="2026-09" data-status="submitted"' in page.text
    assert "Approve plan" in page.text  # the manager may review the submitted plan


async def test_an_agent_sees_their_own_page_and_no_one_elses(sign_in: SignIn) -> None:
    client = await sign_in("sh-wang-lei")
    assert (await client.get("/ui")).headers["location"] == "/ui/agents/sh-wang-lei"
    own = await client.get("/ui/agents/sh-wang-lei")
    assert own.status_code == 200 and "Approve plan" not in own.text
    other = await client.get("/ui/agents/sh-li-na")
    assert other.status_code == 403 and problem_kind(other) == "out-of-scope"
    assert "Li Na" not in other.text
    board = await client.get("/ui/teams/shop-sh?period=2026-11")
    assert board.status_code == 200
    assert "agents see their team&#39;s ranking once it is published" in board.text
    assert not ranking_rows(board.text)
    foreign = await client.get("/ui/teams/shop-be")
    assert foreign.status_code == 403


# -- forms -------------------------------------------------------------------------------------


async def test_publishing_through_the_form_needs_the_token_and_shows_the_sanctions(
    sign_in: SignIn, shop: Shop,
) -> None:
    client = await sign_in("m-weber")
    board = await client.get("/ui/teams/shop-be?period=2026-10")
    assert "Closed, not published" in board.text and "Publish Oct 2026" in board.text
    url = "/ui/teams/shop-be/months/2026-10/publish"
    for data in ({}, {CSRF_FIELD: "forged"}):
        refused = await client.post(url, data=data)
        assert refused.status_code == 403 and problem_kind(refused) == "csrf"
    cross_site = await client.post(url, data={CSRF_FIELD: hidden_token(board.text)},
                                   headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    cycle = await api_get(shop, "/v1/teams/shop-be/cycles/2026-10", "m-weber")
    assert cycle["status"] == "closed"

    response = await client.post(url, data={CSRF_FIELD: hidden_token(board.text)})
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/ui/teams/shop-be?period=2026-10&done=published#consequences")
    page = await client.get(response.headers["location"])
    assert "The month is published" in page.text
    ledger = await api_get(shop, "/v1/sanctions?team_id=shop-be&period=2026-10", "m-weber")
    kinds = sorted(i["kind"] for i in ledger["items"])
    assert kinds == ["deduction", "improvement_plan", "improvement_plan", "reward"]
    consequences = page.text.split('id="consequences"')[1]
    for item in ledger["items"]:
        assert f'data-kind="{item["kind"]}" data-agent="{item["agent_id"]}"' in consequences
    sanctions = await client.get("/ui/sanctions?team_id=shop-be")
    due = sanctions.text.split('id="due-h"')[1].split("</section>")[0]
    for item in ledger["items"]:
        if item["kind"] == "improvement_plan":
            assert f'data-agent="{item["agent_id"]}" data-period="2026-10"' in due


async def test_the_evaluation_form_checks_and_saves_scores(sign_in: SignIn, shop: Shop) -> None:
    client = await sign_in("m-chen")
    url = "/ui/teams/shop-sh/months/2026-11/evaluations/sh-sun-hui/manager"
    form = await client.get(url)
    assert form.status_code == 200
    for name in ("work_ability", "cooperation", "service", "report_timeliness",
                 "report_reliability", "report_quality"):
        assert f'<label for="f-{name}">' in form.text
    token = hidden_token(form.text)
    scores = {"work_ability": "81", "cooperation": "77", "service": "abc",
              "report_timeliness": "90", "report_reliability": "85", "report_quality": "101"}
    bad = await client.post(url, data={**scores, CSRF_FIELD: token})
    assert bad.status_code == 422
    assert 'id="e-service">enter a number' in bad.text and 'value="abc"' in bad.text
    scores["service"] = "79,5"  # a decimal comma is fine
    out_of_range = await client.post(url, data={**scores, CSRF_FIELD: token})
    assert out_of_range.status_code == 422 and 'id="e-report_quality"' in out_of_range.text
    scores["report_quality"] = "88"
    saved = await client.post(url, data={**scores, "comment": "Steady month.",
                                         CSRF_FIELD: token})
    assert saved.status_code == 303, saved.text
    card = await api_get(shop, "/v1/teams/shop-sh/cycles/2026-11/scorecards/sh-sun-hui",
                         "m-chen")
    manager = next(e for e in card["evaluations"] if e["rater_role"] == "manager")
    assert manager["scores"]["service"] == 79.5 and manager["comment"] == "Steady month."
    assert manager["rater_id"] == "m-chen"


async def test_an_agent_cannot_use_the_managers_form(sign_in: SignIn) -> None:
    client = await sign_in("sh-wang-lei")
    url = "/ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/manager"
    assert (await client.get(url)).status_code == 403
    own = await client.get("/ui/teams/shop-sh/months/2026-11/evaluations/sh-wang-lei/self")
    assert own.status_code == 200 and '<label for="f-task_completion">' in own.text


async def test_a_plan_is_approved_through_the_form(sign_in: SignIn, shop: Shop) -> None:
    client = await sign_in("m-chen")
    page = await client.get("/ui/sanctions")
    waiting = page.text.split('id="review-h"')[1].split("</section>")[0]
    assert 'data-agent="sh-wang-lei" data-period="2026-09"' in waiting
    response = await client.post(
        "/ui/teams/shop-sh/months/2026-09/plans/sh-wang-lei/review",
        data={"decision": "approved", "comment": "Good plan.", "next": "/ui/sanctions",
              CSRF_FIELD: hidden_token(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sanctions?done=plan-approved"
    plan = await api_get(
        shop, "/v1/teams/shop-sh/cycles/2026-09/improvement-plans/sh-wang-lei", "m-chen")
    assert plan["status"] == "approved"


async def test_the_sanctions_view_lists_deadlines_and_reviews(sign_in: SignIn) -> None:
    page = await (await sign_in("m-chen")).get("/ui/sanctions")
    overdue = page.text.split('id="overdue-h"')[1].split("</section>")[0]
    assert 'data-agent="sh-zhou-jie" data-period="2026-09"' in overdue  # never submitted
    reviews = page.text.split('id="reviews-h"')[1].split("</section>")[0]
    assert 'data-review="shop-sh:2026-10:sh-wang-lei"' in reviews
    assert "Record decision" in reviews


async def test_static_files_are_served_with_a_long_cache(anonymous: httpx.AsyncClient) -> None:
    css = await anonymous.get("/ui/static/csperf.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    assert (await anonymous.get("/ui/static/../main.py")).status_code == 404
    assert (await anonymous.get("/ui/static/nothing.css")).status_code == 404


async def test_a_late_evaluation_is_flagged_on_the_agent_page(
    sign_in: SignIn, shop: Shop
) -> None:
    card = await api_get(shop, "/v1/teams/shop-sh/cycles/2026-11/scorecards/sh-sun-hui",
                         "m-chen")
    current = next(e for e in card["evaluations"] if e["rater_role"] == "manager")
    page = await (await sign_in("m-chen")).get("/ui/agents/sh-sun-hui?period=2026-11")
    assert "after the evaluation deadline" not in page.text
    pinned = shop.clock.pinned
    shop.clock.set(datetime(2026, 12, 9, 9, 0, tzinfo=UTC))  # past the 7th in Shanghai
    try:
        # the same scores again: a late revision that changes no number other tests read
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as api:
            revised = await api.put(
                "/v1/teams/shop-sh/cycles/2026-11/evaluations/sh-sun-hui/manager",
                json={"scores": current["scores"], "comment": current["comment"]},
                headers=shop.api("m-chen"))
        assert revised.status_code == 200 and revised.json()["late"] is True, revised.text
        page = await (await sign_in("m-chen")).get("/ui/agents/sh-sun-hui?period=2026-11")
        assert page.status_code == 200
        assert re.search(r'<span class="badge badge-overdue" title="stored after the evaluation'
                         r' deadline, [^"]+">late</span>', page.text), page.text
    finally:
        shop.clock.set(pinned)  # type: ignore[arg-type]


async def test_a_nul_in_a_form_is_a_422_page_naming_the_field(sign_in: SignIn) -> None:
    # The page builds the API's body from the form; the body refuses text PostgreSQL cannot
    # store, and the page shows that as a 422, not a 500.
    client = await sign_in("m-chen")
    url = "/ui/teams/shop-sh/months/2026-11/evaluations/sh-sun-hui/manager"
    token = hidden_token((await client.get(url)).text)
    scores = dict.fromkeys(("work_ability", "cooperation", "service", "report_timeliness",
                            "report_reliability", "report_quality"), "80")
    bad = await client.post(url, data={**scores, "comment": "a\x00b", CSRF_FIELD: token})
    assert bad.status_code == 422, bad.text
    assert "comment" in bad.text
