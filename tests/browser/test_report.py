"""The monthly report printed to PDF by Chromium: every section, one page per agent, any script.

The PDF's text is read back with pypdf. Chromium writes right-to-left text in visual order and
Arabic in its presentation forms, so names are compared word by word after NFKC normalisation
(which maps those forms back to the letters typed).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from tests.browser.conftest import SCREENSHOTS, DemoService, needs_chromium
from tests.conftest import TEST_BOOTSTRAP_KEY, bearer, make_token
from tests.support.scenario import MANAGER_FORM, V1

pytestmark = needs_chromium

ARABIC = "مريم الحسن"
HEBREW = "דנה לוי"
#: U+2600 is an emoji (Emoji=Yes) that DejaVu, the machine's font, draws; U+1F338 needs an
#: emoji font, which Debian's chromium package does not pull in.
EMOJI = "Ana ☀ Lima 🌸"


def pdf_pages(data: bytes) -> list[str]:
    """Return the NFKC-normalised text of each page of a PDF."""
    return [unicodedata.normalize("NFKC", page.extract_text() or "")
            for page in PdfReader(io.BytesIO(data)).pages]


def has_words(text: str, name: str) -> bool:
    """Tell whether every word of a name is in the text (right-to-left runs come reversed)."""
    return all(word in text for word in name.split())


def emoji_font() -> bool:
    """Tell whether the machine has a font with colour emoji (fontconfig knows)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run([fc_list, ":", "family"], capture_output=True, text=True,
                           check=False)
    return "emoji" in found.stdout.lower()


@pytest.fixture
def report_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, base_url: str, key: str) -> None:
    page.goto(base_url + "/ui/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui**")
    assert "/ui/signin" not in page.url


def test_the_report_prints_every_section_and_a_page_per_agent(
    demo_service: DemoService, report_page: Any,
) -> None:
    page = report_page
    period = demo_service.months[-2]  # Shanghai's last published month
    sign_in(page, demo_service.base_url, demo_service.keys["m-chen"])
    page.goto(f"{demo_service.base_url}/ui/teams/shop-sh?period={period}")
    page.get_by_role("link", name="Printable monthly report").click()
    page.wait_for_url(f"**/ui/teams/shop-sh/months/{period}/report")
    page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
    # Its summary, as docs/screenshots/report.png shows it (copied from here by hand).
    page.screenshot(path=str(SCREENSHOTS / "report-summary.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1100, "height": 1250})
    pages = pdf_pages(page.pdf(format="A4", print_background=True))
    ranking = demo_service.api(f"/v1/teams/shop-sh/cycles/{period}/ranking", "m-chen")
    ledger = demo_service.api(f"/v1/sanctions?team_id=shop-sh&period={period}", "m-chen")
    first = "\n".join(pages[:len(pages) - len(ranking["entries"])])
    for heading in ("Monthly report", "Ranking", "Target", "Unavailable KPIs", "Not ranked",
                    "Consequences", "Reward", "Deduction", "Improvement plan"):
        assert heading in first, heading
    assert "Print this page" not in "".join(pages)  # the screen-only hint is not printed
    # One page per agent, in ranking order, each with its numbers and its consequences.
    lines = pages[-len(ranking["entries"]):]
    for entry, text in zip(ranking["entries"], lines, strict=True):
        assert text.lstrip().startswith(entry["name"]), text[:80]
        assert f"Rank {entry['rank']}" in text and "Read and discussed" in text
        for item in ledger["items"]:
            if item["agent_id"] == entry["agent_id"] and item["kind"] == "improvement_plan":
                assert "Improvement plan" in text and "deadline" in text


def test_the_report_prints_right_to_left_and_emoji_names(
    demo_service: DemoService, report_page: Any,
) -> None:
    period, team_id, manager = demo_service.months[-1], "intl-desk", "m-intl"
    names = {"intl-ar": ARABIC, "intl-he": HEBREW, "intl-emoji": EMOJI}
    with httpx.Client(base_url=demo_service.base_url, timeout=30) as api:
        admin = bearer(TEST_BOOTSTRAP_KEY)
        boss = bearer(make_token("manager", manager))
        assert api.put(f"/v1/teams/{team_id}", headers=admin, json={
            "name": "International desk", "timezone": "UTC", "currency": "EUR",
            "manager_ids": [manager]}).status_code == 201
        for agent_id, name in names.items():
            assert api.put(f"/v1/agents/{agent_id}", headers=admin, json={
                "name": name, "team_id": team_id}).status_code == 201
        url = f"/v1/teams/{team_id}/cycles"
        assert api.post(url, headers=boss, json={"period": period,
                                                 "scheme_version": V1}).status_code == 201
        for score, agent_id in zip((90, 70, 50), names, strict=True):
            assert api.put(f"{url}/{period}/evaluations/{agent_id}/self",
                           headers=bearer(make_token("agent", agent_id)),
                           json={"scores": {"task_completion": score}}).status_code == 200
            assert api.put(f"{url}/{period}/evaluations/{agent_id}/manager", headers=boss,
                           json={"scores": dict.fromkeys(MANAGER_FORM, score)}
                           ).status_code == 200
        assert api.post(f"{url}/{period}/close", headers=boss, json={}).status_code == 200
        assert api.post(f"{url}/{period}/publish", headers=boss).status_code == 200
    page = report_page
    sign_in(page, demo_service.base_url, make_token("manager", manager))
    page.goto(f"{demo_service.base_url}/ui/teams/{team_id}/months/{period}/report")
    shown = page.locator("main").inner_text()
    assert all(name in shown for name in names.values())  # the page has them exactly
    pages = pdf_pages(page.pdf(format="A4"))
    assert len(pages) >= 1 + len(names)
    text = "\n".join(pages)
    assert has_words(text, ARABIC) and has_words(text, HEBREW)
    assert "Ana ☀ Lima" in text
    if emoji_font():  # without one Chromium has no glyph, so no text, for U+1F338
        assert "🌸" in text
    # Each agent's page starts with their name: ranked 1, 2, 3.
    for name, line in zip(names.values(), pages[-len(names):], strict=True):
        assert has_words(line.split("\n")[0], name.replace("🌸", "")), line[:80]

