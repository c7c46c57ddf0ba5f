"""Settings: empty values, the rules start-up enforces, and how a bad setting is reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import MIN_JWT_SECRET_BYTES, Settings, settings_problems

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment with no CSPERF_ variable of the caller's."""
    for name in list(os.environ):
        if name.startswith("CSPERF_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_an_empty_value_is_unset(env: pytest.MonkeyPatch) -> None:
    # docker-compose.yml writes CSPERF_JWT_SECRET: ${CSPERF_JWT_SECRET:-} (issue 22 item 8).
    for name in ("JWT_SECRET", "DATABASE_URL", "BOOTSTRAP_ADMIN_KEY", "JWT_PUBLIC_KEY",
                 "TRUSTED_PROXIES", "PORT"):
        env.setenv(f"CSPERF_{name}", "")
    settings = Settings()
    assert settings.jwt_secret is None
    assert settings.database_url is None
    assert settings.bootstrap_admin_key is None
    assert settings.jwt_public_key is None
    assert settings.trusted_proxies == ()
    assert settings.port == 8000


def test_trusted_proxies_are_ips_and_networks(env: pytest.MonkeyPatch) -> None:
    env.setenv("CSPERF_TRUSTED_PROXIES", " 10.0.0.5, 172.16.0.0/12,,::1 ")
    assert Settings().trusted_proxies == ("10.0.0.5", "172.16.0.0/12", "::1")
    env.setenv("CSPERF_TRUSTED_PROXIES", "10.0.0.5,proxy.local")
    with pytest.raises(ValidationError) as refused:
        Settings()
    [line] = settings_problems(refused.value)
    assert line.startswith("invalid setting CSPERF_TRUSTED_PROXIES: 'proxy.local' is not")


def test_proxy_networks_are_written_as_uvicorn_reads_them(env: pytest.MonkeyPatch) -> None:
    # uvicorn parses "10.1.2.3/8" strictly, fails, and keeps it as a name that never matches.
    env.setenv("CSPERF_TRUSTED_PROXIES", "10.1.2.3/8,::ffff:10.0.0.1,2001:DB8::1")
    assert Settings().trusted_proxies == ("10.0.0.0/8", "::ffff:a00:1", "2001:db8::1")


def test_log_level_and_public_key_are_checked_at_start(env: pytest.MonkeyPatch) -> None:
    env.setenv("CSPERF_LOG_LEVEL", "loud")
    env.setenv("CSPERF_JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nnonsense")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert settings_problems(refused.value) == [
        "invalid setting CSPERF_JWT_PUBLIC_KEY: not a PEM public key"
        " (-----BEGIN PUBLIC KEY----- ...)",
        "invalid setting CSPERF_LOG_LEVEL: one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ]
    env.setenv("CSPERF_LOG_LEVEL", "warning")
    env.delenv("CSPERF_JWT_PUBLIC_KEY")
    assert Settings().log_level == "WARNING"


def test_a_short_jwt_secret_is_refused(env: pytest.MonkeyPatch) -> None:
    secret = "x" * (MIN_JWT_SECRET_BYTES - 1)
    env.setenv("CSPERF_JWT_SECRET", secret)
    with pytest.raises(ValidationError) as refused:
        Settings()
    [line] = settings_problems(refused.value)
    assert line.startswith("invalid setting CSPERF_JWT_SECRET: an HS256 secret must be at least"
                           f" {MIN_JWT_SECRET_BYTES} bytes")
    assert secret not in line
    env.setenv("CSPERF_JWT_SECRET", "x" * MIN_JWT_SECRET_BYTES)
    assert Settings().jwt_secret is not None


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("CSPERF_BOOTSTRAP_ADMIN_KEY", "admin-password", "the key must start with 'csk_'"),
    ("CSPERF_JWT_SECRET", "short-secret", "an HS256 secret must be at least 32 bytes"),
    ("CSPERF_PORT", "eighty", "Input should be a valid integer"),
    # A number out of its range stops the start too, rather than meaning something else:
    # a negative limit used to disable the limiter as 0 does, a pool of none to hang requests.
    ("CSPERF_AUTH_FAILURE_LIMIT", "-1", "Input should be greater than or equal to 0"),
    ("CSPERF_DB_POOL_SIZE", "0", "Input should be greater than or equal to 1"),
    ("CSPERF_PORT", "70000", "Input should be less than or equal to 65535"),
])
def test_a_bad_setting_stops_serve_with_one_line(
    tmp_path: Path, name: str, value: str, rule: str
) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPERF_")}
    env.update({"CSPERF_DATA_DIR": str(data_dir), "CSPERF_PORT": "1", name: value})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"csperf: invalid setting {name}: {rule}")
    assert value not in lines[0]
    assert not data_dir.exists()  # refused before any database was started
    assert time.monotonic() - started < 30
