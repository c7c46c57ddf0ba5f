"""The API documentation pages work offline and lock themselves down; the pages' headers."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from service.docs import ASSETS

LINKED = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_elsewhere(
    app_client: httpx.AsyncClient, path: str
) -> None:
    page = await app_client.get(path)
    assert page.status_code == 200
    html = page.text
    # Issue 17 item 11: the pages loaded Swagger UI and ReDoc from a public CDN.
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    linked = LINKED.findall(html)
    assert linked and all(url.startswith("/docs/assets/") for url in linked), linked
    for url in linked:
        got = await app_client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 1000
        name = url.split("/")[-1].split("?")[0]
        assert got.headers["content-type"] == ASSETS[name]
        assert "immutable" in got.headers["cache-control"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_send_a_content_security_policy(
    app_client: httpx.AsyncClient, path: str
) -> None:
    page = await app_client.get(path)
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    script_src = directives["script-src"].split()
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert not [s for s in script_src if s.startswith(("http", "*"))]
    # Each inline script is allowed by its own hash, and nothing else inline is.
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(page.text)
    }
    assert set(script_src) - {"'self'"} == expected
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_swagger_ui_validates_nothing_elsewhere(app_client: httpx.AsyncClient) -> None:
    assert '"validatorUrl": null' in (await app_client.get("/docs")).text


async def test_an_unknown_docs_asset_is_404(app_client: httpx.AsyncClient) -> None:
    for name in ("nothing.js", "..%2Fcore.py", "core.py"):
        assert (await app_client.get(f"/docs/assets/{name}")).status_code == 404


@pytest.mark.parametrize("path", ["/ui/signin", "/ui", "/ui/static/csperf.css"])
async def test_ui_responses_isolate_the_window_and_deny_features(
    app_client: httpx.AsyncClient, path: str
) -> None:
    response = await app_client.get(path)  # a page, a redirect to sign in, a static file
    assert response.status_code in (200, 303), path
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    policy = response.headers["permissions-policy"]
    for feature in ("camera", "microphone", "geolocation", "payment"):
        assert f"{feature}=()" in policy
