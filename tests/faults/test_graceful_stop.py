"""A service stopped with SIGTERM (docker stop, systemd) stops the embedded server it started.

It also stops a server it adopted from a process that was SIGKILLed (whose pid stays in the
server's handle list), and it exits 0, so `make run` reports no error after a clean stop.
"""

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


def _serve(data_dir: Path) -> subprocess.Popen[bytes]:
    """Start `csperf serve` on the embedded server in data_dir and wait until it is ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPERF_")}
    env.update({"CSPERF_DATA_DIR": str(data_dir), "CSPERF_PORT": str(port),
                "CSPERF_LOG_LEVEL": "WARNING"})
    process = subprocess.Popen([sys.executable, "-m", "service", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError("the service did not become ready")


def _clean_up(data_dir: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    left = _postmaster(data_dir)
    if left is not None and left.is_running():
        left.kill()
        left.wait(timeout=10)


def _stop_and_check(process: subprocess.Popen[bytes], postmaster: psutil.Process) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0  # a graceful stop is a success (no make "Error 143")
    try:
        postmaster.wait(timeout=30)
    except psutil.TimeoutExpired:
        pass
    assert not postmaster.is_running(), "the embedded PostgreSQL was left running"


def test_sigterm_stops_the_embedded_server(tmp_path: Path) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_serve(tmp_path))
        postmaster = _postmaster(tmp_path)
        assert postmaster is not None and postmaster.is_running()
        _stop_and_check(processes[0], postmaster)
    finally:
        _clean_up(tmp_path, processes)


def test_sigterm_after_a_sigkilled_run_stops_the_adopted_server(tmp_path: Path) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_serve(tmp_path))
        postmaster = _postmaster(tmp_path)
        assert postmaster is not None
        processes[0].kill()  # SIGKILL: its pid stays in pgdata/.handle_pids.json
        processes[0].wait(timeout=10)
        assert postmaster.is_running()

        processes.append(_serve(tmp_path))
        assert _postmaster(tmp_path) == postmaster  # adopted, not started anew
        _stop_and_check(processes[1], postmaster)
    finally:
        _clean_up(tmp_path, processes)
