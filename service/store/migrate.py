"""Apply the Alembic migrations and tell whether a database is at head."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


def _project_root() -> Path:
    # A source checkout keeps migrations beside the package; an installed wheel (the Docker
    # image) keeps them in the working directory.
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (candidate / "alembic.ini").exists() and (candidate / "migrations").is_dir():
            return candidate
    raise RuntimeError("alembic.ini and migrations/ not found beside the package or in the cwd")


def _config(url: str | None = None) -> Config:
    root = _project_root()
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
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
