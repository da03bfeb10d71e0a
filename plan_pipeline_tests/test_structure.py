"""The package's shape, checked on every run (docs/architecture.md, "Who may import whom"):

* only ``plan_pipeline/store`` speaks SQL or imports a database driver;
* nothing outside the store imports a private (``_name``) store name;
* each layer imports only the layers below it (planning < store < inputs < operations/exports
  < orchestration < cli; the Dagster layer never imports the code location's root
  ``plan_pipeline.definitions``; nothing below orchestration imports Dagster);
* no import cycle among ``plan_pipeline`` modules (module- and function-level imports).

The facts are read from the source with :mod:`ast`, so a failure names file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plan_pipeline"
SQL_METHODS = {"execute", "executemany", "sql", "query"}
DRIVERS = {"duckdb", "sqlite3", "psycopg", "psycopg2", "sqlalchemy"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"


def _imports(name: str, path: Path):
    """(imported module or name, the ast node) for every import in the module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            for alias in node.names:
                yield base, alias.name, node


def _in_store(name: str) -> bool:
    return name == "plan_pipeline.store" or name.startswith("plan_pipeline.store.")


def test_only_the_store_speaks_sql():
    offenders = []
    for name, path in MODULES.items():
        if _in_store(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS):
                offenders.append(f"{_where(path, node)} calls .{node.func.attr}(...)")
        for module, _, node in _imports(name, path):
            if module.split(".")[0] in DRIVERS:
                offenders.append(f"{_where(path, node)} imports the database driver {module}")
    assert offenders == [], "SQL outside plan_pipeline/store:\n" + "\n".join(offenders)


def test_no_private_store_names_outside_the_store():
    offenders = [
        f"{_where(path, node)} imports {module}.{alias}"
        for name, path in MODULES.items() if not _in_store(name)
        for module, alias, node in _imports(name, path)
        if _in_store(module) and ((alias or "").startswith("_") or any(p.startswith("_") for p in module.split(".")))
    ]
    assert offenders == [], "\n".join(offenders)


#: Each layer (by module prefix) and the layers it may not import: a layer imports only those
#: below it (docs/architecture.md, "Layers, and who may import whom").
LAYERS = [
    ("plan_pipeline.planning", ("dagster", "plan_pipeline.store", "plan_pipeline.inputs", "plan_pipeline.operations",
                                "plan_pipeline.exports", "plan_pipeline.orchestration", "plan_pipeline.cli",
                                "plan_pipeline.definitions")),
    ("plan_pipeline.store", ("dagster", "plan_pipeline.inputs", "plan_pipeline.operations", "plan_pipeline.exports",
                             "plan_pipeline.orchestration", "plan_pipeline.cli", "plan_pipeline.definitions")),
    ("plan_pipeline.inputs", ("dagster", "plan_pipeline.operations", "plan_pipeline.exports",
                              "plan_pipeline.orchestration", "plan_pipeline.cli", "plan_pipeline.definitions")),
    ("plan_pipeline.operations", ("dagster", "plan_pipeline.orchestration", "plan_pipeline.cli",
                                  "plan_pipeline.definitions")),
    ("plan_pipeline.exports", ("dagster", "plan_pipeline.orchestration", "plan_pipeline.cli",
                               "plan_pipeline.definitions")),
    ("plan_pipeline.orchestration", ("plan_pipeline.api", "plan_pipeline.cli", "plan_pipeline.definitions")),
    # Deployment starts processes of the layers below (servers, workers): beside the CLI and the API.
    ("plan_pipeline.deployment", ("plan_pipeline.cli", "plan_pipeline.api", "plan_pipeline.definitions")),
    # The Plans API sits beside the CLI: over the store, planning and orchestration, never the CLI.
    ("plan_pipeline.api", ("plan_pipeline.cli", "plan_pipeline.definitions")),
]
# Nothing below the API layer imports it; nothing below deployment (up to orchestration) imports that.
LAYERS = [(layer, (*forbidden, "plan_pipeline.api") if layer != "plan_pipeline.api" and
           "plan_pipeline.api" not in forbidden else forbidden) for layer, forbidden in LAYERS]
_BELOW_DEPLOYMENT = ("plan_pipeline.planning", "plan_pipeline.store", "plan_pipeline.inputs", "plan_pipeline.operations",
                     "plan_pipeline.exports", "plan_pipeline.orchestration")
LAYERS = [(layer, (*forbidden, "plan_pipeline.deployment") if layer in _BELOW_DEPLOYMENT else forbidden)
          for layer, forbidden in LAYERS]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_layers_import_downwards_only():
    offenders = []
    for name, path in MODULES.items():
        for module, alias, node in _imports(name, path):
            target = f"{module}.{alias}" if alias and f"{module}.{alias}" in MODULES else module
            for layer, forbidden in LAYERS:
                if _within(name, layer) and any(_within(target, f) for f in forbidden):
                    offenders.append(f"{_where(path, node)}: {layer} imports {target}")
    assert offenders == [], "\n".join(offenders)


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, alias, _ in _imports(name, path):
            target = f"{module}.{alias}" if alias and f"{module}.{alias}" in MODULES else module
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package_only(component: list[str]) -> bool:
    """A package and its own children (``__init__`` re-exports) are not a cycle of concepts."""
    head = min(component, key=len)
    return all(member == head or member.startswith(head + ".") for member in component)


def test_no_import_cycles():
    cycles = [c for c in _cycles(_import_graph()) if not _package_only(c)]
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_see_what_they_check():
    """Guard against a check that cannot fail: the scan finds the store's own SQL and a cycle."""
    store_calls = sum(
        1 for name, path in MODULES.items() if _in_store(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute")
    assert store_calls > 20
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert len(_import_graph()["plan_pipeline.definitions"]) > 3
    assert any(_within(m, layer) for m in MODULES for layer, _ in LAYERS[:1])
    assert all(any(_within(m, layer) for m in MODULES) for layer, _ in LAYERS)
