"""The API's documentation pages (/docs, /redoc), with every asset served by the service.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN and the favicon from
FastAPI's site, so where the service runs without internet (often) /docs is a blank page.
Here the assets come from the ``fastapi-offline`` package (only its static files are used,
not its app factory) and are served under ``/docs/assets`` with a content hash in the URL, so
browsers may keep them for long.

The pages send a Content-Security-Policy that allows this origin only: the one inline script
of Swagger UI's page (its start-up call, which FastAPI writes) is allowed by its hash, computed
from the page itself, so a FastAPI upgrade that changes it cannot break the page silently.
Both UIs set inline styles (React style attributes, ReDoc's styled-components), so styles
need ``'unsafe-inline'``; ReDoc runs its search in a worker made from a ``blob:`` URL.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from service.api.auth import public
from service.api.problems import Problem

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
ASSET_PACKAGE = "fastapi_offline"
#: The files the pages use, and their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
#: Swagger UI would send the document to a public validator and show its badge.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@lru_cache(maxsize=len(ASSETS))
def asset(name: str) -> bytes | None:
    """Return a documentation asset shipped by the package, or None for any other name."""
    if name not in ASSETS:
        return None
    return resources.files(ASSET_PACKAGE).joinpath("static", name).read_bytes()


@lru_cache(maxsize=len(ASSETS))
def asset_url(name: str) -> str:
    """Return an asset's URL with a content hash, so it may be cached as immutable."""
    return f"{ASSETS_URL}/{name}?v={hashlib.sha256(asset(name) or b'').hexdigest()[:10]}"


def content_security_policy(html: str) -> str:
    """Return the CSP of a documentation page: this origin only, its inline scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}".rstrip() + "; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def _secured(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    page.headers["Content-Security-Policy"] = content_security_policy(html)
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "same-origin"
    page.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    return page


def _root(request: Request) -> str:
    return str(request.scope.get("root_path") or "")


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets from the package (the app is built with
    ``docs_url=None, redoc_url=None``)."""
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"

    @router.get(DOCS_URL, dependencies=[public()])
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Show the API in Swagger UI."""
        root = _root(request)
        return _secured(get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=root + asset_url("swagger-ui-bundle.js"),
            swagger_css_url=root + asset_url("swagger-ui.css"),
            swagger_favicon_url=root + asset_url("favicon.png"),
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        ))

    @router.get(OAUTH2_REDIRECT_URL, dependencies=[public()])
    async def swagger_ui_redirect() -> HTMLResponse:
        """Finish Swagger UI's OAuth2 sign-in (part of its page set)."""
        return _secured(get_swagger_ui_oauth2_redirect_html())

    @router.get(REDOC_URL, dependencies=[public()])
    async def redoc(request: Request) -> HTMLResponse:
        """Show the API in ReDoc."""
        root = _root(request)
        return _secured(get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + asset_url("redoc.standalone.js"),
            redoc_favicon_url=root + asset_url("favicon.png"),
            with_google_fonts=False,
        ))

    @router.get(ASSETS_URL + "/{name}", dependencies=[public()])
    async def docs_asset(name: Annotated[str, Path(max_length=64)]) -> Response:
        """Serve a documentation asset shipped by the package."""
        body = asset(name)
        if body is None:
            raise Problem(404, f"no documentation asset {name}")
        return Response(body, media_type=ASSETS[name], headers={
            "Cache-Control": "public, max-age=604800, immutable",
            "X-Content-Type-Options": "nosniff",
        })

    app.include_router(router)
