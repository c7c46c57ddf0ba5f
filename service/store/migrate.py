"""Apply the Alembic migrations and tell whether a database is at head."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[2]


def _config(url: str | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the database at url to the newest migration (blocking; not inside an event loop)."""
    command.upgrade(_config(url), "head")


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(_config()).get_current_head()
