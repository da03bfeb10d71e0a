"""``plan-pipeline export``'s target folder: new, empty, or an earlier export of the same version
(replaced whole, nothing stale left); anything else is refused and left untouched."""
from __future__ import annotations

import json

import pytest

import plan_pipeline.exports.export as export_module
from plan_pipeline.exports.export import EXPORT_TABLES, MANIFEST, export_version
from plan_pipeline.store import PlanStoreError
from plan_pipeline_tests.project_homes import ProjectHome

from .cli_helpers import build_demo_home, run_main, use_project_copy

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture(scope="module")
def template(tmp_path_factory, homes):
    return build_demo_home(tmp_path_factory.mktemp("export-target"), homes)


@pytest.fixture
def project(template, tmp_path, monkeypatch, home_copy) -> ProjectHome:
    """The test's private copy of the template home (the CLI pointed at it)."""
    return use_project_copy(template, tmp_path, monkeypatch, home_copy)


@pytest.fixture
def home(project):
    return project.home


def export(home, version, fmt, out) -> int:
    return run_main(["--home", str(home), "export", version, "--format", fmt, "--out", str(out)])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reexport_of_the_same_version_replaces_the_earlier_export_whole(home, tmp_path, capsys):
    out = tmp_path / "exports" / "demo"
    assert export(home, "demo", "csv", out) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, *(f"{t}.csv" for t in EXPORT_TABLES)])
    assert export(home, "demo", "reference", out) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["version_id"] == "demo" and manifest["export_format"] == "reference"
    # exactly the new export: no csv file of the first one is left behind
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, *(f["file"] for f in manifest["files"])])
    assert not any(p.suffix == ".csv" and p.stem in EXPORT_TABLES for p in out.iterdir())
    # nothing staged beside it
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo"]
    assert "error" not in capsys.readouterr().err


def test_folder_holding_another_versions_export_is_refused_and_kept(home, tmp_path, capsys):
    out = tmp_path / "shared-folder"
    assert export(home, "demo", "json", out) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert export(home, "demo-2", "json", out) == 1
    err = capsys.readouterr().err
    assert err == (f"error: export folder {out} holds an export of plan version 'demo', not 'demo-2': "
                   "choose a new or empty folder\n")
    assert snapshot(out) == before


def test_folder_with_other_files_is_refused_and_kept(home, tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine\n")
    assert export(home, "demo", "csv", out) == 1
    assert (f"error: export folder {out} is not empty and holds no plan-pipeline export (no manifest.json of one): "
            "choose a new or empty folder") in capsys.readouterr().err
    assert snapshot(out) == {"todo.txt": b"mine\n"}
    # an earlier export of the same version plus a file of someone else's: refused too
    target = tmp_path / "mixed"
    assert export(home, "demo", "csv", target) == 0
    (target / "readme.md").write_text("kept\n")
    before = snapshot(target)
    capsys.readouterr()
    assert export(home, "demo", "csv", target) == 1
    assert (f"error: export folder {target} holds files that are not part of its export of 'demo' (readme.md): "
            "move them away or choose a new folder") in capsys.readouterr().err
    assert snapshot(target) == before


def test_empty_folder_is_filled_and_a_file_target_is_refused(home, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert export(home, "demo", "parquet", out) == 0
    assert (out / MANIFEST).is_file() and (out / "plan_series.parquet").is_file()
    target = tmp_path / "a-file"
    target.write_text("x")
    capsys.readouterr()
    assert export(home, "demo", "csv", target) == 1
    assert capsys.readouterr().err == (f"error: export target {target} is a file, not a folder: "
                                       "choose a new or empty folder\n")
    assert target.read_text() == "x"


def test_a_failed_reexport_keeps_the_earlier_export(project, tmp_path, monkeypatch):
    store = project.store
    out = tmp_path / "kept"
    export_version(store, "demo", "csv", out, record_event=False)
    before = snapshot(out)

    def broken(table, path):
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "_write_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        export_version(store, "demo", "csv", out, record_event=False)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_refusal_happens_before_anything_is_written(project, tmp_path):
    store = project.store
    out = tmp_path / "other"
    export_version(store, "demo-2", "csv", out, record_event=False)
    events_before = len(store.read_override_events("demo"))
    with pytest.raises(PlanStoreError, match="holds an export of plan version 'demo-2', not 'demo'"):
        export_version(store, "demo", "csv", out)
    assert len(store.read_override_events("demo")) == events_before  # no export event for a refused export
    assert json.loads((out / MANIFEST).read_text())["version_id"] == "demo-2"
