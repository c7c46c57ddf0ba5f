"""Run the real service (`csperf serve`) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_BOOTSTRAP_KEY, TEST_JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServiceProcess:
    """A `csperf serve` process against a given database."""

    def __init__(self, database_url: str, port: int | None = None) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "CSPERF_DATABASE_URL": self.database_url,
               "CSPERF_PORT": str(self.port), "CSPERF_HOST": "127.0.0.1",
               "CSPERF_BOOTSTRAP_ADMIN_KEY": TEST_BOOTSTRAP_KEY,
               "CSPERF_JWT_SECRET": TEST_JWT_SECRET, "CSPERF_LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop gracefully, or kill after a while."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
