"""Feedback before results on the pages: an agent waiting for their result, the manager's
release button, the agent's appeal form and the manager's decision form; the demo's appeals."""

from __future__ import annotations

import httpx

from service.ui.session import CSRF_FIELD
from tests.conftest import bearer, make_token
from tests.support.raters import train
from tests.support.scenario import ADMIN, MANAGER_FORM
from tests.ui.conftest import BASE, Shop, SignIn, hidden_token

PERIOD = "2026-10"


async def _published_v2_team(shop: Shop) -> tuple[str, str, list[str]]:
    """Create a team of three whose October is published under version 2; return keys."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as api:
        team, manager = "ui-release", "m-ui-release"
        agents = [f"ui-rel-{i}" for i in range(3)]
        assert (await api.put(f"/v1/teams/{team}", headers=ADMIN, json={
            "name": "Release desk", "timezone": "Asia/Seoul", "currency": "KRW",
            "manager_ids": [manager]})).status_code in (200, 201)
        for i, agent in enumerate(agents):
            assert (await api.put(f"/v1/agents/{agent}", headers=ADMIN, json={
                "name": f"Release {i}", "team_id": team, "position": "pre-sale"})
                ).status_code in (200, 201)
        await train(api, manager)
        boss = bearer(make_token("manager", manager))
        cycle = f"/v1/teams/{team}/cycles/{PERIOD}"
        opened = await api.post(f"/v1/teams/{team}/cycles", headers=boss,
                                json={"period": PERIOD})
        assert opened.status_code == 201 and opened.json()["scheme_version"] >= 2
        for agent, score in zip(agents, (90, 80, 70), strict=True):
            assert (await api.put(f"{cycle}/evaluations/{agent}/self",
                                  headers=bearer(make_token("agent", agent)),
                                  json={"scores": {"task_completion": score}})).status_code == 200
            assert (await api.put(f"{cycle}/evaluations/{agent}/manager", headers=boss,
                                  json={"scores": dict.fromkeys(MANAGER_FORM, score)})
                    ).status_code == 200
        assert (await api.post(f"{cycle}/close", headers=boss, json={})).status_code == 200
        assert (await api.post(f"{cycle}/publish", headers=boss)).status_code == 200
        keys = []
        for role, subject in (("manager", manager), ("agent", agents[2])):
            issued = await api.post("/v1/keys", headers=ADMIN,
                                    json={"role": role, "subject": subject})
            assert issued.status_code == 201, issued.text
            keys.append(issued.json()["key"])
    return keys[0], keys[1], agents


async def test_an_agent_waits_the_manager_releases_the_agent_appeals_the_manager_decides(
    sign_in: SignIn, shop: Shop,
) -> None:
    manager_key, agent_key, agents = await _published_v2_team(shop)
    last = agents[2]
    page_url = f"/ui/agents/{last}?period={PERIOD}"
    agent = await sign_in(agent_key)
    waiting = await agent.get(page_url)
    assert waiting.status_code == 200, waiting.text
    assert 'data-waiting="yes"' in waiting.text
    assert "is waiting for your feedback conversation" in waiting.text
    assert "rank <strong>" not in waiting.text and "appeal-reason" not in waiting.text

    manager = await sign_in(manager_key)
    before = await manager.get(page_url)
    assert 'id="release-button"' in before.text and 'data-released="no"' in before.text
    released = await manager.post(
        f"/ui/teams/ui-release/months/{PERIOD}/releases/{last}",
        data={CSRF_FIELD: hidden_token(before.text)})
    assert released.status_code == 303
    assert released.headers["location"] == f"/ui/agents/{last}?period={PERIOD}&done=released"

    seen = await agent.get(page_url)
    assert 'data-waiting="yes"' not in seen.text and "rank <strong>3" in seen.text
    assert 'id="appeal-reason"' in seen.text
    url = f"/ui/teams/ui-release/months/{PERIOD}/appeals/{last}"
    blank = await agent.post(url, data={CSRF_FIELD: hidden_token(seen.text), "reason": " "})
    assert blank.status_code == 422
    filed = await agent.post(url, data={CSRF_FIELD: hidden_token(seen.text),
                                        "reason": "my chats of the 3rd are missing"})
    assert filed.status_code == 303 and filed.headers["location"].endswith("done=appealed")
    after = await agent.get(filed.headers["location"])
    assert 'data-appeal-status="open"' in after.text and 'id="appeal-reason"' not in after.text
    assert "decide-appeal" not in after.text  # the agent does not decide their own appeal

    review = await manager.get(page_url)
    assert 'class="decide-appeal"' in review.text
    appeal = f"ui-release:{PERIOD}:{last}"
    decided = await manager.post(f"/ui/appeals/{appeal}/decision", data={
        CSRF_FIELD: hidden_token(review.text), "decision": "uphold",
        "note": "the chats of the 3rd were counted"})
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"].endswith("done=appeal-upheld")
    final = await manager.get(decided.headers["location"])
    assert 'data-appeal-status="upheld"' in final.text
    assert "the chats of the 3rd were counted" in final.text


async def test_the_demo_shows_an_upheld_and_an_amended_appeal(
    sign_in: SignIn, shop: Shop,
) -> None:
    client = await sign_in("m-weber")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app),
                                 base_url=BASE) as api:
        appeals = (await api.get("/v1/appeals?team_id=shop-be", headers=ADMIN)).json()["items"]
        ledger = (await api.get("/v1/sanctions?team_id=shop-be&period=2026-09&kind=deduction",
                                headers=ADMIN)).json()["items"]
    assert {(a["agent_id"], a["status"]) for a in appeals} == {
        ("be-noah-wagner", "upheld"), ("be-jonas-becker", "amended")}
    # The amendment is a real correction: Jonas's deduction reversed, Paul's granted.
    assert {(i["agent_id"], i["entry"], i["status"]) for i in ledger} == {
        ("be-jonas-becker", "grant", "reversed"), ("be-jonas-becker", "reversal", "reversal"),
        ("be-paul-koch", "grant", "active")}
    reversal = next(i for i in ledger if i["entry"] == "reversal")
    assert "appeal shop-be:2026-09:be-jonas-becker amended" in reversal["reason"]
    page = await client.get("/ui/agents/be-noah-wagner?period=2026-09")
    assert 'data-appeal-status="upheld"' in page.text and "Ties share a rank" in page.text
