"""A service stopped with SIGTERM (docker stop, systemd) stops the embedded server it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.server import ROOT, free_port

pytestmark = pytest.mark.faults


def _postmaster(data_dir: Path) -> psutil.Process | None:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().split()[0])
    return psutil.Process(pid) if psutil.pid_exists(pid) else None


def test_sigterm_stops_the_embedded_server(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPERF_")}
    env.update({"CSPERF_DATA_DIR": str(tmp_path), "CSPERF_PORT": str(port),
                "CSPERF_LOG_LEVEL": "WARNING"})
    process = subprocess.Popen([sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    postmaster = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the service exited with {process.returncode}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        postmaster = _postmaster(tmp_path)
        assert postmaster is not None and postmaster.is_running()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        postmaster.wait(timeout=30)
        assert not postmaster.is_running()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        left = postmaster or _postmaster(tmp_path)
        if left is not None and left.is_running():
            left.kill()
