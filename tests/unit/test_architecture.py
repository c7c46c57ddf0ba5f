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


#: What each layer must never import: the layers above it. Layers import downwards only:
#: domain <- store, projections <- queries <- commands <- api, ui.
UPWARDS = {
    "store": ("api", "ui", "commands", "queries"),
    "projections": ("api", "ui", "commands", "queries"),
    "queries": ("api", "ui", "commands"),
    "commands": ("api", "ui"),
}


def _service_imports(path: Path, root: Path = SERVICE.parent) -> set[str]:
    """Return the service modules a file imports, relative imports resolved."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            # ``from service import api`` names a package in the alias, not the module.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "service" or n.startswith("service.")}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _upward_imports(layer: str, forbidden: tuple[str, ...]) -> set[str]:
    return {
        f"{path.relative_to(SERVICE)} imports {name}"
        for path in (SERVICE / layer).rglob("*.py")
        for name in _service_imports(path)
        if _layer_of(name) in forbidden
    }


def test_domain_imports_only_domain() -> None:
    offenders = {
        f"{path.relative_to(SERVICE)} imports {name}"
        for path in (SERVICE / "domain").rglob("*.py")
        for name in _service_imports(path)
        if _layer_of(name) != "domain"
    }
    assert not offenders


def test_layers_import_downwards_only() -> None:
    offenders = set().union(*(_upward_imports(layer, above)
                              for layer, above in UPWARDS.items()))
    assert not offenders


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The walk itself must find an arrow back up, or the test above proves nothing.
    layer = tmp_path / "service" / "queries"
    layer.mkdir(parents=True)
    (layer / "x.py").write_text("from service.commands import cycles\nfrom ..api import deps\n")
    found = _service_imports(layer / "x.py", root=tmp_path)
    assert {_layer_of(n) for n in found} >= {"commands", "api"}


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(SERVICE.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def test_no_import_circles_in_the_layers() -> None:
    # Type-only imports count too: a circle there is the same tangle to a reader.
    layers = ("domain", "store", "projections", "queries", "commands", "api", "ui")
    modules = {_module_name(p): p for layer in layers for p in (SERVICE / layer).rglob("*.py")}
    graph = {name: {m for m in _service_imports(path) if m in modules and m != name}
             for name, path in modules.items()}
    circles = set()
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.add(" -> ".join(sorted(trail)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert not circles
