"""Retrying and backing off, with tenacity: one place says how each kind of work tries again.

tenacity (Apache-2.0, kept current, typed, asyncio-aware) gives the stop, wait and retry rules
as values instead of counters and sleeps spread through hand-written loops, and re-raises the
last error unchanged when the attempts run out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from service.domain.errors import IdTaken
from service.store.database import database_away
from service.store.errors import ConcurrencyError

log = logging.getLogger(__name__)

#: A command that lost a race to a writer outside these commands decides again this often.
RETRIES = 5


def on_conflict(attempts: int = RETRIES) -> AsyncRetrying:
    """Retry at once, ``attempts`` times in all, when a command lost a race on its stream."""
    return AsyncRetrying(retry=retry_if_exception_type(ConcurrencyError),
                         stop=stop_after_attempt(attempts), reraise=True)


def on_taken_id(attempts: int = RETRIES) -> AsyncRetrying:
    """Retry at once with a fresh random id, ``attempts`` times in all, when an id was taken."""
    return AsyncRetrying(retry=retry_if_exception_type(IdTaken),
                         stop=stop_after_attempt(attempts), reraise=True)


def reconnecting(
    *, first: float, cap: float, name: str,
    on: Callable[[BaseException], bool] = database_away,
) -> AsyncRetrying:
    """Retry, for as long as it takes, while the database is away (an error ``on`` says
    yes to): after ``first`` seconds, doubling up to ``cap``; each wait is logged under
    ``name``."""

    def lost(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s cannot reach the database (%s); retrying", name, type(error).__name__)

    return AsyncRetrying(retry=retry_if_exception(on),
                         wait=wait_exponential(multiplier=first, min=first, max=cap),
                         before_sleep=lost, reraise=True)
