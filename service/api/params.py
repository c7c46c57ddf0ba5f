"""Path and query parameters shared by the routers: ids and periods, each validated once.

Every id is held to the one id pattern before anything touches the database, so a NUL byte or
a stray character is a 422 naming the parameter, never a driver error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from service.api.deps import service_context
from service.domain.ids import COMPOUND_ID_PATTERN, ID_PATTERN
from service.domain.periods import PERIOD_PATTERN, check_period

#: An id in the path: a team, an agent, a scheme, an evaluator, a review.
IdPath = Annotated[str, Path(pattern=ID_PATTERN, examples=["t-1"])]
#: A compound id in the path: ids joined by ':'.
CompoundIdPath = Annotated[str, Path(pattern=COMPOUND_ID_PATTERN, examples=["t-1:2026-11:a-1"])]
#: An optional id filter in the query string.
IdQuery = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]


#: A month in the path as it is documented: a pattern, checked by check_period, whose reason
#: names the rule.
PERIOD_PATH = Path(max_length=7, examples=["2026-11"],
                   json_schema_extra={"pattern": PERIOD_PATTERN},
                   description="YYYY-MM, from 2000-01 to ten years ahead")


async def _period_path(request: Request, period: Annotated[str, PERIOD_PATH]) -> str:
    return check_period(period, service_context(request).clock())


#: A month in the path, in range for the service's clock.
PeriodPath = Annotated[str, Depends(_period_path)]
#: A month in the path that its route checks with check_period itself, as PERIOD_QUERY's are:
#: one dependency fewer for FastAPI to solve (about 80 Python calls), for the hottest read.
PeriodText = Annotated[str, PERIOD_PATH]

#: A month in the query string; its range is checked with check_period where it is used.
PERIOD_QUERY = Query(pattern=PERIOD_PATTERN, max_length=7, examples=["2026-11"])
