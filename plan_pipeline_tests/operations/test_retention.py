"""Retention and trim: each policy, dry run vs real run, archive + restore, in-progress versions, the job."""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from plan_pipeline.operations.retention import (
    VERSION_TABLES,
    RetentionPolicy,
    archive_and_remove_versions,
    list_archived_versions,
    months_before,
    restore_archived_version,
    trim_store,
    verify_version_archive,
)
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.orchestration.plan.partitions import register_version_partition
from plan_pipeline.store import PlanStoreError
from plan_pipeline.store.staging import Staging

from .ops_helpers import all_rows, make_version, operations_defs, run_ops_cli, set_created_at, version_rows

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

NOW = datetime(2026, 6, 15, 12, 0, 0)
OLD = datetime(2024, 1, 10)  # 29 months before NOW
RECENT = datetime(2026, 1, 10)


def _kpis(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"category": ["plan"] * n, "metric": [f"m{i}" for i in range(n)], "bucket_type": "total",
                         "bucket_key": "total", "value": [float(i) for i in range(n)], "unit": None})


@pytest.fixture
def aged_store(plan_env, sample_dir):
    """Versions of every status, old and recent, each with KPI rows, an override and events."""
    store = plan_env.store
    spec = {
        "old-draft": (OLD, "draft", False),
        "old-superseded": (OLD, "superseded", False),
        "old-imported": (OLD, "imported", True),
        "old-approved": (OLD, "approved", False),
        "old-submitted": (OLD, "submitted", False),
        "new-draft": (RECENT, "draft", False),
    }
    for vid in spec:
        make_version(store, sample_dir, vid)
        store.replace_kpis(vid, "plan", _kpis(), run_id=f"run-{vid}")
        store.record_override(vid, "det", "det:week=2025-W02,sku=A1", {"demand": 1.0}, actor="t")
    for vid, (when, status, read_only) in spec.items():
        set_created_at(store, vid, when, status=status, read_only=read_only,
                       input_set=None if status == "imported" else "keep")
    return store


def test_months_are_calendar_months():
    assert months_before(datetime(2026, 6, 15), 18) == datetime(2024, 12, 15)
    assert months_before(datetime(2026, 3, 31), 1) == datetime(2026, 2, 28)
    assert months_before(datetime(2026, 1, 5), 0) == datetime(2026, 1, 5)


def test_age_rule_dry_run_reports_and_real_run_removes_and_archives(aged_store, tmp_path):
    store = aged_store
    archive = tmp_path / "archive"
    policy = RetentionPolicy(max_versions=None, kpi_max_age_months=None, audit_max_age_months=None)
    before = all_rows(store)

    dry = trim_store(store, policy, dry_run=True, archive_dir=archive, now=NOW)
    assert dry.removed_version_ids == ["old-draft", "old-imported", "old-superseded"]  # oldest first, then id
    assert all_rows(store) == before, "a dry run changes nothing"
    assert not archive.exists()
    assert dry.bytes_reclaimed is None and dry.bytes_before > 0
    by_id = {v["version_id"]: v for v in dry.versions}
    assert by_id["old-imported"]["reasons"] == ["imported older than 18 months"]
    assert by_id["old-draft"]["rows"]["plan_kpis"] == 3
    assert by_id["old-draft"]["rows"]["plan_override_events"] == 1

    expected = {vid: version_rows(store, vid, VERSION_TABLES) for vid in by_id}
    real = trim_store(store, policy, archive_dir=archive, now=NOW)
    assert sorted(real.removed_version_ids) == sorted(dry.removed_version_ids)
    assert [v["rows"] for v in real.versions] == [v["rows"] for v in dry.versions]
    assert real.rows_removed == dry.rows_removed
    assert real.rows_removed["plan_versions"] == 3 and real.rows_removed["plan_kpis"] == 9
    remaining = {v.version_id for v in store.list_versions()}
    assert remaining == {"old-approved", "old-submitted", "new-draft"}
    assert real.bytes_after is not None and real.bytes_reclaimed == real.bytes_before - real.bytes_after
    # every removed version sits in its archive folder with a manifest that checks out
    for vid in by_id:
        folder = archive / vid
        manifest = json.loads((folder / "archive.json").read_text())
        assert manifest["version_id"] == vid
        for table, entry in manifest["tables"].items():
            assert pq.ParquetFile(folder / entry["file"]).metadata.num_rows == entry["rows"] == \
                len(expected[vid][table])
    assert {a["version_id"] for a in list_archived_versions(archive)} == set(by_id)
    # and comes back exactly
    assert restore_archived_version(store, "old-draft", archive)["plan_kpis"] == 3
    assert version_rows(store, "old-draft", VERSION_TABLES) == expected["old-draft"]
    with pytest.raises(PlanStoreError, match="exists"):
        restore_archived_version(store, "old-draft", archive)
    # new ids keep coming from the sequences after the restore
    new_id = store.record_override("new-draft", "det", "det:week=2025-W03,sku=A1", {"demand": 2.0})["override_id"]
    assert new_id > max(r[0] for r in expected["old-draft"]["plan_overrides"])


