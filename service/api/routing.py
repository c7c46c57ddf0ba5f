"""The API's routers: FastAPI's, with a first look at the path that skips a router at once.

FastAPI tries the app's routers in order and, inside an included router, its routes one by one,
about 25 Python calls a route (its bookkeeping of the effective route around each route's own
regular expression); the router that serves a request tries its routes twice (once to choose
the router, once to handle). So a request paid for every route declared before its own: a
release (the second route of the tenth router, the fiftieth route) cost 1,241 Python calls to
route, more than a whole held ranking read; a PUT agent about 450. A ``Router`` first matches
the path against one regular expression made of all its routes' (compiled once, in C): a path
none of them can match is no match for the router, as FastAPI would have found route by route.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

#: A named group of a route's pattern; the joined pattern names none (a name may recur).
_NAMED_GROUP = re.compile(r"\(\?P<[^>]+>")


def paths_pattern(routes: Sequence[BaseRoute]) -> re.Pattern[str] | None:
    """Return a pattern that matches exactly the paths one of the routes matches, or None
    when a route matches by more than its path (a mount, a host, a WebSocket route)."""
    patterns = []
    for route in routes:
        if not isinstance(route, Route):  # APIRoute is a Route
            return None
        patterns.append(_NAMED_GROUP.sub("(?:", route.path_regex.pattern))
    return re.compile("|".join(f"(?:{p})" for p in patterns))


class Router(APIRouter):
    """An APIRouter that tells in one regular expression whether a request's path is one of
    its routes' before FastAPI tries them one by one.

    Its routes' paths are those it declares (its prefix included): include it without a
    prefix of its own, as service.main does.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._paths: tuple[int, re.Pattern[str] | None] = (-1, None)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match as FastAPI does, after refusing at once a path none of the routes has."""
        count, pattern = self._paths
        if count != len(self.routes):  # routes are declared at import: made once
            count, pattern = self._paths = (len(self.routes), paths_pattern(self.routes))
        if (pattern is not None and scope["type"] == "http"
                and pattern.match(get_route_path(scope)) is None):
            return Match.NONE, {}
        return super().matches(scope)
