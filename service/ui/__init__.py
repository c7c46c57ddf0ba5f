"""The built-in web pages (issue 10): a manager's dashboard on top of the JSON API.

``install(app)`` adds the pages under ``/ui``; they are left out of the OpenAPI document, which
describes the JSON API only. See ``service.ui.routes`` for the pages and ``service.ui.session``
for how they sign in.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Serve the pages under /ui."""
    from service.ui.downloads import router as downloads_router
    from service.ui.report import router as report_router
    from service.ui.routes import router

    app.include_router(router)
    app.include_router(report_router)
    app.include_router(downloads_router)