def test_count_rule_removes_oldest_non_approved_first(aged_store, tmp_path):
    store = aged_store
    # make every version recent, ordered by created_at; the approved one is the oldest
    order = ["old-approved", "old-submitted", "old-draft", "old-superseded", "old-imported", "new-draft"]
    for i, vid in enumerate(order):
        set_created_at(store, vid, RECENT + timedelta(days=i))
    policy = RetentionPolicy(version_max_age_months=None, max_versions=2, kpi_max_age_months=None,
                             audit_max_age_months=None)
    dry = trim_store(store, policy, dry_run=True, archive_dir=tmp_path / "a", now=NOW)
    assert dry.removed_version_ids == ["old-submitted", "old-draft", "old-superseded"]
    assert all(v["reasons"] == ["beyond the newest 2 non-approved versions"] for v in dry.versions)
    real = trim_store(store, policy, archive_dir=tmp_path / "a", now=NOW)
    assert real.removed_version_ids == dry.removed_version_ids
    assert [v.version_id for v in store.list_versions()] == ["old-approved", "old-imported", "new-draft"]
    # converges: a second run removes nothing
    assert trim_store(store, policy, archive_dir=tmp_path / "a", now=NOW).versions == []


def test_kpi_and_audit_rules_remove_only_old_rows(aged_store, tmp_path):
    store = aged_store
    with store.connect() as con:
        con.execute("UPDATE plan_kpis SET created_at = TIMESTAMP '2024-03-01' WHERE metric = 'm0'")  # 27 months
        con.execute("UPDATE plan_kpis SET created_at = TIMESTAMP '2024-09-01' WHERE metric = 'm1'")  # 21 months
        con.execute("UPDATE plan_override_events SET event_ts = TIMESTAMP '2023-01-01' "
                    "WHERE version_id IN ('old-approved', 'new-draft')")  # 41 months
    policy = RetentionPolicy(version_max_age_months=None, max_versions=None)
    before = all_rows(store)
    dry = trim_store(store, policy, dry_run=True, archive_dir=tmp_path / "a", now=NOW)
    assert dry.versions == [] and dry.kpi_rows_trimmed == 6 and dry.audit_events_trimmed == 2
    assert all_rows(store) == before
    real = trim_store(store, policy, archive_dir=tmp_path / "a", now=NOW)
    assert (real.kpi_rows_trimmed, real.audit_events_trimmed) == (6, 2)
    assert real.rows_removed["plan_kpis"] == 6 and real.rows_removed["plan_override_events"] == 2
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM plan_kpis WHERE metric = 'm0'").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM plan_kpis WHERE metric = 'm1'").fetchall()[0][0] == 6
        assert con.execute("SELECT count(*) FROM plan_override_events").fetchall()[0][0] == 4
    kpi_archive, audit_archive = real.row_archives
    assert pq.read_table(kpi_archive).num_rows == 6 and pq.read_table(audit_archive).num_rows == 2
    assert set(pq.read_table(kpi_archive).column("metric").to_pylist()) == {"m0"}


def test_versions_in_progress_are_never_removed(aged_store, tmp_path):
    store = aged_store
    report = trim_store(store, archive_dir=tmp_path / "a", now=NOW, active_versions={"old-draft": "run-123"})
    assert "old-draft" not in report.removed_version_ids
    assert report.skipped == [{"version_id": "old-draft",
                               "reason": "run run-123 is in progress for this version "
                                         "(would be removed: draft older than 18 months)"}]
    assert store.find_version("old-draft") is not None


