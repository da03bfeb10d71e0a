"""Maintenance that cannot lose data: trim, the row guard and backup killed (SIGKILL) at every
step of their commit/publish sequences, and restore while a plan run writes.

Every command runs as ``plan-pipeline`` in a subprocess on a copy of a small project home
(tiny sample inputs, three materialized versions) with ``PLAN_PIPELINE_CRASH_AT`` naming the
step (``plan_pipeline/faults.py``); the process must die by SIGKILL. Then: every version is
either still in the store with all its rows or has a complete archive that verifies and that
``restore-archived`` puts back exactly; old KPI rows are in the store or in a trimmed-rows
archive; the next trim/backup cleans up what the killed one left and succeeds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from plan_pipeline.faults import CRASH_ENV
from plan_pipeline.operations.backup import list_backups, verify_backup
from plan_pipeline.operations.retention import (
    ROW_ARCHIVE_MANIFEST,
    TRIMMED_DIR,
    VERSION_TABLES,
    verify_version_archive,
)
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.store import PlanStore
from plan_pipeline_tests.operations.ops_helpers import all_rows, version_rows
from plan_pipeline_tests.project_homes import ProjectHome

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

VERSIONS = ("v1", "v2", "v3")  # created in this order: trim --max-versions 1 removes v1 and v2
ROW_TABLES = ("plan_kpis", "plan_override_events")  # trimmed by age into <archive>/_trimmed/


def cli_env(home: ProjectHome) -> dict[str, str]:
    """This process's environment without the home variables, plus the home's store setting."""
    return home.subprocess_env({k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "PLANS_DB_MAX_ROWS")})


def cli(home: ProjectHome, *args: str, crash_at: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``plan-pipeline --home HOME ARGS`` in a fresh process on the home's store (optionally killed
    at a crash point)."""
    env = cli_env(home)
    if crash_at:
        env[CRASH_ENV] = crash_at
    result = subprocess.run([sys.executable, "-m", "plan_pipeline.cli.main", "--home", str(home.home), *args],
                            env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"plan-pipeline {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def popen_cli(home: ProjectHome, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "plan_pipeline.cli.main", "--home", str(home.home), *args],
                            env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def template_home(tmp_path_factory, homes) -> ProjectHome:
    """A project home with three small materialized versions, built once with the CLI (on the
    selected backend; its database lives for the session)."""
    root = tmp_path_factory.mktemp("maintenance")
    home = homes.new(root / "home")
    cli(home, "sample-inputs", "--out", str(root / "tiny"), "--families", "1", "--skus-per-family", "2",
        "--months", "3")
    cli(home, "inputs", "import", str(root / "tiny"), "--label", "tiny")
    for vid in VERSIONS:
        cli(home, "version", "create", "--input-set", "tiny", "--version-id", vid)
        cli(home, "materialize", vid)
    home.check_no_duckdb_file()
    return home


@pytest.fixture
def home(template_home, tmp_path, home_copy) -> ProjectHome:
    copy = home_copy(template_home, tmp_path / "home")
    yield copy
    copy.check_no_duckdb_file()


def snapshot(home: ProjectHome) -> dict[str, dict[str, list[tuple]]]:
    return {vid: version_rows(home.store, vid, VERSION_TABLES) for vid in VERSIONS}


def present_versions(home: ProjectHome) -> set[str]:
    with home.store.connect() as con:
        return {r[0] for r in con.execute("SELECT version_id FROM plan_versions").fetchall()}


def trimmed_rows(archive: Path) -> dict[str, list[tuple]]:
    """Every row in the published trimmed-rows archives (each verified against its manifest)."""
    found: dict[str, list[tuple]] = {t: [] for t in ROW_TABLES}
    folder = archive / TRIMMED_DIR
    if not folder.is_dir():
        return found
    with duckdb.connect() as con:
        for stamp in sorted(folder.iterdir()):
            manifest = json.loads((stamp / ROW_ARCHIVE_MANIFEST).read_text())
            for table, entry in manifest["tables"].items():
                rows = con.execute("SELECT * FROM read_parquet(?)", [str(stamp / entry["file"])]).fetchall()
                assert len(rows) == entry["rows"]
                found[table] += rows
    return found


def assert_nothing_lost(home: ProjectHome, archive: Path, before: dict[str, dict[str, list[tuple]]]) -> set[str]:
    """Each version is in the store with every row (old KPI/audit rows may instead sit in a
    trimmed-rows archive), or its archive is complete and verifies. Returns the archived ones."""
    present = present_versions(home)
    archived_rows = trimmed_rows(archive)
    archived = set()
    for vid in VERSIONS:
        if vid in present:
            now = version_rows(home.store, vid, VERSION_TABLES)
            for table in VERSION_TABLES:
                if table in ROW_TABLES:
                    missing = Counter(before[vid][table]) - Counter(now[table]) - Counter(archived_rows[table])
                    assert not missing, f"{vid} {table}: {sum(missing.values())} rows neither in store nor archive"
                else:
                    assert now[table] == before[vid][table], f"{vid} {table} changed"
        else:
            manifest = verify_version_archive(archive / vid, vid)
            assert {t: e["rows"] for t, e in manifest["tables"].items()} == \
                {t: len(rows) for t, rows in before[vid].items()}
            archived.add(vid)
    return archived


def hidden_entries(folder: Path) -> list[str]:
    """Staged folders, lock files and other hidden leftovers."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def trim_args(archive: Path) -> list[str]:
    return ["trim", "--max-versions", "1", "--version-max-age-months", "off", "--kpi-max-age-months", "0",
            "--audit-max-age-months", "0", "--archive-dir", str(archive)]


TRIM_STEPS = ["trim.archive_written", "trim.archive_published", "trim.before_commit", "trim.after_commit",
              "trim.before_checkpoint"]


@pytest.mark.parametrize("step", TRIM_STEPS)
def test_trim_killed_at_any_step_loses_nothing(home, tmp_path, step):
    archive = tmp_path / "archive"
    before = snapshot(home)
    assert all(before[v]["plan_series"] and before[v]["plan_kpis"] for v in VERSIONS)

    killed = cli(home, *trim_args(archive), crash_at=step, check=False)
    assert killed.returncode == -9, f"trim was not killed at {step}:\n{killed.stdout}\n{killed.stderr}"
    archived = assert_nothing_lost(home, archive, before)
    committed = step in ("trim.after_commit", "trim.before_checkpoint")
    assert archived == ({"v1", "v2"} if committed else set())
    if step != "trim.archive_written":  # published before the delete: complete archives of existing versions
        for vid in ("v1", "v2"):
            verify_version_archive(archive / vid, vid)

    # the next trim cleans up and finishes the job
    again = cli(home, *trim_args(archive))
    if step == "trim.archive_written":
        assert again.stdout.count("leftover of an interrupted run") == 3  # v1, v2 and the KPI rows
        assert "removed, the version is still in the store" in again.stdout
    assert hidden_entries(archive) == []
    assert present_versions(home) == {"v3"}
    assert assert_nothing_lost(home, archive, before) == {"v1", "v2"}
    if step == "trim.archive_published":  # the first archive was replaced by the second trim's, kept aside
        assert any(p.name.startswith("v1.replaced-") for p in archive.iterdir())

    # ... and every removed version comes back exactly
    for vid in ("v1", "v2"):
        cli(home, "restore-archived", vid, "--archive-dir", str(archive))
        assert version_rows(home.store, vid, VERSION_TABLES) == before[vid]


ROW_GUARD_STEPS = ["row_guard.archive_written", "row_guard.archive_published", "row_guard.before_commit",
                   "row_guard.after_commit"]


@pytest.mark.parametrize("step", ROW_GUARD_STEPS)
def test_row_guard_killed_at_any_step_loses_nothing(home, tmp_path, step):
    archive = tmp_path / "archive"
    before = snapshot(home)
    limit = len(before["v3"]["plan_series"]) + len(before["v2"]["plan_series"])  # v1 has to go
    args = ["row-guard", "--max-rows", str(limit), "--archive-dir", str(archive)]
    killed = cli(home, *args, crash_at=step, check=False)
    assert killed.returncode == -9
    archived = assert_nothing_lost(home, archive, before)
    assert archived == ({"v1"} if step == "row_guard.after_commit" else set())

    cli(home, *trim_args(archive)[:1], "--max-versions", "off", "--version-max-age-months", "off",
        "--kpi-max-age-months", "off", "--audit-max-age-months", "off", "--archive-dir", str(archive))
    assert hidden_entries(archive) == []  # the next trim cleaned up
    again = cli(home, *args)
    assert present_versions(home) == {"v2", "v3"}
    assert ("removed 1 version(s) (v1)" in again.stdout) == (step != "row_guard.after_commit")
    assert assert_nothing_lost(home, archive, before) == {"v1"}
    cli(home, "restore-archived", "v1", "--archive-dir", str(archive))
    assert version_rows(home.store, "v1", VERSION_TABLES) == before["v1"]


BACKUP_STEPS = ["backup.files_written", "backup.verified", "backup.published", "backup.pruning"]


@pytest.mark.parametrize("step", BACKUP_STEPS)
def test_backup_killed_at_any_step_leaves_only_whole_backups(home, tmp_path, step, homes, request):
    out = tmp_path / "backups"
    cli(home, "backup", "--out", str(out))
    (first,) = list_backups(out)
    killed = cli(home, "backup", "--out", str(out), "--keep", "1", crash_at=step, check=False)
    assert killed.returncode == -9
    listed = list_backups(out)
    for backup in listed:  # whatever carries a backup's name is a whole backup
        verify_backup(backup)
    assert first in listed or step == "backup.pruning"
    assert len(listed) == (2 if step == "backup.published" else 1)  # killed before its prune
    left = hidden_entries(out)
    assert bool(left) == (step != "backup.published"), left  # a staged folder, or the old one being removed

    result = cli(home, "backup", "--out", str(out), "--keep", "1")
    assert ("removed leftover of an interrupted backup" in result.stdout) == bool(left)
    assert hidden_entries(out) == []
    (latest,) = list_backups(out)
    verify_backup(latest)
    # restored into a new store: a DuckDB file (--db), or a new empty PostgreSQL database
    restored = homes.new(tmp_path / "restored", request.addfinalizer)
    if restored.is_postgres:
        cli(restored, "restore", str(latest))
        target = restored.store
    else:
        cli(home, "restore", str(latest), "--db", str(tmp_path / "restored.duckdb"))
        target = PlanStore(tmp_path / "restored.duckdb")
    assert all_rows(target) == all_rows(home.store)


@pytest.mark.duckdb_only("restore --force swaps the DuckDB file (the old one kept beside it); a PostgreSQL store is "
                         "restored into a new empty database, never over a live one")
def test_restore_during_a_run_is_refused_and_the_run_keeps_its_version(tmp_path, monkeypatch, capsys):
    project = ProjectHome(tmp_path / "home")
    home = project.home
    cli(project, "sample-inputs", "--out", str(tmp_path / "inputs"), "--families", "10", "--skus-per-family", "40",
        "--months", "12")
    cli(project, "inputs", "import", str(tmp_path / "inputs"), "--label", "big")
    cli(project, "version", "create", "--input-set", "big", "--version-id", "old")
    cli(project, "backup", "--out", str(tmp_path / "backups"))
    (backup,) = list_backups(tmp_path / "backups")
    cli(project, "version", "create", "--input-set", "big", "--version-id", "busy")

    run = popen_cli(project, "materialize", "busy")
    instance = dg.DagsterInstance.from_config(str(home / "dagster_home"))
    try:
        while "busy" not in versions_in_progress(instance):
            assert run.poll() is None, f"materialize ended before it was seen running: {run.communicate()}"
            time.sleep(0.05)
        run_id = versions_in_progress(instance)["busy"]
        for name in ("PLAN_PIPELINE_HOME", "PLAN_PIPELINE_DB", "DAGSTER_HOME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PLAN_PIPELINE_HOME", str(home))  # restored after the test (the CLI sets the others)
        monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
        monkeypatch.setenv("PLAN_PIPELINE_DB", str(project.db_path))
        from plan_pipeline.cli.main import main

        status = main(["--home", str(home), "restore", str(backup), "--force"])
        stderr = capsys.readouterr().err
    finally:
        out, err = run.communicate(timeout=600)
    assert status == 1
    assert f"restore refused: plan runs are in progress: run {run_id} (version busy)" in stderr
    assert run.returncode == 0, f"{out}\n{err}"
    assert "succeeded" in err + out
    # the run's version is in the store, with its plan; nothing was moved aside
    with duckdb.connect(str(project.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'busy'").fetchall()[0][0] > 0
    assert not [p for p in home.iterdir() if ".pre-restore-" in p.name or ".restore-" in p.name]
    # once the run is over the same restore goes through and keeps the old store beside it
    assert main(["--home", str(home), "restore", str(backup), "--force"]) == 0
    assert present_versions(project) == {"old"}
    (kept,) = [p for p in home.iterdir() if ".pre-restore-" in p.name]
    with duckdb.connect(str(kept), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'busy'").fetchall()[0][0] > 0
