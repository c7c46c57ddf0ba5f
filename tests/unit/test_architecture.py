"""The layering rules of the architecture brief, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"
FORBIDDEN_IN_DOMAIN = ("fastapi", "starlette", "sqlalchemy", "asyncpg", "alembic", "httpx")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_no_framework_or_database() -> None:
    offenders = {
        f"{path.relative_to(SERVICE)}: {name}"
        for path in (SERVICE / "domain").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN_IN_DOMAIN or name.startswith("service.store")
        or name.startswith("service.api")
    }
    assert not offenders


def test_nothing_connects_at_import_time() -> None:
    # Module-level calls that would open a connection: create_pool/connect at top level.
    for path in SERVICE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Expr | ast.Assign) and isinstance(
                getattr(node, "value", None), ast.Await | ast.Call
            ):
                call = node.value
                text = ast.unparse(call)
                assert "create_pool" not in text and "connect(" not in text, (path, text)
