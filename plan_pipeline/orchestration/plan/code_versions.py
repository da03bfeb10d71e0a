"""Code versions: short hashes of the source files that decide plan numbers.

One hashing rule (:func:`source_hash`) for two uses:

* :func:`code_version` hashes every plan-deciding source (``CODE_SOURCES``): the replan schedule
  (:mod:`plan_pipeline.orchestration.replanning.stale_drafts`) compares it with the one recorded
  when a version was planned, and ``published_plan`` carries it as its Dagster ``code_version``.
* :func:`planning_code_version` hashes the planning modules one stage runs plus every
  ``plan_pipeline.planning`` module they import (transitively, read from their source): the
  stage asset's Dagster ``code_version``. After a change to, say, ``planning/capacity.py`` the UI
  flags the capacity assets and everything downstream of them as stale ("code version changed"),
  not the aggregate and detail plans.

Hashes are read from the files when called (definitions are built once per code location load).
"""
from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import plan_pipeline

#: The sources that decide plan numbers (relative to the package), hashed by :func:`code_version`.
CODE_SOURCES = ("planning", "orchestration/plan/assets", "orchestration/plan/io_managers.py", "store/layouts.py")
PLANNING_PACKAGE = "plan_pipeline.planning"


def _root() -> Path:
    return Path(plan_pipeline.__file__).resolve().parent


def source_hash(sources: Iterable[str]) -> str:
    """16 hex digits over the files (a folder: its ``*.py`` files) named relative to the package."""
    root = _root()
    digest = hashlib.sha256()
    for source in sources:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def code_version() -> str:
    """Hash of every plan-deciding source file (read now, not cached: a new run imports them anew)."""
    return source_hash(CODE_SOURCES)


def _planning_imports(module: str) -> set[str]:
    """The ``plan_pipeline.planning`` modules ``module`` (a planning module name) imports."""
    tree = ast.parse((_root() / "planning" / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith(PLANNING_PACKAGE + "."):
                sub = name[len(PLANNING_PACKAGE) + 1:].split(".")[0]
                if (_root() / "planning" / f"{sub}.py").is_file():
                    found.add(sub)
    return found


@cache
def planning_closure(modules: tuple[str, ...]) -> tuple[str, ...]:
    """``modules`` (planning module names, e.g. ``capacity``) and every planning module they import."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(_planning_imports(module) - seen)
    return tuple(sorted(seen))


def planning_code_version(*modules: str) -> str:
    """The code version of a stage that runs these planning modules (see the module docstring)."""
    return source_hash(f"planning/{module}.py" for module in planning_closure(tuple(sorted(modules))))
