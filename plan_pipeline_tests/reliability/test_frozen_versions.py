"""Problem 3: frozen means frozen.

Approved, superseded and imported versions cannot be deleted, edited, re-planned or overwritten;
approval is refused while a run of the version is in progress, and a run re-checks the version
before it publishes; a deleted id keeps a tombstone and an audit event and is never reused.
"""
from __future__ import annotations

import pytest

from plan_pipeline.cli.main import main
from plan_pipeline_tests.reliability.cli_process import Home, assert_same_plan, ok, plan_snapshot, refused

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


def test_approval_and_delete_are_refused_while_a_run_writes_the_version(home500: Home):
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "busy"))
    ok(home500.run("submit", "busy"))
    run, release = home500.start_paused("stage.after_commit:det", "materialize", "busy")
    try:
        refused(home500.run("approve", "busy"), "has a run in progress")
        refused(home500.run("version", "delete", "busy"), "has a run in progress")
    finally:
        release.write_text("go")
        _, err = run.communicate(timeout=240)
    assert run.returncode == 0, err
    assert home500.store.get_version("busy").status == "submitted"
    ok(home500.run("approve", "busy"))
    assert home500.store.get_version("busy").status == "approved"


def test_a_run_rechecks_the_version_before_it_publishes(home500: Home):
    """Even if the version became approved behind the run's back, the run refuses to write on."""
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "raced"))
    ok(home500.run("materialize", "raced"))
    before = plan_snapshot(home500.store, "raced")
    run, release = home500.start_paused("stage.after_commit:det", "materialize", "raced")
    try:
        # A race no CLI path allows: the status changes behind the run's back (raw SQL).
        with home500.store.connect() as con:
            con.execute("UPDATE plan_versions SET status = 'approved' WHERE version_id = ?", ["raced"])
    finally:
        release.write_text("go")
        _, err = run.communicate(timeout=240)
    assert run.returncode == 1
    assert "is approved: its plan is frozen" in err and "Traceback" not in err
    assert_same_plan(home500.store, "raced", before)


@pytest.fixture
def approved(plan_env, sample_dir, capsys):
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "gold"]) == 0
    assert main(["materialize", "gold"]) == 0
    assert main(["submit", "gold"]) == 0
    assert main(["approve", "gold"]) == 0
    capsys.readouterr()
    return plan_env.store


def test_frozen_versions_refuse_delete_edit_and_replan(approved, capsys):
    store = approved
    before = plan_snapshot(store, "gold")
    events = store.read_override_events("gold")
    assert main(["version", "delete", "gold"]) == 1
    assert "is approved: it is frozen and cannot be deleted" in capsys.readouterr().err
    assert main(["override", "set", "gold", "--week", "2025-W02", "--sku", "BK-100", "--demand", "3"]) == 1
    assert "its plan is frozen" in capsys.readouterr().err
    assert main(["materialize", "gold"]) == 1
    assert "its plan is frozen" in capsys.readouterr().err
    assert main(["supersede", "gold"]) == 0
    assert main(["version", "delete", "gold"]) == 1
    assert "is superseded: it is frozen" in capsys.readouterr().err
    assert_same_plan(store, "gold", before)
    assert len(store.read_override_events("gold")) == len(events) + 1  # + supersede


def test_deleted_version_ids_are_never_reused_and_the_audit_event_survives(plan_env, sample_dir, capsys):
    store = plan_env.store
    assert main(["inputs", "import", str(sample_dir), "--label", "s"]) == 0
    assert main(["version", "create", "--input-set", "s", "--version-id", "tmp"]) == 0
    assert main(["version", "delete", "tmp", "--reason", "typo in the id", "--actor", "ana"]) == 0
    capsys.readouterr()
    assert main(["version", "create", "--input-set", "s", "--version-id", "tmp"]) == 1
    err = capsys.readouterr().err
    assert "version id 'tmp' was deleted on" in err and "by ana (typo in the id)" in err and "never reused" in err
    events = store.read_override_events("tmp")
    assert events["event_type"].tolist() == ["delete"] and events["actor"].tolist() == ["ana"]
    assert store.tombstone("tmp")["status"] == "draft"


def test_admin_delete_archives_first_and_only_restore_brings_the_id_back(approved, capsys):
    store = approved
    before = plan_snapshot(store, "gold")
    trail = store.read_override_events("gold")["event_type"].tolist()
    assert main(["version", "delete", "gold", "--admin"]) == 1
    assert "needs --reason" in capsys.readouterr().err
    assert main(["version", "delete", "gold", "--admin", "--reason", "approved by mistake", "--actor", "root"]) == 0
    assert "archived plan version 'gold' to" in capsys.readouterr().out
    assert store.find_version("gold") is None
    tombstone = store.tombstone("gold")
    assert tombstone["status"] == "approved" and tombstone["actor"] == "root" and tombstone["archive_path"]
    events = store.read_override_events("gold")
    assert events["event_type"].tolist() == ["delete"] and events["notes"].tolist() == ["approved by mistake"]
    assert main(["version", "create", "--input-set", "s", "--version-id", "gold"]) == 1
    assert "never reused" in capsys.readouterr().err
    assert main(["restore-archived", "gold", "--actor", "root"]) == 0
    assert_same_plan(store, "gold", before)
    assert store.get_version("gold").status == "approved" and store.tombstone("gold") is None
    restored_trail = store.read_override_events("gold")["event_type"].tolist()
    assert restored_trail == trail + ["delete", "restore"]


def test_automatic_version_ids_skip_deleted_ones(plan_env, capsys):
    assert main(["demo"]) == 0
    assert main(["version", "delete", "demo"]) == 0
    capsys.readouterr()
    assert main(["demo"]) == 0  # picks the next free id instead of reusing the deleted one
    assert "plan version : demo-2" in capsys.readouterr().out
    assert plan_env.store.taken_version_ids() == {"demo", "demo-2"}
