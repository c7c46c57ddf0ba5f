"""Path and query parameters shared by the routers: ids and periods, each validated once.

Every id is held to the one id pattern before anything touches the database, so a NUL byte or
a stray character is a 422 naming the parameter, never a driver error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from service.domain.ids import COMPOUND_ID_PATTERN, ID_PATTERN
from service.domain.periods import PERIOD_PATTERN

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


#: A month in the path. Its route checks its range with check_period against the service's
#: clock, as months in a query string or a body are checked: as a dependency, FastAPI solved
#: it in about 95 Python calls a request.
PeriodText = Annotated[str, PERIOD_PATH]

#: A month in the query string; its range is checked with check_period where it is used.
PERIOD_QUERY = Query(pattern=PERIOD_PATTERN, max_length=7, examples=["2026-11"])
