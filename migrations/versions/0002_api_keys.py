"""API keys: looked up by the SHA-256 of the key on every request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


UPGRADE = [
    """
        CREATE TABLE api_key (
            key_id     text PRIMARY KEY,
            -- SHA-256 of the whole key; the key itself is never stored
            key_hash   bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
            prefix     text NOT NULL,
            role       text NOT NULL
                       CHECK (role IN ('admin', 'manager', 'agent', 'rater', 'ingest', 'reader')),
            subject    text,
            source     text,
            name       text,
            created_at timestamptz NOT NULL,
            created_by text NOT NULL,
            revoked_at timestamptz,
            revoked_by text,
            CHECK (role <> 'ingest' OR source IS NOT NULL),
            CHECK (role NOT IN ('manager', 'agent', 'rater') OR subject IS NOT NULL)
        )
    """,
    "CREATE INDEX api_key_created ON api_key (created_at, key_id)",
]

DOWNGRADE = [
    "DROP TABLE api_key",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
