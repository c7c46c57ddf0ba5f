"""Closed months' rankings, answered before FastAPI's per-request machinery.

The published ranking is the read every dashboard and BI tool polls, and for a closed month it
is a stored document checked against its revision. FastAPI then costs more than the read
itself: matching the request against every route before it and solving the dependency tree
take about half of the request's CPU (measured with bench/cycle.py's 16 clients: the service
process is the bottleneck, so its CPU per request is the latency).

This layer sits inside the request-context middleware (request id, access log, metrics) and
answers ``GET /v1/teams/{team_id}/cycles/{period}/ranking`` only when the route itself would
answer 200 from the stored document: the same credential check (service.api.auth), the same
role rule as the route, the same team-membership check, the same document and headers
(service.api.cycles.stored_ranking_response). Every other request, and every one of these that
would end in anything but that answer (no credential, a refusal, an open month, a projection
behind, a database error), goes to the app untouched, which answers it as always.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api import cycles

_PATH = re.compile(r"/v1/teams/([^/]+)/cycles/([^/]+)/ranking")


class FrozenRankings:
    """Answer current stored rankings directly; pass everything else to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = cycles.ranking_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, or hand it on."""
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.fullmatch(scope["path"])
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await cycles.stored_ranking_response(request, *match.groups())
                except Exception:  # an unknown team, the database away: the app answers
                    response = None
                if response is not None:
                    scope["route"] = self.route  # metrics and logs name the route as usual
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
