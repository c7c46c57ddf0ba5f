"""How far a projection's generation is behind: the stored events that count for it, past its
checkpoint.

Counted from the checkpoint forward on the event indexes, so a caught-up projection costs one
short probe whatever the size of the log. Only events of the stream types it reads count, and
of a projection that names the events it applies (``Projection.applies``) only those: it reads
past the others without storing its checkpoint at once (``service.projections.runner``), so a
count of positions or of events read would show such a projection behind while it is not.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.projections.base import Projection, admits_sql, past_checkpoint_sql
from service.projections.checkpoints import Generation


def _count_sql(projection: Projection, first: int) -> str:
    """Return SQL counting the events that count for ``projection`` past a checkpoint, its
    parameters numbered from ``first`` (``_parameters``' order; the stream types only when it
    reads some). Every value is a parameter; the composed fragments are code."""
    tx_id, position, skipped_streams, skipped_types, read = (
        f"${first + k}" for k in range(5))
    counts = admits_sql(skipped_streams, skipped_types)
    if projection.stream_types is None:
        return (f"SELECT count(*) FROM event e"
                f" WHERE (e.tx_id, e.position) > ({tx_id}, {position}) AND {counts}")
    # Each stream type on its own range of the (stream_type, tx_id, position) index.
    return (f"SELECT count(*) FROM ({past_checkpoint_sql(read, tx_id, position, counts)})"
            " AS past")


def _parameters(projection: Projection, generation: Generation) -> list[object]:
    only = projection.applies
    skipped = only.parameters() if only else ([], [])
    read = [list(projection.stream_types)] if projection.stream_types is not None else []
    return [generation.cursor.tx_id, generation.cursor.position, *skipped, *read]


async def lags_events(conn: asyncpg.Connection,
                      generations: Sequence[tuple[Projection, Generation]]) -> list[int]:
    """Count the events that count for each projection past its generation's checkpoint, in
    one statement (``/metrics`` and ``csperf projections status`` ask for all of them)."""
    if not generations:
        return []
    parts: list[str] = []
    parameters: list[object] = []
    for projection, generation in generations:
        parts.append(f"({_count_sql(projection, len(parameters) + 1)})")
        parameters.extend(_parameters(projection, generation))
    row = await conn.fetchrow(f"SELECT {', '.join(parts)}", *parameters)
    return [int(count) for count in row]
