"""The README runs as written: its shell blocks, in order, against a fresh service.

The convention (README.md states it too, in an HTML comment at its top):

- A fenced ``sh`` block is **run**. All run blocks go, in README order, through one bash
  session, so a variable set in one block is there in the next. In them the README's service
  URL (http://127.0.0.1:8000) becomes the test service's, ``.venv/bin/csperf`` runs this
  checkout's command line, and ``CSPERF_DATA_DIR`` names the test service's data folder.
- ``<!-- not run: REASON -->`` on the line before an ``sh`` fence keeps that block out (the
  service start, docker compose, a stream that never ends); the reason is required. The one
  block that says ``make run`` gives the service its ``CSPERF_*`` variables.
- ``<!-- eventually: REASON -->`` before a block that only reads (a read model that follows
  the writes within a second) runs it again, for up to 10 s, until it answers as shown.
- Every ``curl`` of a run block must answer 2xx or 304, and the block must exit 0, except that
  the last ``curl`` of a block followed by an ``http`` block answers as that block says.
- An ``http`` block right after a run block (only blank lines between) is the answer of the
  block's last ``curl``: a status line (``HTTP/1.1 409 Conflict``: the code is checked), header
  lines if any, a blank line, and a body. A JSON body is a subset of the answer: every field
  shown has that value (in a list, the same number of items, each matching a different item,
  in any order). Any other body is lines that must appear in the answer, in that order.
- A ``text`` block right after a run block is lines that must appear in the block's standard
  output, in that order.
- In expected text, ``…`` stands for any characters.
- A shell fence by another name (``bash``, ``shell``, ``console``) fails the test: a block is
  either run or says why not.

A failure names the README line, section and first line of the block it is about.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_URL = "http://127.0.0.1:8000"
SHELL_ALIASES = {"bash", "shell", "console", "zsh"}
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")
EVENTUALLY = re.compile(r"^<!--\s*eventually:\s*(\S.*?)\s*-->$")
EVENTUALLY_SECONDS = 10
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
SCRIPT_SECONDS = 150


@dataclass
class Block:
    """A fenced block of the README."""

    lang: str
    line: int  # 1-based line of the opening fence
    end: int  # 0-based index of the closing fence
    section: str
    text: str
    skip_reason: str | None = None
    eventually: bool = False
    expected: Block | None = None
    index: int = 0  # among run blocks

    def name(self) -> str:
        first = next((ln for ln in self.text.splitlines() if ln.strip()), "")
        return f"README.md line {self.line} ({self.section}): `{first.strip()[:70]}`"


@dataclass
class Outcome:
    """What one run block did: its output, exit code and each curl's answer."""

    rc: int | None
    stdout: str
    stderr: str
    curls: list[tuple[int, dict[str, str], str]] = field(default_factory=list)


def parse(text: str) -> list[Block]:
    """Return the README's fenced blocks, each sh block with its expected answer if any."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section = "top"
    i = 0
    while i < len(lines):
        if lines[i].startswith("#"):
            section = lines[i].strip()
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, lang = match.group(1), match.group(2)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        previous = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        marker = NOT_RUN.match(previous)
        blocks.append(Block(lang=lang, line=i + 1, end=j, section=section, text="\n".join(body),
                            skip_reason=marker.group(1) if marker else None,
                            eventually=EVENTUALLY.match(previous) is not None))
        # An expected answer follows its block with nothing but blank lines between.
        if lang in ("http", "text") and len(blocks) > 1:
            before = blocks[-2]
            between = lines[before.end + 1:i]
            if before.lang == "sh" and not any(ln.strip() for ln in between):
                before.expected = blocks.pop()
        i = j + 1
    return blocks


def run_blocks(blocks: list[Block]) -> list[Block]:
    """Return the blocks to run, numbered; refuse shell fences outside the convention."""
    for block in blocks:
        if block.lang in SHELL_ALIASES:
            raise AssertionError(f"{block.name()}: a shell block must be fenced as `sh` (run) "
                                 "or carry <!-- not run: why --> before it")
    chosen = [b for b in blocks if b.lang == "sh" and b.skip_reason is None]
    for index, block in enumerate(chosen):
        block.index = index
    return chosen


def service_variables(blocks: list[Block]) -> dict[str, str]:
    """Return the CSPERF_* assignments of the not-run block that starts the service."""
    for block in blocks:
        found = dict(re.findall(r"\b(CSPERF_[A-Z_]+)=(\S+)", block.text))
        if block.lang == "sh" and block.skip_reason and "make run" in block.text and found:
            return found
    raise AssertionError("README.md: no (not run) block with `make run` gives the service's "
                         "variables")


def wildcard(expected: str) -> re.Pattern[str]:
    """Return a pattern for expected text where … stands for any characters."""
    return re.compile(".*".join(re.escape(part) for part in expected.split("…")), re.DOTALL)


def matches(expected: Any, actual: Any, where: str = "") -> str | None:
    """Return why actual does not contain expected (JSON subset), or None when it does."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where or 'the body'}: expected an object, got {json.dumps(actual)[:200]}"
        for key, value in expected.items():
            if key not in actual:
                return f"{where}.{key}: missing (the answer has {sorted(actual)})"
            problem = matches(value, actual[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return (f"{where}: expected a list of {len(expected)}, got "
                    f"{json.dumps(actual)[:300]}")
        return None if _pair(expected, list(actual), where) else (
            f"{where}: the items shown are not all in {json.dumps(actual)[:400]}")
    if isinstance(expected, str) and isinstance(actual, str):
        if wildcard(expected).fullmatch(actual):
            return None
    elif expected == actual and type(expected) is not bool and type(actual) is not bool:
        return None
    elif expected is actual:
        return None
    return f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)[:200]}"


