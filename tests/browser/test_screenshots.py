"""The team board, an agent's page and the monthly report in Korean and English, as a person
sees them in Chromium: each page's words are checked, and the screenshots are written.

With ``CSPERF_SCREENSHOTS=1`` they go to docs/screenshots/ (committed, shown in the README);
otherwise to tests/screenshots/ (ignored by git), so an ordinary test run leaves the
committed pictures alone. Korean needs a Korean font in the browser's machine (Debian's
fonts-nanum; .ci/run installs it beside chromium): without one the words would still be in
the page's text but drawn as boxes, which only the pictures show.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.browser.conftest import SCREENSHOTS, DemoService, needs_chromium
from tests.support.server import ROOT

pytestmark = needs_chromium

WHERE = ROOT / "docs" / "screenshots" if os.environ.get("CSPERF_SCREENSHOTS") == "1" \
    else SCREENSHOTS
#: What each page says in each language (from the catalogues, as a reader would look for it).
WORDS = {
    "en": {"board": ["Ranking", "Download Excel"], "agent": ["Trends", "Improvement plans"],
           "report": ["Monthly report", "Consequences"]},
    "ko": {"board": ["순위", "Excel 다운로드"], "agent": ["추이", "개선 계획"],
           "report": ["월간 보고서", "후속 조치"]},
}


@pytest.fixture
def manager_page(browser: Any, demo_service: DemoService) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(demo_service.base_url + "/ui/signin")
    page.get_by_label("API key").fill(demo_service.keys["m-chen"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui**")
    try:
        yield page
    finally:
        context.close()


def picture(page: Any, path: Path) -> None:
    """Write the top of the page (a README picture, not a whole scroll)."""
    WHERE.mkdir(parents=True, exist_ok=True)
    height = min(1400, int(page.evaluate("document.documentElement.scrollHeight")))
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": height})


@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_main_pages_in_korean_and_english(
    demo_service: DemoService, manager_page: Any, language: str,
) -> None:
    page = manager_page
    period = demo_service.months[-2]  # Shanghai's last published month
    urls = {
        "board": f"/ui/teams/shop-sh?period={period}",
        "agent": f"/ui/agents/sh-wang-lei?period={period}",
        "report": f"/ui/teams/shop-sh/months/{period}/report",
    }
    for name, url in urls.items():
        page.goto(f"{demo_service.base_url}{url}&lang={language}" if "?" in url
                  else f"{demo_service.base_url}{url}?lang={language}")
        assert page.locator("html").get_attribute("lang") == language
        text = page.locator("body").inner_text()
        for word in WORDS[language][name]:
            assert word in text, (name, word)
        picture(page, WHERE / f"{name}-{language}.png")
    if language == "ko":
        # The printed report keeps its Korean (the PDF's text, read back).
        pdf = PdfReader(io.BytesIO(page.pdf(format="A4", print_background=True)))
        # pypdf spaces the glyph runs as it finds them: compare without the spaces.
        first = "".join(unicodedata.normalize("NFKC", pdf.pages[0].extract_text() or "").split())
        assert "월간보고서" in first and "순위" in first
