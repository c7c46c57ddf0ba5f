"""Fuzz the running service against the committed openapi.yaml with schemathesis.

Two bounded passes of `st run` against a real `csperf serve` (uvicorn on 127.0.0.1) on a
database of its own: one with ids the fuzzer makes up (mostly unknown things: 404s and
validation), one with the path ids pinned to a seeded team whose month is published (the
logic behind the 404s: rankings, scorecards, sanctions, feedback). Every check schemathesis
has runs (no 5xx; status code, content type, headers and body as documented; invalid input
refused; missing auth refused), except that a schema-valid request may still be refused with
422 or 406 for what a schema cannot say (an unknown cursor, a domain rule, an SSE endpoint
asked for JSON), a too-large metrics batch is 413 by contract (issue 5), and a metrics batch
without a JSON Content-Type (a missing body has none) is 415 (issue 17).

Bounded: max examples per operation (CSPERF_FUZZ_EXAMPLES, default 40) and a hard time
limit per pass; a fixed seed (CSPERF_FUZZ_SEED, `random` for a new one each run). Run with
`make test-fuzz`; the seed is printed, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_token
from tests.support.databases import fresh_database
from tests.support.scenario import make_team
from tests.support.server import ROOT, ServiceProcess

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("CSPERF_FUZZ_EXAMPLES", "40"))
#: A fixed seed keeps CI's run reproducible; CSPERF_FUZZ_SEED=random explores further.
SEED = os.environ.get("CSPERF_FUZZ_SEED", "20261127")
PASS_SECONDS = 420
SCHEMATHESIS = Path(sys.executable).parent / "st"
CONFIG = """
request-timeout = 15.0
max-stream-events = 3

[checks]
positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "406", "409", "422"]
negative_data_rejection.expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
]

# A query string has no types: a "boolean" false for a list-of-names filter arrives as the
# name "false", which is a valid name. Every other check still runs on these two.
[[operations]]
include-path-regex = "^/v1/events(/stream)?$"
checks.negative_data_rejection.enabled = false
"""


@pytest.fixture(scope="module")
def service(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[ServiceProcess]:
    """The service on a database of its own, with nothing that reaches outside the machine,
    and a seeded team (before any pass: the fuzzer revokes the keys it finds)."""
    # Generated webhook URLs must never be called; failed-auth limits would turn the fuzzer's
    # deliberately broken credentials into 429s for every later request.
    monkeypatch_module.setenv("CSPERF_WEBHOOK_RUN_SENDER", "false")
    monkeypatch_module.setenv("CSPERF_RUN_SCHEDULER", "false")
    monkeypatch_module.setenv("CSPERF_AUTH_FAILURE_LIMIT", "0")
    with fresh_database("csperf_fuzz") as url:
        process = ServiceProcess(url)
        process.start()
        try:
            process.pinned = asyncio.run(_seed(process.base_url))  # type: ignore[attr-defined]
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for the module's fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


async def _seed(base_url: str) -> dict[str, str]:
    """Make a team with a published month and an open one; return the ids to pin."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        team = await make_team(client, "fuzz", 4)
        scores = {a: 40.0 + 15 * i for i, a in enumerate(team.agents)}
        await team.open("2026-10")
        await team.evaluate_all("2026-10", scores)
        assert (await team.close("2026-10")).status_code == 200
        assert (await team.publish("2026-10")).status_code == 200
        await team.open("2026-11")
        await team.self_eval("2026-11", team.agents[0], 70.0)
    return {"team_id": team.team_id, "period": "2026-10", "agent_id": team.agents[0]}


def _run(service: ServiceProcess, workdir: Path, name: str, pinned: dict[str, str]) -> None:
    config = CONFIG
    if pinned:
        pinned = {**pinned, "scheme_id": "online-shop-cs"}
        config += "\n[parameters]\n" + "".join(
            f'"path.{key}" = "{value}"\n' for key, value in pinned.items())
        # A pinned id replaces the one the fuzzer made invalid, yet schemathesis still counts
        # the request as negative: a valid DELETE of an absence the fuzzer itself recorded
        # then "accepts invalid data" (seen: agent_id reported invalid, a-fuzz-0 sent). The
        # hostile-input run sends truly invalid ids to this route.
        config += textwrap.dedent("""
            [[operations]]
            include-path-regex = "^/v1/agents/[{]agent_id[}]/absences/"
            checks.negative_data_rejection.enabled = false
            """)
    config_file = workdir / f"{name}.toml"
    config_file.write_text(textwrap.dedent(config))
    # A JWT, not an API key: the fuzzer revokes the keys it finds (DELETE /v1/keys/{id}).
    token = make_token("admin", "fuzzer", expires_in=3600)
    command = [
        str(SCHEMATHESIS), "--config-file", str(config_file), "run", str(ROOT / "openapi.yaml"),
        "--url", service.base_url, "--header", f"Authorization: Bearer {token}",
        # Every check runs (the default; `--checks all` would override the exceptions above).
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES), "--workers", "2", "--no-color",
    ]
    if SEED != "random":
        command += ["--seed", SEED]
    for attempt in range(2):
        try:
            done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                                  timeout=PASS_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the {name} pass took more than {PASS_SECONDS} s: {exc.stdout!s:.3000}")
        output = done.stdout + done.stderr
        # CPython 3.11.7's ast module can raise "AST constructor recursion depth mismatch"
        # (CPython gh-106905, fixed in later 3.11 releases) inside hypothesis while it
        # describes a strategy: the fuzzer crashed, nothing was found about the service. Such
        # a pass, with no failure reported, runs once more; any finding fails as before.
        fuzzer_crashed = (done.returncode != 0 and "FAILURES" not in output
                          and "AST constructor recursion depth mismatch" in output)
        if not fuzzer_crashed or attempt == 1:
            break
    (workdir / f"{name}.log").write_text(output)
    summary = output[output.rfind("SUMMARY"):] if "SUMMARY" in output else output[-3000:]
    print(f"schemathesis, {name} pass:\n{summary}")
    if done.returncode != 0:
        failures = output[output.find("FAILURES"):output.rfind("SUMMARY")]
        pytest.fail(f"schemathesis found problems in the {name} pass (full log:"
                    f" {workdir / f'{name}.log'}):\n{failures[:20000]}\n{summary}")


def test_every_operation_against_unknown_ids(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _run(service, tmp_path_factory.mktemp("fuzz"), "unknown-ids", {})


def test_every_operation_against_a_published_month(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pinned: dict[str, str] = service.pinned  # type: ignore[attr-defined]
    _run(service, tmp_path_factory.mktemp("fuzz"), "published-month", pinned)
