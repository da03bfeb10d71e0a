"""Backup and restore: consistent snapshot with manifest, row-for-row restore, sequences, keep N, refusals."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from plan_pipeline.operations.backup import (
    create_backup,
    list_backups,
    restore_backup,
    restore_backup_into_postgres,
    verify_backup,
)
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.store_files import data_rows

from .ops_helpers import (  # sample_template_home / template_home_copy: fixtures template and plan_env
    all_rows,
    make_version,
    operations_defs,
    run_ops_cli,
    sample_template_home,  # noqa: F401
    template_home_copy,  # noqa: F401
)

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def new_store(homes, request):
    """``new_store(folder)``: a plan store that does not exist yet (a DuckDB file in ``folder``), or
    an empty PostgreSQL database (dropped after the test): a restore's target."""
    return lambda folder: homes.store_at(folder, request.addfinalizer)


def restore_into(backup, target: PlanStore, **kwargs):
    """The restore of ``backup`` into ``target``: a DuckDB file, or an empty PostgreSQL database."""
    if target.is_postgres:
        return restore_backup_into_postgres(backup, target.location, **kwargs)
    return restore_backup(backup, target.path, **kwargs)


def untouched(target: PlanStore) -> bool:
    """The refused restore left nothing: no DuckDB file, or no data in the PostgreSQL database."""
    return data_rows(target.table_counts()) == 0 if target.is_postgres else not target.path.exists()


@pytest.fixture
def busy_store(plan_env, sample_dir):
    """A store with a materialized version, overrides, audit events and a second version."""
    store = plan_env.store
    store.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 5.0}, actor="ann")
    store.record_override("v1", "det", "det:week=2025-W03,sku=A1", {"supply": 1.0}, lock=True, actor="bob")
    store.transition_status("v1", "submitted", actor="ann")
    make_version(store, sample_dir, "v2", round_mode="dec1")
    return store


def test_backup_and_restore_reproduce_every_table_and_sequence(busy_store, new_store, tmp_path, monkeypatch,
                                                               capsys):
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

    copy = new_store(tmp_path / "restored")
    if copy.is_postgres:  # into the empty database PLAN_STORE_URL names
        monkeypatch.setenv("PLAN_STORE_URL", copy.location.url)
        assert run_ops_cli(["restore", str(backup)]) == 0
    else:
        assert run_ops_cli(["restore", str(backup), "--db", str(copy.path)]) == 0
    original, restored = all_rows(store), all_rows(copy)
    assert restored.keys() == original.keys()
    for table in original:
        assert restored[table] == original[table], table
    # ids continue where the original stopped, in both stores alike
    for s in (store, copy):
        result = s.record_override("v2", "det", "det:week=2025-W04,sku=A1", {"demand": 2.0})
        assert result["override_id"] == 3
    ids = [[r[0] for r in all_rows(s)["plan_override_events"]] for s in (store, copy)]
    assert ids[0] == ids[1] == list(range(1, len(ids[1]) + 1))


def test_restore_refuses_a_non_empty_store_unless_forced(busy_store, new_store, tmp_path):
    store = busy_store
    result = create_backup(store, tmp_path / "b")
    if store.is_postgres:
        _postgres_restores_into_an_empty_database_only(store, result.path, new_store, tmp_path)
        return
    with pytest.raises(PlanStoreError, match="not empty"):
        restore_backup(result.path, store.path)
    other = tmp_path / "other.duckdb"
    PlanStore(other).create_version("x", None, PlanningParameters())
    outcome = restore_backup(result.path, other, force=True)
    assert outcome.moved_aside is not None and outcome.moved_aside.exists()
    assert PlanStore(outcome.moved_aside).find_version("x") is not None
    assert all_rows(other) == all_rows(store)
    # an empty (schema-only) store is replaced without --force
    empty = tmp_path / "empty.duckdb"
    PlanStore(empty).initialise()
    assert restore_backup(result.path, empty).moved_aside is None
    assert all_rows(empty) == all_rows(store)


