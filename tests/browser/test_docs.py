"""The API documentation renders in a real browser with no internet and under its CSP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import needs_chromium
from tests.support.databases import fresh_database
from tests.support.server import ServiceProcess

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """The real service on a fresh database; its base URL."""
    with fresh_database("csperf_docs") as url:
        process = ServiceProcess(url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CSPERF_DB_POOL_SIZE", "4")
            process.start()
        try:
            yield process.base_url
        finally:
            process.stop()


@pytest.mark.parametrize(("path", "title"), [
    ("/docs", ".swagger-ui .info .title"),
    ("/redoc", "h1"),
])
def test_the_docs_render_offline_under_their_csp(
    service: str, browser: Any, path: str, title: str
) -> None:
    page = browser.new_page()
    elsewhere: list[str] = []
    problems: list[str] = []

    def offline(route: Any) -> None:
        # As on a machine without internet: only the service answers.
        if route.request.url.startswith(service):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(service + path)
        page.wait_for_selector(title, timeout=30_000)
        assert "csperf" in page.inner_text(title)
        page.wait_for_timeout(500)  # late requests (fonts, validator badge, workers)
    finally:
        page.close()
    assert elsewhere == []
    # ReDoc always shows its maker's logo from their CDN (and hides it when it fails to load);
    # the policy blocks it before any request leaves. Nothing else may be blocked.
    blocked = [p for p in problems if "Content Security Policy" in p
               and "cdn.redoc.ly/redoc/logo-mini.svg" not in p]
    assert not blocked, problems
