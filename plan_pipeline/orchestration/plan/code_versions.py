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
What a file contributes (its bytes, the planning modules it imports) is kept per process, keyed
on the file's path, size and modification time: a file changed on disk is read and parsed again,
an unchanged one is not (building the definitions parsed every planning module once per stage,
about 80 ``ast`` parses and 1 s per code location load; now each module once).
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


@cache
def _root() -> Path:
    return Path(plan_pipeline.__file__).resolve().parent


def _stat_key(file: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of ``file``; None if it is not a file."""
    try:
        stat = file.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns) if file.is_file() else None


@cache
def _file_bytes(file: Path, _stat: tuple[int, int]) -> bytes:
    """The bytes of ``file`` as of ``_stat`` (the cache key: a changed file is read again)."""
    return file.read_bytes()


def source_hash(sources: Iterable[str]) -> str:
    """16 hex digits over the files (a folder: its ``*.py`` files) named relative to the package."""
    root = _root()
    digest = hashlib.sha256()
    for source in sources:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            stat = _stat_key(file)
            if stat is not None:
                digest.update(str(file.relative_to(root)).encode() + b"\0" + _file_bytes(file, stat) + b"\0")
    return digest.hexdigest()[:16]


def code_version() -> str:
    """Hash of every plan-deciding source file (read now, not cached: a new run imports them anew)."""
    return source_hash(CODE_SOURCES)


def _planning_imports(module: str) -> set[str]:
    """The ``plan_pipeline.planning`` modules ``module`` (a planning module name) imports."""
    file = _root() / "planning" / f"{module}.py"
    stat = _stat_key(file)
    if stat is None:
        raise FileNotFoundError(file)
    return set(_parsed_planning_imports(file, stat))


@cache
def _parsed_planning_imports(file: Path, _stat: tuple[int, int]) -> frozenset[str]:
    """What :func:`_planning_imports` finds in ``file`` as of ``_stat`` (the cache key)."""
    tree = ast.parse(_file_bytes(file, _stat).decode("utf-8"))
    planning = file.parent
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
                if (planning / f"{sub}.py").is_file():
                    found.add(sub)
    return frozenset(found)


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