def _postgres_restores_into_an_empty_database_only(store, backup, new_store, tmp_path):
    """PostgreSQL's counterpart (docs/operations.md): no file to keep beside it, so a database
    holding rows is refused with or without force; an empty (schema-only) database is restored into."""
    before = all_rows(store)
    with pytest.raises(PlanStoreError, match=r"refused: the PostgreSQL database holds \d+ rows"):
        restore_into(backup, store)
    other = new_store(tmp_path / "other")
    other.create_version("x", None, PlanningParameters())
    with pytest.raises(PlanStoreError, match="--force cannot replace the PostgreSQL store"):
        restore_into(backup, other, force=True)
    with pytest.raises(PlanStoreError, match=r"refused: the PostgreSQL database holds \d+ rows"):
        restore_into(backup, other)
    assert other.find_version("x") is not None and [v.version_id for v in other.list_versions()] == ["x"]
    assert all_rows(store) == before
    empty = new_store(tmp_path / "empty")
    empty.initialise()
    assert restore_into(backup, empty).moved_aside is None
    assert all_rows(empty) == all_rows(store)


def test_damaged_backup_is_refused(busy_store, new_store, tmp_path):
    result = create_backup(busy_store, tmp_path / "b")
    victim = result.path / "plan_series.parquet"
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    target = new_store(tmp_path / "new")
    with pytest.raises(PlanStoreError, match="sha256"):
        restore_into(result.path, target)
    assert untouched(target)


def test_a_backup_of_another_schema_is_refused_naming_the_tables(busy_store, new_store, tmp_path):
    result = create_backup(busy_store, tmp_path / "b")
    manifest_path = result.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["tables"]["plan_kpis"]  # a backup from a schema without that table
    manifest_path.write_text(json.dumps(manifest))
    target = new_store(tmp_path / "new")
    with pytest.raises(PlanStoreError, match=r"only in backup: \[\], missing from backup: \['plan_kpis'\]"):
        restore_into(result.path, target)
    assert untouched(target)


def test_keep_prunes_to_the_newest_n(busy_store, tmp_path):
    out = tmp_path / "b"
    start = datetime(2026, 1, 1, 2, 0)
    paths = [create_backup(busy_store, out, keep=2, now=start + timedelta(days=i)).path for i in range(4)]
    assert list_backups(out) == [paths[3], paths[2]]
    (out / "unrelated").mkdir()  # never touched
    create_backup(busy_store, out, keep=1, now=start + timedelta(days=9))
    assert len(list_backups(out)) == 1 and (out / "unrelated").is_dir()


def test_backup_job_runs_in_the_pool_and_reports(busy_store, plan_env, tmp_path):
    defs = operations_defs(busy_store)
    job = defs.resolve_job_def("plan_store_backup")
    assert {n.definition.pool for n in job.graph.nodes} == {"duckdb"}
    result = job.execute_in_process(instance=plan_env.instance(), run_config={"ops": {"plan_store_backup_op": {
        "config": {"out_dir": str(tmp_path / "jb"), "keep": 3}}}})
    assert result.success
    path = result.output_for_node("plan_store_backup_op")
    assert list_backups(tmp_path / "jb")[0].as_posix() == path
    event = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    assert event.event_specific_data.metadata["rows"].value["plan_versions"] == 2


