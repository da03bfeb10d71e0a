"""Row guard (PLANS_DB_MAX_ROWS): archive, then remove the oldest unprotected versions until
plan_series fits; never approved versions, versions with a run, the version just written."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from plan_pipeline.operations.retention import (
    MAX_ROWS_ENV,
    VERSION_TABLES,
    enforce_row_guard,
    restore_archived_version,
    row_guard_limit,
    verify_version_archive,
)
from plan_pipeline.store import PlanStoreError

from ..conftest import BUNDLED_SAMPLE
from .ops_helpers import (
    all_rows,
    build_materialized_home,
    make_version,
    run_ops_cli,
    set_created_at,
    use_home_copy,
    version_rows,
)

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

MATERIALIZED = ("a", "b", "c", "d")
NOW = datetime(2026, 6, 15, 12, 0)


@pytest.fixture(scope="module")
def template(tmp_path_factory, homes):
    """A home with four materialized versions (same inputs, so the same number of plan rows each)."""
    return build_materialized_home(homes, tmp_path_factory.mktemp("row_guard"), BUNDLED_SAMPLE, MATERIALIZED)


@pytest.fixture
def guarded(template, tmp_path, monkeypatch, home_copy):
    """a (approved) < e (no plan rows) < b < c < d by created_at."""
    home, env = use_home_copy(template, tmp_path / "home", monkeypatch, home_copy)
    store = env.store
    make_version(store, BUNDLED_SAMPLE, "e")
    start = datetime(2026, 1, 1)
    for i, vid in enumerate(["a", "e", "b", "c", "d"]):
        set_created_at(store, vid, start + timedelta(days=i))
    set_created_at(store, "a", start, status="approved")
    yield store
    home.check_no_duckdb_file()


def _series_rows(store, vid: str) -> int:
    return len(version_rows(store, vid, ["plan_series"])["plan_series"])


def test_limit_comes_from_the_environment_and_nonsense_is_an_error():
    assert row_guard_limit({}) is None
    assert row_guard_limit({MAX_ROWS_ENV: ""}) is None
    assert row_guard_limit({MAX_ROWS_ENV: "0"}) is None
    assert row_guard_limit({MAX_ROWS_ENV: " 5000000 "}) == 5_000_000
    for bad in ("abc", "-1", "1.5", "1e6"):
        with pytest.raises(PlanStoreError, match=f"{MAX_ROWS_ENV} must be a whole number .*got '{bad}'"):
            row_guard_limit({MAX_ROWS_ENV: bad})
    with pytest.raises(PlanStoreError, match="max_rows"):
        enforce_row_guard(None, max_rows=-3)


def test_guard_removes_the_oldest_unprotected_versions_until_within_the_limit(guarded, tmp_path):
    store = guarded
    archive = tmp_path / "archive"
    per_version = _series_rows(store, "b")
    assert per_version > 0 and all(_series_rows(store, v) == per_version for v in MATERIALIZED)
    total = 4 * per_version
    expected_b = version_rows(store, "b", VERSION_TABLES)
    before = all_rows(store)

    dry = enforce_row_guard(store, max_rows=3 * per_version, protect={"d"}, active_versions={"c": "run-c"},
                            archive_dir=archive, now=NOW, dry_run=True)
    assert dry.removed_version_ids == ["b"] and dry.rows_after == 3 * per_version
    assert all_rows(store) == before and not archive.exists()

    report = enforce_row_guard(store, max_rows=3 * per_version, protect={"d"}, active_versions={"c": "run-c"},
                               archive_dir=archive, now=NOW)
    # a is approved, e has no plan rows: b is the oldest that may go, and one is enough
    assert report.removed_version_ids == ["b"]
    assert (report.rows_before, report.rows_after, report.within_limit) == (total, 3 * per_version, True)
    assert store.table_counts()["plan_series"] == 3 * per_version
    assert {v.version_id for v in store.list_versions()} == {"a", "c", "d", "e"}
    assert report.archives == [str(archive / "b")]
    manifest = verify_version_archive(archive / "b", "b")
    assert manifest["operation"] == "row_guard"
    assert manifest["reasons"] == [f"row guard: plan_series held {total} rows, {MAX_ROWS_ENV} = {3 * per_version}"]
    assert report.log_line() == (f"row guard: plan_series {total} rows, limit {3 * per_version}; "
                                 f"removed 1 version(s) (b) -> {3 * per_version} rows")
    # within the limit now: a second call removes nothing
    assert enforce_row_guard(store, max_rows=3 * per_version, archive_dir=archive, now=NOW).versions == []
    restore_archived_version(store, "b", archive)
    assert version_rows(store, "b", VERSION_TABLES) == expected_b


def test_guard_stops_when_only_protected_versions_are_left_and_says_so(guarded, tmp_path):
    store = guarded
    per_version = _series_rows(store, "b")
    report = enforce_row_guard(store, max_rows=per_version, protect={"d"}, active_versions={"c": "run-c"},
                               archive_dir=tmp_path / "a", now=NOW)
    assert report.removed_version_ids == ["b"]
    assert (report.rows_after, report.within_limit) == (3 * per_version, False)
    assert report.protected == [
        {"version_id": "a", "status": "approved", "plan_series_rows": per_version,
         "reason": "approved versions are never removed"},
        {"version_id": "c", "status": "draft", "plan_series_rows": per_version,
         "reason": "run run-c is in progress for this version"},
        {"version_id": "d", "status": "draft", "plan_series_rows": per_version,
         "reason": "protected by the caller (the version just written)"},
    ]
    assert report.log_line().endswith("(still over the limit: the rest is protected)")
    assert "kept version c" in "\n".join(report.lines())


def test_row_guard_counts_plan_series_rows_not_versions(guarded, tmp_path):
    """Deviation: the reference's PLANS_DB_MAX_ROWS limited the number of versions. Five
    versions under a limit of 5 would be untouched there; here 5 means 5 plan_series rows."""
    store = guarded
    assert len(store.list_versions()) == 5
    report = enforce_row_guard(store, max_rows=5, archive_dir=tmp_path / "a", now=NOW)
    assert report.removed_version_ids == ["b", "c", "d"]  # oldest first; a approved, e holds no plan rows
    assert store.table_counts()["plan_series"] == _series_rows(store, "a") > 5


def test_guard_off_opens_nothing(tmp_path, store_backend):
    from plan_pipeline.store import PlanStore

    if store_backend == "postgres":  # a database on a port nobody listens on: connecting would fail
        store = PlanStore.from_url("postgresql://nobody@127.0.0.1:1/missing")
    else:
        store = PlanStore(tmp_path / "missing.duckdb")
    report = enforce_row_guard(store, max_rows=0, archive_dir=tmp_path / "a")
    assert not report.enabled and report.within_limit and report.versions == []
    assert report.log_line() == f"row guard off ({MAX_ROWS_ENV} unset or 0)"
    assert not (tmp_path / "missing.duckdb").exists() and not (tmp_path / "a").exists()


def test_row_guard_cli_and_metadata(guarded, tmp_path, monkeypatch, capsys):
    import dagster as dg

    from plan_pipeline.orchestration.plan.assets.published_plan import row_guard_metadata

    store = guarded
    per_version = _series_rows(store, "b")
    archive = tmp_path / "archive"
    monkeypatch.setenv(MAX_ROWS_ENV, "lots")
    assert run_ops_cli(["row-guard", "--archive-dir", str(archive)]) == 1
    assert f"error: {MAX_ROWS_ENV} must be a whole number" in capsys.readouterr().err
    monkeypatch.delenv(MAX_ROWS_ENV)
    assert run_ops_cli(["row-guard"]) == 0
    assert capsys.readouterr().out.strip() == f"row guard off ({MAX_ROWS_ENV} unset or 0)"
    with pytest.raises(SystemExit):  # usage error
        run_ops_cli(["row-guard", "--max-rows", "-1"])
    capsys.readouterr()

    monkeypatch.setenv(MAX_ROWS_ENV, str(2 * per_version))
    assert run_ops_cli(["row-guard", "--archive-dir", str(archive), "--dry-run"]) == 0
    assert "would remove 2 version(s) (b, c)" in capsys.readouterr().out
    assert run_ops_cli(["row-guard", "--archive-dir", str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"removed version b (draft, created 2026-01-03 00:00:00): plan_series {per_version} rows -> " \
           f"{archive / 'b'}" in out
    assert {v.version_id for v in store.list_versions()} == {"a", "d", "e"}
    assert run_ops_cli(["restore-archived", "c", "--archive-dir", str(archive)]) == 0

    report = enforce_row_guard(store, max_rows=2 * per_version, protect={"c"}, archive_dir=archive, now=NOW)
    meta = row_guard_metadata(report)
    assert meta["row_guard_rows_before"] == dg.MetadataValue.int(3 * per_version)
    assert meta["row_guard_rows_after"] == dg.MetadataValue.int(2 * per_version)
    assert [v["version_id"] for v in meta["row_guard_versions_removed"].value] == ["d"]
    assert meta["row_guard_within_limit"] == dg.MetadataValue.bool(True)
