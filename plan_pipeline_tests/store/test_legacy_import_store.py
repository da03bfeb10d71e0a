"""The store side of the legacy import: its unit-of-work statements and the legacy SQLite reader."""
from __future__ import annotations

import sqlite3
from datetime import datetime

import pandas as pd
import pytest

from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline.store.legacy_sqlite import (
    LegacyDatabaseError,
    LegacyDatabaseOpenError,
    MissingVersionsTable,
    is_sqlite_file,
    version_headers,
    version_rows,
)
from plan_pipeline.store.repository import prepare_kpi_level

T0 = datetime(2026, 1, 2, 3, 4, 5)
T1 = datetime(2026, 1, 2, 3, 4, 7, 500000)


def _kpis(value: float) -> pd.DataFrame:
    return pd.DataFrame({"category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"],
                         "bucket_key": ["total"], "value": [value], "unit": ["ratio"]})


def _write_version(tx, vid: str, *, value: float, replace: bool, params=None) -> int:
    existing = tx.version_status_source(vid)
    if existing is not None:
        tx.clear_imported_version(vid)
    tx.write_imported_version_row(vid, params=params or PlanningParameters(), status="imported", read_only=True,
                                  note="[legacy output folder]", source="legacy:/x", created_at=T0,
                                  updated_at=T1, replace=replace)
    written = tx.write_imported_levels(vid, [prepare_kpi_level("report", _kpis(value), source="legacy_backfill")],
                                       "run-1", T1)
    tx.insert_imported_artifacts(vid, {"b.json": "[2]", "a.json": "[1]"}, "legacy:/x", T1)
    return written


@pytest.mark.both_backends
def test_imported_version_statements_commit_together_or_not_at_all(store: PlanStore):
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        _write_version(tx, "v1", value=0.5, replace=False)
        raise RuntimeError("boom")
    assert store.find_version("v1") is None

    with store.transaction() as tx:
        assert _write_version(tx, "v1", value=0.5, replace=False) == 1
    record = store.get_version("v1")
    assert (record.status, record.read_only, record.input_set, record.source) == ("imported", True, None, "legacy:/x")
    assert (record.created_at, record.updated_at) == (T0, T1)
    assert store.read_kpis("v1", "report")["value"].tolist() == [0.5]
    assert store.get_artifact("v1", "a.json") == [1] and store.get_artifact("v1", "b.json") == [2]

    with store.snapshot() as tx:
        assert tx.version_status_source("v1") == ("imported", "legacy:/x")
        assert tx.version_status_source("nope") is None

    # replacing: plan rows and artifacts are swapped, the row updated (here: a preset)
    with store.transaction() as tx:
        _write_version(tx, "v1", value=0.75, replace=True, params=PlanningParameters(preset="blend"))
    assert store.get_version("v1").params.preset == "blend"
    assert store.read_kpis("v1", "report")["value"].tolist() == [0.75]
    assert store.get_artifact("v1", "a.json") == [1]


@pytest.mark.both_backends
def test_legacy_import_run_rows(store: PlanStore):
    with store.transaction() as tx:
        tx.start_legacy_import_run("r1", "/src", False, T0)
        tx.start_legacy_import_run("r2", "/src", True, T1)
    with store.transaction() as tx:
        assert tx.running_legacy_import_runs() == ["r1", "r2"]
        tx.finish_legacy_import_run("r2", status="success", imported=3, skipped=1, failed=0, rows_written=42,
                                    finished_at=T1, duration_ms=7, message="done")
        tx.fail_legacy_import_run("r1", "killed", datetime(2026, 1, 2, 3, 4, 6))
        tx.fail_legacy_import_run("r2", "too late", T1)  # not running any more: untouched
    with store.transaction() as tx:
        assert tx.running_legacy_import_runs() == []
        r1, r2 = tx.legacy_import_run("r1"), tx.legacy_import_run("r2")
        assert tx.legacy_import_run("r3") is None
        assert tx.legacy_import_runs(1)["run_id"].tolist() == ["r2"]
    assert (r1["status"], r1["message"], r1["duration_ms"]) == ("failed", "killed", 1000)
    assert (r2["status"], r2["versions_imported"], r2["versions_skipped"], r2["rows_written"], r2["dry_run"],
            r2["message"]) == ("success", 3, 1, 42, True, "done")


