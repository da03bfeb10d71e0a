"""Code versions are kept per process but follow the files: a changed source changes its hash and
the planning modules it is found to import (the cache is keyed on each file's size and mtime)."""
from __future__ import annotations

import os

from plan_pipeline.orchestration.plan import code_versions


def _touch_later(path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a new mtime even on a coarse clock


def test_a_changed_source_changes_its_hash_and_imports(tmp_path, monkeypatch):
    planning = tmp_path / "planning"
    planning.mkdir()
    (planning / "a.py").write_text("from plan_pipeline.planning.b import x\n", encoding="utf-8")
    (planning / "b.py").write_text("x = 1\n", encoding="utf-8")
    (planning / "c.py").write_text("y = 2\n", encoding="utf-8")
    monkeypatch.setattr(code_versions, "_root", lambda: tmp_path)

    first = code_versions.source_hash(["planning/a.py", "planning/b.py"])
    assert code_versions._planning_imports("a") == {"b"}
    assert code_versions.source_hash(["planning/a.py", "planning/b.py"]) == first  # read from the cache

    _touch_later(planning / "a.py", "import plan_pipeline.planning.c\n")
    assert code_versions._planning_imports("a") == {"c"}
    second = code_versions.source_hash(["planning/a.py", "planning/b.py"])
    assert second != first

    _touch_later(planning / "b.py", "x = 3\n")  # same size, new content and mtime
    assert code_versions.source_hash(["planning/a.py", "planning/b.py"]) not in (first, second)
    assert code_versions.source_hash(["planning"]) != code_versions.source_hash(["planning/a.py"])
