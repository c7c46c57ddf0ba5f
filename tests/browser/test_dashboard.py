"""The dashboard in a real browser: sign in, read the board, publish a month, stay in scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, DemoService, needs_chromium

pytestmark = needs_chromium

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    """Open browser contexts (each its own cookie jar) and close them after the test."""
    opened: list[Any] = []

    def open_context(viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(viewport=viewport, locale="en-US")
        context.set_default_timeout(20_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def signed_in(contexts: Any, shop: DemoService, label: str,
              viewport: dict[str, int] = DESKTOP) -> Any:
    """Return a page signed in through the form with one of the demo's keys."""
    page = contexts(viewport).new_page()
    page.goto(shop.base_url + "/ui")
    assert "/ui/signin" in page.url
    page.get_by_label("API key").fill(shop.keys[label])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui**")
    assert "/ui/signin" not in page.url
    return page


def shown_ranking(page: Any) -> list[tuple[str, str]]:
    """Return (rank as shown, agent id) of the board's ranking table."""
    rows = page.locator("table.ranking tbody tr")
    return [(rows.nth(i).locator("td.rank").inner_text().split()[0],
             rows.nth(i).get_attribute("data-agent")) for i in range(rows.count())]


def api_ranking(shop: DemoService, team_id: str, period: str, label: str) -> list[tuple[str, str]]:
    body = shop.api(f"/v1/teams/{team_id}/cycles/{period}/ranking", label)
    return [(f"{e['rank']}=" if e["tied"] else str(e["rank"]), e["agent_id"])
            for e in body["entries"]]


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_board_shows_the_same_ranking_as_the_api(
    demo_service: DemoService, contexts: Any,
) -> None:
    page = signed_in(contexts, demo_service, "m-chen")
    assert page.get_by_role("heading", name="Teams").is_visible()
    shot(page, "home")
    page.get_by_role("link", name="Shanghai flagship store").click()
    current = demo_service.months[-1]
    assert shown_ranking(page) == api_ranking(demo_service, "shop-sh", current, "m-chen")
    shot(page, "board-current-month")
    for period in demo_service.months[:-1]:
        page.goto(f"{demo_service.base_url}/ui/teams/shop-sh?period={period}")
        assert page.locator(".badge-published").first.is_visible()
        shown = shown_ranking(page)
        assert shown and shown == api_ranking(demo_service, "shop-sh", period, "m-chen")
    shot(page, "board-published-month")
    page.goto(f"{demo_service.base_url}/ui/teams/shop-be?period={demo_service.months[1]}")
    assert page.locator("h1").inner_text().startswith("Forbidden")  # not m-chen's team


def test_publishing_a_month_through_the_form_shows_its_sanctions(
    demo_service: DemoService, contexts: Any,
) -> None:
    latest = demo_service.months[-2]
    page = signed_in(contexts, demo_service, "m-weber")
    page.goto(f"{demo_service.base_url}/ui/teams/shop-be?period={latest}")
    assert page.get_by_text("Closed, not published").is_visible()
    assert not page.locator("#consequences").count()
    before = shown_ranking(page)
    assert before == api_ranking(demo_service, "shop-be", latest, "m-weber")
    shot(page, "board-before-publishing")

    page.get_by_role("button", name="Publish").click()
    page.wait_for_url("**done=published**")
    assert page.get_by_role("status").inner_text().startswith("The month is published")
    assert page.locator(".badge-published").first.is_visible()
    ledger = demo_service.api(f"/v1/sanctions?team_id=shop-be&period={latest}", "m-weber")
    assert sorted(i["kind"] for i in ledger["items"]) == [
        "deduction", "improvement_plan", "improvement_plan", "reward"]
    rows = page.locator("table.sanctions tbody tr")
    assert rows.count() == len(ledger["items"])
    shown = {(rows.nth(i).get_attribute("data-kind"), rows.nth(i).get_attribute("data-agent"))
             for i in range(rows.count())}
    assert shown == {(i["kind"], i["agent_id"]) for i in ledger["items"]}
    assert shown_ranking(page) == before  # publishing announces the frozen ranking
    shot(page, "board-after-publishing")

    page.get_by_role("link", name="Sanctions & deadlines").click()
    due = page.locator("section[aria-labelledby=due-h] li")
    plans = {i["agent_id"] for i in ledger["items"] if i["kind"] == "improvement_plan"}
    listed = {due.nth(i).get_attribute("data-agent") for i in range(due.count())
              if due.nth(i).get_attribute("data-period") == latest}
    assert listed == plans
    shot(page, "sanctions")


def test_an_agent_cannot_open_another_agents_page(
    demo_service: DemoService, contexts: Any,
) -> None:
    page = signed_in(contexts, demo_service, "sh-wang-lei")
    assert page.url.endswith("/ui/agents/sh-wang-lei")
    assert page.locator("h1").inner_text().startswith("Wang Lei")
    assert page.locator("svg.chart").count() == 9
    shot(page, "agent-own-page")
    response = page.goto(f"{demo_service.base_url}/ui/agents/sh-li-na")
    assert response is not None and response.status == 403
    assert page.locator("main").get_attribute("data-problem") == "out-of-scope"
    assert "Li Na" not in page.locator("main").inner_text()
    shot(page, "agent-forbidden")


def test_the_pages_fit_a_phone_and_work_with_the_keyboard(
    demo_service: DemoService, contexts: Any,
) -> None:
    page = signed_in(contexts, demo_service, "m-chen", PHONE)
    for path, name in ((f"/ui/teams/shop-sh?period={demo_service.months[-2]}", "phone-board"),
                       ("/ui/agents/sh-zhao-min", "phone-agent"),
                       ("/ui/sanctions", "phone-sanctions")):
        page.goto(demo_service.base_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a phone"
        shot(page, name)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_a_manager_evaluates_through_the_form(
    demo_service: DemoService, contexts: Any,
) -> None:
    current = demo_service.months[-1]
    page = signed_in(contexts, demo_service, "m-chen")
    page.goto(f"{demo_service.base_url}/ui/teams/shop-sh?period={current}")
    page.get_by_role("link", name="Evaluate Zhou Jie").click()
    scores = {"Work ability": "74", "Cooperation": "80", "Service": "77",
              "Report timeliness": "90", "Report data reliability": "85",
              "Report quality": "70"}
    for label, value in scores.items():
        page.get_by_label(label, exact=True).fill(value)
    shot(page, "evaluation-form")
    page.get_by_role("button", name="Save evaluation").click()
    page.wait_for_url("**done=evaluated**")
    card = demo_service.api(f"/v1/teams/shop-sh/cycles/{current}/scorecards/sh-zhou-jie",
                            "m-chen")
    manager = next(e for e in card["evaluations"] if e["rater_role"] == "manager")
    assert manager["scores"]["work_ability"] == 74 and manager["rater_id"] == "m-chen"
