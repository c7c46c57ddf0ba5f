"""Debian's Chromium, headless, against the real service after `csperf demo` seeded its database.

The browser is the system's (package ``chromium``, /usr/bin/chromium), driven by Playwright's
Python client with ``executable_path``: nothing is downloaded at test time. Without it the
tests are skipped, saying why. Screenshots of the main pages go to tests/screenshots/ (ignored
by git).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import demo
from tests.support.databases import fresh_database
from tests.support.server import ROOT, ServiceProcess

CHROMIUM = Path(os.environ.get("CSPERF_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "tests" / "screenshots"
#: What CI's machine needs (see the machine notes): no sandbox as root, no calls home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return (f"Debian's Chromium is not installed ({CHROMIUM} is missing); install it with"
                " `apt-get install chromium chromium-driver` (.ci/run does) to run these")
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


SKIP_REASON = _skip_reason()
needs_chromium = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


@dataclass
class DemoService:
    """The real service on a database seeded by `csperf demo`, and the demo's keys."""

    base_url: str
    keys: dict[str, str]
    months: list[str]

    def api(self, path: str, label: str) -> Any:
        """GET an API path with one of the demo's keys."""
        response = httpx.get(self.base_url + path, timeout=30,
                             headers={"Authorization": f"Bearer {self.keys[label]}"})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoService]:
    """Run `csperf demo` into a fresh database, then serve it with `csperf serve`."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    folder = tmp_path_factory.mktemp("demo")
    keys_file = folder / "demo-keys.json"
    with fresh_database("csperf_browser") as url:
        now = datetime.now(UTC)
        env = {**os.environ, "CSPERF_DATABASE_URL": url, "CSPERF_DATA_DIR": str(folder),
               "CSPERF_LOG_LEVEL": "WARNING", "CSPERF_DB_POOL_SIZE": "8"}
        seeded = subprocess.run(
            [sys.executable, "-m", "service", "demo", "--keys-file", str(keys_file)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert seeded.returncode == 0, seeded.stderr[-3000:]
        keys = json.loads(keys_file.read_text())
        assert keys["m-chen"] in seeded.stdout  # it prints the keys to use
        service = ServiceProcess(url)
        with pytest.MonkeyPatch.context() as patch:
            # A small pool: the test server's connections are shared with the whole suite.
            patch.setenv("CSPERF_DB_POOL_SIZE", "8")
            service.start()
        try:
            yield DemoService(service.base_url, keys, demo.months_for(now))
        finally:
            service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, started by Playwright from its system path."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