def _pair(expected: list[Any], actual: list[Any], where: str) -> bool:
    """Tell whether each expected item matches a different actual item."""
    if not expected:
        return True
    head, rest = expected[0], expected[1:]
    for i, candidate in enumerate(actual):
        if matches(head, candidate, where) is None and _pair(rest, actual[:i] + actual[i + 1:],
                                                              where):
            return True
    return False


def lines_in_order(expected: list[str], actual: str) -> str | None:
    """Return the first expected line not found (in order) in actual, or None."""
    remaining = [ln.rstrip("\r") for ln in actual.splitlines()]
    for line in expected:
        pattern = wildcard(line.strip())
        for k, candidate in enumerate(remaining):
            if pattern.fullmatch(candidate.strip()):
                remaining = remaining[k + 1:]
                break
        else:
            return line
    return None


def check(block: Block, outcome: Outcome | None) -> str | None:
    """Return why a run block failed its convention, or None."""
    if outcome is None or outcome.rc is None:
        return (f"did not finish: the shell stopped in or before it, or the {SCRIPT_SECONDS} s "
                "for the whole README ran out")
    expected = block.expected
    last_is_checked = expected is not None and expected.lang == "http"
    for n, (status, _, body) in enumerate(outcome.curls):
        if last_is_checked and n == len(outcome.curls) - 1:
            break
        if not (200 <= status < 300 or status == 304):
            return f"curl number {n + 1} of the block answered {status}: {body[:500]}"
    if outcome.rc != 0:
        return f"exited {outcome.rc}"
    if expected is None:
        return None
    if expected.lang == "text":
        missing = lines_in_order([ln for ln in expected.text.splitlines() if ln.strip()],
                                 outcome.stdout)
        return None if missing is None else f"printed no line like {missing!r}"
    if not outcome.curls:
        return "shows an HTTP answer but ran no curl"
    status, headers, body = outcome.curls[-1]
    head, _, shown = expected.text.partition("\n\n")
    status_line, *header_lines = head.strip().splitlines()
    code = int(status_line.split()[1])
    if status != code:
        return f"answered {status}, the README shows {code}: {body[:500]}"
    for line in header_lines:
        name, _, value = line.partition(":")
        actual = headers.get(name.strip().lower())
        if actual is None or not wildcard(value.strip()).fullmatch(actual):
            return f"header {name.strip()}: expected {value.strip()!r}, got {actual!r}"
    if not shown.strip():
        return None
    try:
        wanted = json.loads(shown)
    except ValueError:
        missing = lines_in_order([ln for ln in shown.splitlines() if ln.strip()], body)
        return None if missing is None else f"the body has no line like {missing!r}"
    try:
        got = json.loads(body)
    except ValueError:
        return f"the README shows JSON, the answer is not: {body[:300]}"
    return matches(wanted, got)


# --- running -----------------------------------------------------------------------------

CURL_WRAPPER = r'''
__readme_curl_n=0
curl() {
  __readme_curl_n=$((__readme_curl_n + 1))
  local f="$__README_OUT/b$__readme_block.c$__readme_curl_n"
  command curl --max-time 30 -D "$f.head" "$@" | tee "$f.body"
  return "${PIPESTATUS[0]}"
}
'''


