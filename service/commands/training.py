"""Training commands: record an evaluator's completed training."""

from __future__ import annotations

from datetime import datetime

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import training as t
from service.domain.directory import check_id


async def record(
    ctx: ServiceContext, caller: Caller, evaluator_id: str, topic: str, *,
    completed_at: datetime, valid_until: datetime, recorded_by: str,
) -> t.Training:
    """Record that an evaluator completed a topic, valid until a date."""
    check_id(evaluator_id, "evaluator_id")
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, t.training_stream(evaluator_id), t.evolve,
        lambda current: t.decide_record(current, evaluator_id, topic,
                                        completed_at=completed_at, valid_until=valid_until,
                                        recorded_by=recorded_by, now=now),
    )
    return state or t.Training(evaluator_id)