def test_targets_that_are_files_or_folders_are_clear_errors(busy_store, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    backup = create_backup(busy_store, tmp_path / "b").path
    before = all_rows(busy_store)
    cases = [
        (["backup", "--out", str(blocker)], f"error: backup folder {blocker} is a file, not a folder"),
        (["backup", "--out", str(blocker / "sub")], f"error: cannot create backup folder {blocker / 'sub'}: "),
        (["restore", str(blocker)], f"error: {blocker} is a file, not a backup folder"),
        (["restore", str(tmp_path / "nothing")], f"error: backup folder {tmp_path / 'nothing'} does not exist"),
        (["--db", str(tmp_path), "restore", str(backup)],
         f"error: restore target {tmp_path} is a folder, not a plan store file"),
    ]
    for argv, message in cases:
        assert run_ops_cli(argv) == 1, argv
        assert capsys.readouterr().err.startswith(message), argv
    assert all_rows(busy_store) == before


REFUSED_WHILE_RUNNING = (
    "error: restore refused: plan runs are in progress: run running-run-1 (version v2); wait for them to "
    "finish (or cancel them) and run restore again")


def test_restore_is_refused_while_a_plan_run_is_in_progress(busy_store, plan_env, new_store, tmp_path, monkeypatch,
                                                            capsys):
    import dagster as dg

    backup = create_backup(busy_store, tmp_path / "b").path
    before = all_rows(busy_store)
    instance = plan_env.instance()
    instance.add_run(dg.DagsterRun(job_name="plan_job", run_id="running-run-1",
                                   status=dg.DagsterRunStatus.STARTED, tags={"plan/version": "v2"}))
    if busy_store.is_postgres:
        # PostgreSQL restores into an empty database only, and refuses it too while a run is in
        # progress (the guard runs before any restore: operations/backup.restore_backup_into_postgres)
        target = new_store(tmp_path / "target")
        monkeypatch.setenv("PLAN_STORE_URL", target.location.url)
        assert run_ops_cli(["restore", str(backup)]) == 1
        assert capsys.readouterr().err.strip() == REFUSED_WHILE_RUNNING
        assert all_rows(busy_store) == before and untouched(target)
        instance.delete_run("running-run-1")  # the run is over
        assert run_ops_cli(["restore", str(backup)]) == 0
        assert "2 plan version(s) registered" in capsys.readouterr().out
        assert all_rows(target) == before
        return
    assert run_ops_cli(["restore", str(backup), "--force"]) == 1
    assert capsys.readouterr().err.strip() == REFUSED_WHILE_RUNNING
    assert all_rows(busy_store) == before
    assert sorted(p.name for p in busy_store.path.parent.iterdir() if "restore" in p.name) == []
    # a new file is no store a run writes: restoring into it is fine
    assert run_ops_cli(["--db", str(tmp_path / "copy.duckdb"), "restore", str(backup)]) == 0
    instance.delete_run("running-run-1")  # the run is over
    capsys.readouterr()
    assert run_ops_cli(["restore", str(backup), "--force"]) == 0
    assert "the previous store was kept as" in capsys.readouterr().out


@pytest.mark.duckdb_only("the restore's swap of the rebuilt file into place: a PostgreSQL restore has no file "
                         "to swap (it loads an empty database, its guard checked first: the test above)")
def test_restore_checks_again_at_the_swap_while_holding_the_store(busy_store, tmp_path):
    backup = create_backup(busy_store, tmp_path / "b").path
    before = all_rows(busy_store)
    calls = []

    def guard():
        calls.append(len(calls))
        if len(calls) > 1:  # a run started while the new file was being built
            raise PlanStoreError("a run started")

    with pytest.raises(PlanStoreError, match="a run started"):
        restore_backup(backup, busy_store.path, force=True, guard=guard)
    assert calls == [0, 1]
    assert all_rows(busy_store) == before
    assert [p.name for p in busy_store.path.parent.iterdir() if p.name.startswith(".")] == []


def test_backup_removes_leftovers_of_dead_writers_only(busy_store, tmp_path):
    import os

    from plan_pipeline.store.staging import Staging

    out = tmp_path / "b"
    first = create_backup(busy_store, out, keep=5).path
    dead = out / ".plan-store-20260101T000000000000Z.partial-999999-0123abcd"  # killed: lock file, no holder
    dead.mkdir()
    (out / (dead.name + ".lock")).touch()
    pruning = out / ".plan-store-20250101T000000000000Z.removing-999999-4567abcd"  # killed while pruning
    pruning.mkdir()
    (pruning / "plan_series.parquet").write_bytes(b"half")
    young_legacy = out / ".plan-store-20260102T000000000000Z.partial-89abcdef"  # an older release, maybe running
    young_legacy.mkdir()
    old_legacy = out / ".plan-store-20250102T000000000000Z.partial-fedcba98"
    old_legacy.mkdir()
    os.utime(old_legacy, (0, 0))
    other = out / ".somebody-else.partial-999999-0123abcd"  # not a backup: not ours to judge
    other.mkdir()
    with Staging(out, "plan-store-20260103T000000000000Z") as live:  # a concurrent backup
        result = create_backup(busy_store, out, keep=5)
        assert live.path.is_dir() and live.lock_path.is_file()
    assert sorted(p.name for p in result.leftovers) == sorted([dead.name, pruning.name, old_legacy.name])
    assert sorted(p.name for p in out.iterdir()) == sorted([first.name, result.path.name, young_legacy.name,
                                                            other.name])
    assert f"removed leftover of an interrupted backup {dead}" in result.lines()
