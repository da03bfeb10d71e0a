"""Backup and restore: consistent snapshot with manifest, row-for-row restore, sequences, keep N, refusals."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from plan_pipeline.operations.backup import create_backup, list_backups, restore_backup, verify_backup
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError

from ..conftest import BUNDLED_SAMPLE
from .ops_helpers import all_rows, build_materialized_store, copy_store, make_version, operations_defs, run_ops_cli


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_materialized_store(tmp_path_factory.mktemp("template"), BUNDLED_SAMPLE, "v1")


@pytest.fixture
def busy_store(plan_env, sample_dir, template):
    """A store with a materialized version, overrides, audit events and a second version."""
    store = copy_store(template, plan_env.db_path)
    store.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 5.0}, actor="ann")
    store.record_override("v1", "det", "det:week=2025-W03,sku=A1", {"supply": 1.0}, lock=True, actor="bob")
    store.transition_status("v1", "submitted", actor="ann")
    make_version(store, sample_dir, "v2", round_mode="dec1")
    return store


def test_backup_and_restore_reproduce_every_table_and_sequence(busy_store, tmp_path, capsys):
    store = busy_store
    assert run_ops_cli(["backup", "--out", str(tmp_path / "backups")]) == 0
    assert "backup " in capsys.readouterr().out
    (backup,) = list_backups(tmp_path / "backups")
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["schema_version"] == store.schema_version()
    assert manifest["created_at"].endswith("UTC")
    assert {t: e["rows"] for t, e in manifest["tables"].items()} == store.table_counts()
    assert manifest["sequences"]["seq_plan_overrides"] == 2
    assert verify_backup(backup) == manifest

    target = tmp_path / "restored" / "plan_store.duckdb"
    assert run_ops_cli(["restore", str(backup), "--db", str(target)]) == 0
    original, restored = all_rows(store.path), all_rows(target)
    assert restored.keys() == original.keys()
    for table in original:
        assert restored[table] == original[table], table
    # ids continue where the original stopped, in both stores alike
    copy = PlanStore(target)
    for s in (store, copy):
        result = s.record_override("v2", "det", "det:week=2025-W04,sku=A1", {"demand": 2.0})
        assert result["override_id"] == 3
    ids = {name: [r[0] for r in all_rows(name)["plan_override_events"]] for name in (store.path, target)}
    assert ids[store.path] == ids[target] == list(range(1, len(ids[target]) + 1))


def test_restore_refuses_a_non_empty_store_unless_forced(busy_store, tmp_path):
    store = busy_store
    result = create_backup(store, tmp_path / "b")
    with pytest.raises(PlanStoreError, match="not empty"):
        restore_backup(result.path, store.path)
    other = tmp_path / "other.duckdb"
    PlanStore(other).create_version("x", None, PlanningParameters())
    outcome = restore_backup(result.path, other, force=True)
    assert outcome.moved_aside is not None and outcome.moved_aside.exists()
    assert PlanStore(outcome.moved_aside).find_version("x") is not None
    assert all_rows(other) == all_rows(store.path)
    # an empty (schema-only) store is replaced without --force
    empty = tmp_path / "empty.duckdb"
    PlanStore(empty).initialise()
    assert restore_backup(result.path, empty).moved_aside is None
    assert all_rows(empty) == all_rows(store.path)


def test_damaged_backup_is_refused(busy_store, tmp_path):
    result = create_backup(busy_store, tmp_path / "b")
    victim = result.path / "plan_series.parquet"
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(PlanStoreError, match="sha256"):
        restore_backup(result.path, tmp_path / "new.duckdb")
    assert not (tmp_path / "new.duckdb").exists()


def test_keep_prunes_to_the_newest_n(busy_store, tmp_path):
    out = tmp_path / "b"
    start = datetime(2026, 1, 1, 2, 0)
    paths = [create_backup(busy_store, out, keep=2, now=start + timedelta(days=i)).path for i in range(4)]
    assert list_backups(out) == [paths[3], paths[2]]
    (out / "unrelated").mkdir()  # never touched
    create_backup(busy_store, out, keep=1, now=start + timedelta(days=9))
    assert len(list_backups(out)) == 1 and (out / "unrelated").is_dir()


def test_backup_job_runs_in_the_pool_and_reports(busy_store, plan_env, tmp_path):
    defs = operations_defs(busy_store.path)
    job = defs.resolve_job_def("plan_store_backup")
    assert {n.definition.pool for n in job.graph.nodes} == {"duckdb"}
    result = job.execute_in_process(instance=plan_env.instance(), run_config={"ops": {"plan_store_backup_op": {
        "config": {"out_dir": str(tmp_path / "jb"), "keep": 3}}}})
    assert result.success
    path = result.output_for_node("plan_store_backup_op")
    assert list_backups(tmp_path / "jb")[0].as_posix() == path
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    assert event.event_specific_data.metadata["rows"].value["plan_versions"] == 2
