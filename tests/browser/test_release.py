"""Feedback before results in a real browser: the agent waits, the manager releases, the agent
appeals, the manager decides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.domain.training import TOPICS
from tests.browser.conftest import DemoService, needs_chromium
from tests.browser.test_dashboard import shot, signed_in
from tests.support.raters import COMPLETED, VALID_UNTIL
from tests.support.scenario import MANAGER_FORM

pytestmark = needs_chromium

PERIOD = "2026-10"
TEAM = "br-release"


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    """Open browser contexts (each its own cookie jar) and close them after the test."""
    opened: list[Any] = []

    def open_context(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                      locale="en-US")
        context.set_default_timeout(20_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def _published_month(shop: DemoService) -> list[str]:
    """Publish a version 2 month of a new team of three through the API; keep its keys."""
    manager, agents = "m-br-release", [f"br-rel-{i}" for i in range(3)]

    def call(method: str, path: str, key: str, body: Any = None) -> httpx.Response:
        response = httpx.request(method, shop.base_url + path, json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"})
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return response

    admin = shop.keys["admin"]
    call("PUT", f"/v1/teams/{TEAM}", admin, {"name": "Release desk", "manager_ids": [manager]})
    for i, agent in enumerate(agents):
        call("PUT", f"/v1/agents/{agent}", admin,
             {"name": f"Agent {i}", "team_id": TEAM, "position": "pre-sale"})
    for topic in TOPICS:
        call("PUT", f"/v1/training/{manager}/{topic}", admin,
             {"completed_at": COMPLETED, "valid_until": VALID_UNTIL})
    for role, subject in (("manager", manager), *(("agent", a) for a in agents)):
        shop.keys[subject] = call("POST", "/v1/keys", admin,
                                  {"role": role, "subject": subject}).json()["key"]
    boss = shop.keys[manager]
    call("POST", f"/v1/teams/{TEAM}/cycles", boss, {"period": PERIOD})
    cycle = f"/v1/teams/{TEAM}/cycles/{PERIOD}"
    for agent, score in zip(agents, (90, 80, 70), strict=True):
        call("PUT", f"{cycle}/evaluations/{agent}/self", shop.keys[agent],
             {"scores": {"task_completion": score}})
        call("PUT", f"{cycle}/evaluations/{agent}/manager", boss,
             {"scores": dict.fromkeys(MANAGER_FORM, score)})
    call("POST", f"{cycle}/close", boss, {})
    call("POST", f"{cycle}/publish", boss)
    return [manager, *agents]


def test_release_appeal_and_decision_through_the_dashboard(
    demo_service: DemoService, contexts: Any,
) -> None:
    manager, *agents = _published_month(demo_service)
    last = agents[2]
    url = f"{demo_service.base_url}/ui/agents/{last}?period={PERIOD}"
    agent = signed_in(contexts, demo_service, last)
    agent.goto(url)
    assert agent.locator("[data-waiting=yes]").is_visible()
    assert agent.get_by_text("is waiting for your feedback conversation").is_visible()
    shot(agent, "agent-waiting-for-result")

    boss = signed_in(contexts, demo_service, manager)
    boss.goto(url)
    boss.get_by_role("button", name="Release the result").click()
    boss.wait_for_url("**done=released**")
    assert boss.locator("[data-released=yes]").is_visible()

    agent.goto(url)
    assert not agent.locator("[data-waiting=yes]").count()
    agent.get_by_label("Appeal this month").fill("My chats of the 3rd are missing.")
    agent.get_by_role("button", name="File the appeal").click()
    agent.wait_for_url("**done=appealed**")
    assert agent.locator("[data-appeal-status=open]").is_visible()
    shot(agent, "agent-appealed")

    boss.goto(url)
    boss.get_by_label("Uphold").check()
    boss.get_by_label("Note to Agent 2").fill("The chats of the 3rd were counted.")
    boss.get_by_role("button", name="Decide").click()
    boss.wait_for_url("**done=appeal-upheld**")
    assert boss.locator("[data-appeal-status=upheld]").is_visible()
    appeals = demo_service.api(f"/v1/appeals?team_id={TEAM}", "admin")["items"]
    assert [(a["agent_id"], a["status"], a["decided_by"]) for a in appeals] == [
        (last, "upheld", manager)]
    shot(boss, "appeal-decided")
