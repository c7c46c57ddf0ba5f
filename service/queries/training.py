"""Read an evaluator's training records."""

from __future__ import annotations

from service.context import ServiceContext
from service.domain import training as t
from service.queries.streams import read_state


async def find_training(ctx: ServiceContext, evaluator_id: str) -> t.Training:
    """Return an evaluator's training (empty when nothing was ever recorded)."""
    state = await read_state(ctx, t.training_stream(evaluator_id), t.evolve)
    return state or t.Training(evaluator_id)
