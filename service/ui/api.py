"""Call the JSON API's own handlers from the pages, under the API route's own rule.

A page never re-implements what an endpoint decides. It calls the endpoint's handler function
(the same code behind ``GET .../ranking`` or ``POST .../publish``), so the handler's scope checks
(``ensure_manager_of``, ``ensure_self_or_manager``...) run unchanged, and before that it applies
the ``allow(...)`` rule declared on that endpoint's route, read back from the route itself. A
page is therefore exactly as permissive as the API calls it is made of.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

import orjson
from fastapi import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service import observability
from service.api import cycles, directory, feedback, metrics, releases, sanctions, schemes
from service.api.auth import Allow, route_rule
from service.api.problems import Problem
from service.domain.principal import Principal

log = logging.getLogger("csperf.auth")

P = ParamSpec("P")
T = TypeVar("T")

_ROUTERS = (cycles.router, directory.router, sanctions.router, metrics.router, schemes.router,
            feedback.router, releases.router)


@lru_cache(maxsize=1)
def _rules() -> dict[object, tuple[Allow, str, str]]:
    found: dict[object, tuple[Allow, str, str]] = {}
    for router in _ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            rule = route_rule(route)
            if isinstance(rule, Allow):
                found[route.endpoint] = (rule, sorted(route.methods or {"GET"})[0], route.path)
    return found


def rule_of(handler: Callable[..., Any]) -> tuple[Allow, str, str]:
    """Return the rule, method and path of the API route served by ``handler``."""
    try:
        return _rules()[handler]
    except KeyError:
        raise LookupError(f"{handler.__name__} is not an API route handler") from None


def permits(principal: Principal, handler: Callable[..., Any]) -> bool:
    """Tell whether the principal's role may call the API route served by ``handler``."""
    rule, method, _ = rule_of(handler)
    return rule.permits(principal.role, method)


async def call(
    principal: Principal, handler: Callable[P, Awaitable[T]], /, *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Call an API handler as the principal, refusing (403) what its route's rule refuses."""
    rule, method, path = rule_of(handler)
    if not rule.permits(principal.role, method):
        observability.AUTH_FAILURES.labels("role").inc()
        log.warning("authorisation refused: role %s on %s %s (page)", principal.role, method,
                    path, extra={"reason": "role", "actor": {"subject": principal.subject,
                                                             "role": principal.role}})
        raise Problem(403, f"the {principal.role} role may not {method} {path}",
                      kind="forbidden")
    return await handler(*args, **kwargs)


def document(result: object) -> Any:
    """Return an API handler's result as plain JSON data (dicts, lists, strings, numbers)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, Response):
        if not (result.media_type or "").startswith("application/json"):
            raise Problem(406, "the pages read JSON; ask without Accept: text/csv")
        return orjson.loads(bytes(result.body))
    return orjson.loads(orjson.dumps(result))