def test_trim_job_checks_the_instance_reports_metadata_and_drops_partitions(plan_env, sample_dir, tmp_path):
    store = plan_env.store
    instance = plan_env.instance()
    make_version(store, sample_dir, "busy")
    make_version(store, sample_dir, "stale")
    assert materialize_version(instance, store, "stale").success
    make_version(store, sample_dir, "fresh")
    for vid in ("busy", "stale"):
        set_created_at(store, vid, datetime(2020, 1, 1))
        register_version_partition(instance, vid)
    # a run of "busy" launched elsewhere that has not started yet
    instance.add_run(dg.DagsterRun(job_name="plan_job", run_id="queued-busy-run",
                                   status=dg.DagsterRunStatus.NOT_STARTED, tags={"dagster/partition": "busy"}))
    job = operations_defs(store).resolve_job_def("plan_store_trim")
    archive = tmp_path / "archive"
    dry = job.execute_in_process(instance=instance, run_config={"ops": {"plan_store_trim_op": {"config": {
        "dry_run": True, "archive_dir": str(archive)}}}})
    assert dry.success
    assert {v.version_id for v in store.list_versions()} == {"busy", "stale", "fresh"}
    result = job.execute_in_process(instance=instance, run_config={"ops": {"plan_store_trim_op": {"config": {
        "dry_run": False, "archive_dir": str(archive), "max_versions": 600}}}})
    assert result.success
    meta = result.output_for_node("plan_store_trim_op")
    assert [v["version_id"] for v in meta["versions"]] == ["stale"]
    assert meta["skipped"][0]["version_id"] == "busy" and "queued-busy-run" in meta["skipped"][0]["reason"]
    assert meta["rows_removed"]["plan_series"] > 0
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = event.event_specific_data.metadata
    assert metadata["versions_removed_count"].value == 1
    assert metadata["bytes_reclaimed"].value == metadata["bytes_before"].value - metadata["bytes_after"].value
    assert metadata["reclaimed_by"].value == ("VACUUM (ANALYZE)" if store.is_postgres else "CHECKPOINT")
    assert "stale" not in instance.get_dynamic_partitions("plan_version")
    assert "busy" in instance.get_dynamic_partitions("plan_version")
    assert (archive / "stale" / "plan_series.parquet").is_file()


def test_trim_cli_dry_run_and_real_run(plan_env, sample_dir, tmp_path, capsys):
    store = plan_env.store
    make_version(store, sample_dir, "ancient")
    set_created_at(store, "ancient", datetime(2019, 5, 1))
    archive = tmp_path / "arch"
    assert run_ops_cli(["trim", "--dry-run", "--archive-dir", str(archive)]) == 0
    text = capsys.readouterr().out
    assert "would remove version ancient (draft, created 2019-05-01 00:00:00; draft older than 18 months)" in text
    assert store.find_version("ancient") is not None
    assert run_ops_cli(["trim", "--archive-dir", str(archive), "--kpi-max-age-months", "off"]) == 0
    text = capsys.readouterr().out
    reclaimed_by = "VACUUM (ANALYZE)" if store.is_postgres else "CHECKPOINT"  # each backend's way (docs/operations.md)
    assert "removed version ancient" in text and f"bytes reclaimed after {reclaimed_by}" in text
    assert "KPI rows removed: 0 (rule off)" in text
    assert store.find_version("ancient") is None
    assert run_ops_cli(["restore-archived", "--archive-dir", str(archive)]) == 0
    assert "ancient" in capsys.readouterr().out
    assert run_ops_cli(["restore-archived", "ancient", "--archive-dir", str(archive)]) == 0
    assert store.find_version("ancient") is not None
    with pytest.raises(SystemExit):  # usage error, exit status 2
        run_ops_cli(["trim", "--max-versions", "-1"])


def test_policy_rejects_nonsense():
    with pytest.raises(PlanStoreError, match="max_versions"):
        RetentionPolicy(max_versions=-1)


# ---------------------------------------------------------------------------------- archive then remove
def test_archive_and_remove_versions_archives_first_and_refuses_busy_or_unknown(aged_store, tmp_path):
    store = aged_store
    archive = tmp_path / "a"
    expected = version_rows(store, "old-approved", VERSION_TABLES)
    before = all_rows(store)
    with pytest.raises(PlanStoreError, match=r"old-approved \(run run-9\)"):
        archive_and_remove_versions(store, ["old-approved"], reason="x", archive_dir=archive,
                                    active_versions={"old-approved": "run-9"})
    with pytest.raises(PlanStoreError, match="unknown plan version 'nope'"):
        archive_and_remove_versions(store, ["old-approved", "nope"], reason="x", archive_dir=archive)
    assert all_rows(store) == before, "a refused removal changes nothing"
    assert not archive.exists() or list(archive.iterdir()) == []

    (item,) = archive_and_remove_versions(store, ["old-approved"], reason="frozen by mistake", actor="admin",
                                          archive_dir=archive, now=NOW)
    assert item["version_id"] == "old-approved" and item["status"] == "approved"
    assert item["archive"] == str(archive / "old-approved")
    assert item["rows"] == {t: len(rows) for t, rows in expected.items()}
    assert store.find_version("old-approved") is None
    manifest = verify_version_archive(archive / "old-approved", "old-approved")
    assert (manifest["operation"], manifest["actor"], manifest["reasons"]) == ("delete", "admin",
                                                                               ["frozen by mistake"])
    assert sorted(p.name for p in archive.iterdir()) == ["old-approved"], "no staged folder or lock file is left"
    restore_archived_version(store, "old-approved", archive)
    assert version_rows(store, "old-approved", VERSION_TABLES) == expected


