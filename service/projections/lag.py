"""How far a projection's generation is behind: the stored events that count for it, past its
checkpoint.

Counted from the checkpoint forward on the event indexes, so a caught-up projection costs one
short probe whatever the size of the log. Only events of the stream types it reads count, and
of a projection that names the events it applies (``Projection.applies``) only those: it reads
past the others without storing its checkpoint at once (``service.projections.runner``), so a
count of positions or of events read would show such a projection behind while it is not.
"""

from __future__ import annotations

import asyncpg

from service.projections.base import Projection, admits_sql, past_checkpoint_sql
from service.projections.checkpoints import Generation

# The composed fragment is code (admits_sql); every value is a parameter.
_ALL = f"""
SELECT count(*) FROM event e
WHERE (e.tx_id, e.position) > ($1, $2) AND {admits_sql("$3", "$4")}
"""
# Each stream type on its own range of the (stream_type, tx_id, position) index.
_TYPED = f"""
SELECT count(*) FROM ({past_checkpoint_sql("$5", "$1", "$2", admits_sql("$3", "$4"))}) AS past
"""


async def lag_events(conn: asyncpg.Connection, projection: Projection,
                     generation: Generation) -> int:
    """Count the events that count for the projection past the generation's checkpoint."""
    only = projection.applies
    skipped = only.parameters() if only else ([], [])
    cursor = generation.cursor
    if projection.stream_types is None:
        counted = await conn.fetchval(_ALL, cursor.tx_id, cursor.position, *skipped)
    else:
        counted = await conn.fetchval(_TYPED, cursor.tx_id, cursor.position, *skipped,
                                      list(projection.stream_types))
    return int(counted)