def script(blocks: list[Block], base_url: str) -> str:
    """Return one bash script that runs every block, each block's output to its own files."""
    parts = [CURL_WRAPPER]
    for block in blocks:
        k = block.index
        run = (
            f'rm -f "$__README_OUT/b{k}".*; __readme_block={k}; __readme_curl_n=0\n'
            f"{{\n{block.text.replace(README_URL, base_url)}\n}}"
            f' > "$__README_OUT/b{k}.out" 2> "$__README_OUT/b{k}.err" < /dev/null\n'
            f'echo $? > "$__README_OUT/b{k}.rc"\n'
        )
        if block.eventually:
            # Again until this module's own check passes (it reads the files just written).
            run = (f"__readme_since=$SECONDS\nwhile :; do\n{run}"
                   f'"$__README_PYTHON" -c "import sys; from tests.docs.test_readme import '
                   f'recheck; sys.exit(recheck({k}))" && break\n'
                   f"(( SECONDS - __readme_since >= {EVENTUALLY_SECONDS} )) && break\n"
                   f"sleep 0.25\ndone\n")
        parts.append(run)
    return "\n".join(parts)


def recheck(k: int) -> int:
    """Return 0 when run block k's files (in $__README_OUT) answer as the README shows."""
    block = run_blocks(parse(README.read_text()))[k]
    return 0 if check(block, read_outcome(Path(os.environ["__README_OUT"]), k)) is None else 1


def text(path: Path) -> str:
    """Return a file's text, or "" when the shell never wrote it."""
    return path.read_text(errors="replace") if path.exists() else ""