def _legacy_db(path, *, versions: bool = True, tables: tuple[str, ...] = ("plan_series", "plan_artifacts")):
    con = sqlite3.connect(path)
    if versions:
        con.execute("CREATE TABLE plan_versions (version_id TEXT, created_at INTEGER, status TEXT)")
        con.executemany("INSERT INTO plan_versions VALUES (?, ?, ?)", [("b", 2, "draft"), ("a", 5, None), ("c", 2, "x")])
    if "plan_series" in tables:
        con.execute("CREATE TABLE plan_series (version_id TEXT, level TEXT, demand REAL)")
        con.executemany("INSERT INTO plan_series VALUES (?, ?, ?)", [("a", "det", 3.0), ("b", "det", 9.0), ("a", "mrp", 1.0)])
    if "plan_artifacts" in tables:
        con.execute("CREATE TABLE plan_artifacts (version_id TEXT, name TEXT, json_text)")
        con.executemany("INSERT INTO plan_artifacts VALUES (?, ?, ?)",
                        [("a", "z.json", b'{"k": 1}'), ("a", "m.json", "[]"), ("b", "q.json", "{}")])
    con.commit()
    con.close()
    return path


def test_legacy_sqlite_reader(tmp_path):
    db = _legacy_db(tmp_path / "legacy.db")
    assert is_sqlite_file(db) and not is_sqlite_file(tmp_path / "missing.db")
    assert version_headers(db, ("version_id", "status", "note")) == [("b", "draft", None), ("c", "x", None),
                                                                     ("a", None, None)]
    rows = version_rows(db, "a")
    assert rows.missing_tables == ["plan_kpis"] and rows.kpis is None
    assert rows.series[["level", "demand"]].values.tolist() == [["det", 3.0], ["mrp", 1.0]]
    assert rows.artifacts == {"m.json": "[]", "z.json": '{"k": 1}'}
    with pytest.raises(ValueError, match="not a plain identifier"):
        version_headers(db, ("version_id; DROP TABLE plan_versions",))


def test_legacy_sqlite_reader_errors(tmp_path):
    with pytest.raises(MissingVersionsTable, match="table plan_versions is missing"):
        version_headers(_legacy_db(tmp_path / "no_versions.db", versions=False), ("version_id",))
    not_db = tmp_path / "not.db"
    not_db.write_text("hello, this is not a database at all" * 10)
    with pytest.raises(LegacyDatabaseError, match="not a database") as caught:
        version_rows(not_db, "a")
    assert not isinstance(caught.value, LegacyDatabaseOpenError)
    with pytest.raises(LegacyDatabaseOpenError, match="unable to open database file"):
        version_rows(tmp_path / "missing" / "x.db", "a")


@pytest.mark.both_backends
def test_the_reference_legacy_folder_imports_alike_on_both_backends(store: PlanStore, reference_dir, tmp_path):
    """The whole legacy import (operations/legacy_backfill.py through the unit of work) into the
    backend's store and into a DuckDB file: the same versions, levels, rows, KPIs and artifacts."""
    from plan_pipeline.operations.legacy_backfill import run_legacy_backfill

    twin = PlanStore(tmp_path / "twin.duckdb")
    stores = [store, twin] if store.is_postgres else [store]
    for each in stores:
        run_legacy_backfill(each, reference_dir / "legacy")
    first = stores[0]
    versions = [v.version_id for v in first.list_versions()]
    assert versions == ["legacy-default", "legacy-weekly", "legacy-tight-detnear", "legacy-dec2"]
    assert all(v.status == "imported" and v.read_only for v in first.list_versions())
    assert first.read_series("legacy-default", "det")["demand"].sum() > 0
    for other in stores[1:]:
        assert [v.version_id for v in other.list_versions()] == versions
        for vid in versions:
            assert other.get_version(vid).params == first.get_version(vid).params, vid
            assert other.series_levels(vid) == first.series_levels(vid), vid
            for level in first.series_levels(vid):
                pd.testing.assert_frame_equal(other.read_series(vid, level), first.read_series(vid, level),
                                              check_dtype=False, obj=f"{vid} {level}")
            assert other.read_kpis(vid, "report")["value"].tolist() == first.read_kpis(vid, "report")["value"].tolist()
            assert other.get_artifact(vid, "report.csv") == first.get_artifact(vid, "report.csv")
        counts = {t: n for t, n in other.table_counts().items() if t not in ("plan_write_log", "schema_migrations")}
        assert counts == {t: n for t, n in first.table_counts().items() if t not in ("plan_write_log", "schema_migrations")}
