"""SQL that tells whether a read model has applied the newest events of some stream types.

Ingestion reads the directory and the declared metrics from read models, which it may trust
only once their projection has applied every committed event of the stream types they fold;
otherwise it reads the streams. The newest event of a type is one backward probe of the
event index however long the log.
"""

from __future__ import annotations


def newest_events(*stream_types: str) -> str:
    """Return a ``newest`` CTE body: the (tx_id, position) of each stream type's newest event."""
    return "\n    UNION ALL\n".join(
        f"    (SELECT tx_id, position FROM event WHERE stream_type = '{kind}'\n"
        "     ORDER BY tx_id DESC, position DESC LIMIT 1)"
        for kind in stream_types)


def applied(projection: str) -> str:
    """Return a boolean SQL expression: the live ``projection`` is past every ``newest`` row."""
    return (
        "EXISTS (SELECT 1 FROM projection_checkpoint c"
        f" WHERE c.name = '{projection}' AND c.status = 'live'"
        " AND NOT EXISTS (SELECT 1 FROM newest n"
        " WHERE (n.tx_id, n.position) > (c.tx_id, c.position)))"
    )