def read_outcome(out: Path, k: int) -> Outcome:
    """Collect block k's output, exit code and curl answers from the script's files."""
    rc_file = out / f"b{k}.rc"
    outcome = Outcome(rc=int(rc_file.read_text()) if rc_file.exists() else None,
                      stdout=text(out / f"b{k}.out"), stderr=text(out / f"b{k}.err"))
    n = 1
    while (out / f"b{k}.c{n}.head").exists():
        raw = text(out / f"b{k}.c{n}.head").replace("\r", "")
        last = raw.strip().split("\n\n")[-1].splitlines() or ["HTTP/1.1 0"]
        status = int(last[0].split()[1]) if len(last[0].split()) > 1 else 0
        headers = {}
        for line in last[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        outcome.curls.append((status, headers, text(out / f"b{k}.c{n}.body")))
        n += 1
    return outcome


def stop_postgres(pgdata: Path) -> None:
    """Stop an embedded server left behind in pgdata (the service normally stops it)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
    except (ValueError, IndexError, ProcessLookupError):
        return
    deadline = time.monotonic() + 20
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture(scope="module")
def readme_run() -> Iterator[tuple[list[Block], dict[int, Outcome]]]:
    """Run the README's blocks against a fresh `csperf serve` on its own embedded server."""
    # Imported here: `recheck` imports this module in a fresh interpreter, and needs no
    # service (tests.support.server brings the whole service with it).
    from tests.support.server import free_port

    blocks = parse(README.read_text())
    chosen = run_blocks(blocks)
    workdir = Path(tempfile.mkdtemp(prefix="csperf-readme-"))
    data_dir, out = workdir / "data", workdir / "out"
    out.mkdir()
    # The README calls `.venv/bin/csperf`: here it is this interpreter's csperf.
    shim = workdir / "cwd" / ".venv" / "bin" / "csperf"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m service "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPERF_")}
    env.update({"CSPERF_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    service_env = {**env, **service_variables(blocks), "CSPERF_HOST": "127.0.0.1",
                   "CSPERF_PORT": str(port), "CSPERF_LOG_LEVEL": "WARNING"}
    log = (workdir / "service.log").open("wb")
    service = subprocess.Popen([sys.executable, "-m", "service", "serve"], cwd=ROOT,
                               env=service_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if service.poll() is not None:
                raise RuntimeError(f"csperf serve exited {service.returncode}: "
                                   f"{(workdir / 'service.log').read_text()[-2000:]}")
            try:
                if httpx.get(base_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("csperf serve did not become ready in 90 s")
            time.sleep(0.2)
        env.update({"__README_OUT": str(out), "__README_PYTHON": sys.executable,
                    # The README's curls go to this machine's service, never through a proxy.
                    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        shell = subprocess.Popen(["bash", "-c", script(chosen, base_url)], cwd=shim.parents[2],
                                 env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            shell.wait(timeout=SCRIPT_SECONDS)
        except subprocess.TimeoutExpired:
            # The block that was running has no exit code: the check names it.
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
        yield chosen, {b.index: read_outcome(out, b.index) for b in chosen}
    finally:
        if service.poll() is None:
            service.terminate()  # SIGTERM: the service stops its embedded server on the way out
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(timeout=10)
        log.close()
        stop_postgres(data_dir / "pgdata")
        shutil.rmtree(workdir, ignore_errors=True)


def test_every_readme_block_runs_and_answers_as_shown(
    readme_run: tuple[list[Block], dict[int, Outcome]],
) -> None:
    """Run the README's sh blocks in order; each answers as the README shows."""
    chosen, outcomes = readme_run
    assert any(b.expected for b in chosen), "README.md shows no answer for the test to check"
    failures = []
    for block in chosen:
        outcome = outcomes.get(block.index)
        problem = check(block, outcome)
        if problem is not None:
            # The first failure in full, with the block's output; the ones after it are
            # often its consequences, so one line each.
            detail = f"{block.name()}: {problem}"
            if failures:
                detail = detail[:300]
            elif outcome is not None:
                detail += f"\n--- its stdout ---\n{outcome.stdout[-1500:]}" \
                          f"\n--- its stderr ---\n{outcome.stderr[-1500:]}"
            failures.append(detail)
    assert not failures, "the README drifted from the product:\n" + "\n".join(failures)


# --- the convention itself (no service) --------------------------------------------------

SAMPLE = """# Title

## Steps

<!-- not run: needs docker -->
```sh
CSPERF_BOOTSTRAP_ADMIN_KEY=csk_x make run
```

<!-- eventually: a read model -->

```sh
curl -s $API/thing
```

```http
HTTP/1.1 200 OK

{"items": [{"id": "b"}, {"id": "a…"}]}
```

```sh
echo hello
```

Some words.

```text
hello
```
"""


def test_the_convention_reads_blocks_markers_and_expected_answers() -> None:
    """Parse run blocks, their not-run reasons and the answers that follow them."""
    blocks = parse(SAMPLE)
    chosen = run_blocks(blocks)
    assert [b.text for b in chosen] == ["curl -s $API/thing", "echo hello"]
    assert chosen[0].expected is not None and chosen[0].expected.lang == "http"
    assert chosen[1].expected is None  # prose between: the text block is not its answer
    assert blocks[0].skip_reason == "needs docker"
    assert chosen[0].eventually and not chosen[1].eventually
    assert service_variables(blocks) == {"CSPERF_BOOTSTRAP_ADMIN_KEY": "csk_x"}
    assert "README.md line 12 (## Steps)" in chosen[0].name()


def test_a_drifted_answer_fails_naming_what_differs() -> None:
    """A status, field, list or line that differs from the README is a failure that says so."""
    block = run_blocks(parse(SAMPLE))[0]
    good = Outcome(rc=0, stdout="", stderr="",
                   curls=[(200, {}, '{"items": [{"id": "ab", "n": 1}, {"id": "b"}]}')])
    assert check(block, good) is None
    wrong_status = Outcome(rc=0, stdout="", stderr="", curls=[(404, {}, "{}")])
    assert "answered 404, the README shows 200" in (check(block, wrong_status) or "")
    wrong_list = Outcome(rc=0, stdout="", stderr="", curls=[(200, {}, '{"items": [{"id": "b"}]}')])
    assert "expected a list of 2" in (check(block, wrong_list) or "")
    wrong_value = Outcome(rc=0, stdout="", stderr="",
                          curls=[(200, {}, '{"items": [{"id": "x"}, {"id": "b"}]}')])
    assert "not all in" in (check(block, wrong_value) or "")
    failed_before = Outcome(rc=0, stdout="", stderr="",
                            curls=[(401, {}, "{}"), (200, {}, '{"items": []}')])
    assert "curl number 1 of the block answered 401" in (check(block, failed_before) or "")
    assert matches({"ok": True}, {"ok": 1}) is not None  # true is not 1


def test_shell_fences_must_follow_the_convention() -> None:
    """A ```bash block is neither run nor explained: the test refuses it."""
    with pytest.raises(AssertionError, match="must be fenced as `sh`"):
        run_blocks(parse("## S\n\n```bash\necho hi\n```\n"))