def test_archive_folder_that_is_a_file_is_a_clear_error(aged_store, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    for argv in (["trim", "--archive-dir", str(blocker)], ["trim", "--dry-run", "--archive-dir", str(blocker)],
                 ["restore-archived", "--archive-dir", str(blocker)],
                 ["restore-archived", "old-draft", "--archive-dir", str(blocker)]):
        assert run_ops_cli(argv) == 1, argv
        assert capsys.readouterr().err.strip() == f"error: archive folder {blocker} is a file, not a folder"
    # a file in the way further down the path
    assert run_ops_cli(["trim", "--archive-dir", str(blocker / "sub")]) == 1
    assert f"cannot create archive folder {blocker / 'sub'}" in capsys.readouterr().err
    assert aged_store.find_version("old-draft") is not None


# ---------------------------------------------------------------------------------- leftovers
def _age(path, days: float = 2.0) -> None:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def test_next_trim_removes_recovers_or_keeps_leftovers_of_interrupted_runs(aged_store, tmp_path):
    store = aged_store
    archive = tmp_path / "a"
    off = RetentionPolicy(version_max_age_months=None, max_versions=None, kpi_max_age_months=None,
                          audit_max_age_months=None)
    # 1. what an older release left when killed after its commit: the version is gone, its only
    #    archive sits in a staged folder without a lock file
    only_copy = version_rows(store, "old-draft", VERSION_TABLES)
    archive_and_remove_versions(store, ["old-draft"], reason="old", archive_dir=archive, now=NOW)
    legacy = archive / ".old-draft.partial-0badc0de"
    (archive / "old-draft").rename(legacy)
    _age(legacy)
    # 2. a killed writer of this release (lock file, nobody holds it) of a version still in the store
    dead = archive / ".new-draft.partial-999999-0123abcd"
    dead.mkdir()
    (dead / "plan_versions.parquet").write_bytes(b"half")
    (archive / (dead.name + ".lock")).touch()
    # 3. the same, but young and without a lock file: an older release may still be writing it
    young = archive / ".old-submitted.partial-1111aaaa"
    young.mkdir()
    # 4. a damaged archive of a version that is not in the store: kept for inspection
    ghost = archive / ".ghost.partial-2222bbbb"
    shutil.copytree(legacy, ghost)
    manifest = json.loads((ghost / "archive.json").read_text())
    manifest["version_id"] = "ghost"
    (ghost / "archive.json").write_text(json.dumps(manifest))
    (ghost / "plan_kpis.parquet").write_bytes(b"garbage")
    _age(ghost)
    # 5. trimmed KPI rows of an older release's killed trim: recovered, never deleted
    rows = archive / "._trimmed.partial-3333cccc"
    rows.mkdir()
    pq.write_table(pq.read_table(legacy / "plan_kpis.parquet"), rows / "plan_kpis.parquet")
    _age(rows)
    # 6. an orphan lock file
    (archive / ".old-imported.partial-42-4444dddd.lock").touch()
    snapshot = sorted(p.name for p in archive.iterdir())
    before = all_rows(store)

    with Staging(archive, "old-superseded") as live:  # 7. a writer that is still running
        dry = trim_store(store, off, dry_run=True, archive_dir=archive, now=NOW)
        assert sorted(p.name for p in archive.iterdir()) == sorted(snapshot + [live.path.name, live.lock_path.name])
        assert all_rows(store) == before
        report = trim_store(store, off, archive_dir=archive, now=NOW)
        assert live.path.is_dir() and live.lock_path.is_file()
    actions = {Path(left["path"]).name: (left["action"], left["legacy"]) for left in report.leftovers}
    assert actions == {
        legacy.name: ("recovered", True),
        dead.name: ("removed", False),
        ghost.name: ("kept", True),
        rows.name: ("recovered", True),
    }
    assert [(left["path"], left["action"]) for left in dry.leftovers] == \
        [(left["path"], left["action"]) for left in report.leftovers]
    assert "would be recovered" in "\n".join(dry.lines())
    assert "reason" in report.leftovers[0] and any("still in the store" in left["reason"] for left in report.leftovers)
    assert sorted(p.name for p in archive.iterdir()) == sorted(
        ["_trimmed", "old-draft", young.name, ghost.name])
    assert [p.name for p in (archive / "_trimmed").iterdir()] == ["recovered-3333cccc"]
    assert pq.read_table(archive / "_trimmed" / "recovered-3333cccc" / "plan_kpis.parquet").num_rows == 3
    restore_archived_version(store, "old-draft", archive)
    assert version_rows(store, "old-draft", VERSION_TABLES) == only_copy
