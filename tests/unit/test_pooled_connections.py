"""Pooled connections go back to the pool without a reset statement
(service/store/database.py), so no service code may leave session state on one: session
advisory locks and LISTEN belong on the dedicated connections of ``connect_single``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"

#: SQL that outlives its transaction on the session that ran it: statements that start so
#: (keywords in capitals, as all SQL here is written, so prose does not match), and calls
#: that are unmistakable anywhere in a string. ``set_config(name, value, true)`` is local to its
#: transaction (ingestion's plan mode), like ``SET LOCAL``; with ``false`` it is the session's.
#: A temporary table that empties itself at every commit (ON COMMIT DELETE ROWS: metric
#: ingestion's staging table) carries nothing from one borrower to the next.
STARTS = re.compile(r"(SET\s+(?!LOCAL\b)|LISTEN\b|PREPARE\b"
                    r"|CREATE\s+TEMP(ORARY)?\b(?!.*ON\s+COMMIT\s+DELETE\s+ROWS)|DECLARE\b.*"
                    r"\bWITH\s+HOLD\b)", re.DOTALL)
CALLS = re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\("
                   r"|\bset_config\s*\((?:[^()]|\([^()]*\))*,\s*false\s*\)", re.IGNORECASE)


def _strings(tree: ast.AST) -> list[str]:
    """Return every string literal, an f-string as its literal parts around {}."""
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                                 for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                id(node) not in parts):
            found.append(node.value)
    return found


def _session_state_sql(path: Path) -> list[str]:
    return [text.strip()[:80] for text in _strings(ast.parse(path.read_text()))
            if STARTS.match(text.strip()) or CALLS.search(text)]


def _uses_dedicated_connections(path: Path) -> bool:
    return "connect_single()" in path.read_text()


def test_session_state_only_on_dedicated_connections() -> None:
    offenders = {
        f"{path.relative_to(SERVICE)}: {sql}"
        for path in SERVICE.rglob("*.py")
        if not _uses_dedicated_connections(path)
        for sql in _session_state_sql(path)
    }
    assert not offenders


def test_the_check_sees_session_state(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'A = "SELECT pg_advisory_lock(1)"\nB = "SET statement_timeout = 0"\n'
        'C = "LISTEN events"\nD = "SET LOCAL lock_timeout = 0"\n'
        'E = "SELECT pg_advisory_xact_lock(1)"\n'
        'F = "SELECT set_config(\'work_mem\', upper(\'64mb\'), false)"\n'
        'G = "SELECT set_config(\'plan_cache_mode\', NULL, true)"\n'
    )
    assert _session_state_sql(sample) == [
        "SELECT pg_advisory_lock(1)", "SET statement_timeout = 0", "LISTEN events",
        "SELECT set_config('work_mem', upper('64mb'), false)"]
