"""The store operations from the command line on a PostgreSQL store (``PLAN_STORE_URL=postgresql://...``,
issue 15): ``backup`` and ``restore`` (into an empty database only), ``trim``, ``row-guard`` and
``restore-archived``; and the CLI's reads while a run writes (no lock waits).

Needs PostgreSQL's server binaries (the ``postgres_url`` fixture starts a server on loopback; each
test gets fresh databases): a missing server fails under CI and skips elsewhere.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest

from plan_pipeline.cli.main import main
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.operations.backup import list_backups, verify_backup
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError

#: The failure bound of a read that must not wait for a writer (a hang fails the test, never a timing).
NO_WAIT_BOUND_SECONDS = 120.0
T = TypeVar("T")


def det_frame(scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({
        "family": ["FA"] * 3, "period": ["2025-01"] * 3, "sku": ["A1", "A1", "A2"],
        "week": ["2025-W01", "2025-W02", "2025-W01"], "demand": [1.0 * scale, 2.0 * scale, 3.0 * scale],
        "supply": [1.0, 2.0, 2.5], "supply_plan": [1.0, 2.0, 2.5], "backlog": [0.0, 0.0, 0.5]})


def fill(store: PlanStore, sample_dir: Path, versions=("v1", "v2")) -> None:
    """An input set, versions with a published ``det`` level, KPIs, an override and its events, a job row."""
    import_input_dir(store, sample_dir, "sample")
    for vid in versions:
        store.create_version(vid, "sample", PlanningParameters())
        store.replace_series(vid, "det", det_frame())
        store.replace_kpis(vid, "summary", pd.DataFrame({
            "category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["all"],
            "value": [0.9], "unit": ["ratio"]}))
        store.record_override(vid, "det", "det:week=2025-W02,sku=A1", {"demand": 4.0}, lock=True, actor="ana")
        store.upsert_jobs([{"job_id": f"run-{vid}", "version_id": vid, "status": "success"}])


def content(store: PlanStore, vid: str) -> tuple:
    overrides = store.read_overrides(vid)[["id", "key_hash", "payload_json", "lock_flag"]].to_dict("records")
    return (store.read_series(vid, "det").to_dict("records"), store.read_kpis(vid, "summary").to_dict("records"),
            overrides, store.list_jobs(vid)["job_id"].tolist(), store.read_override_events(vid)["event_type"].tolist())


class _Abandon(Exception):
    """Raised inside the held transaction to roll it back."""


@contextmanager
def held_writer(store: PlanStore, writer_kind: str) -> Iterator[threading.Thread]:
    """A thread holding version v1's write transaction open (its advisory lock; ``replace``: v1's
    published ``det`` rows deleted and new ones inserted, ``stage``: a plan run's staged level
    inserted; not committed) for the ``with`` body; then rolled back, and v1's rows checked unchanged."""
    published = store.read_series("v1", "det")
    entered, release = threading.Event(), threading.Event()
    writer_error: list[BaseException] = []

    def hold(_con) -> None:
        entered.set()
        if not release.wait(NO_WAIT_BOUND_SECONDS * 2):
            raise RuntimeError("the test never released the writer")
        raise _Abandon()  # roll the write back: the store stays as it was

    def write() -> None:
        try:
            if writer_kind == "replace":
                store.replace_series("v1", "det", det_frame(scale=100.0), _fault=hold)
            else:
                store.stage_series("v1", "det", det_frame(scale=100.0), run_id="run-held", _fault=hold)
        except _Abandon:
            pass
        except BaseException as exc:  # reported below
            writer_error.append(exc)
            entered.set()

    writer = threading.Thread(target=write, name="v1-writer", daemon=True)
    writer.start()
    try:
        assert entered.wait(NO_WAIT_BOUND_SECONDS), "the writer never reached its open transaction"
        assert not writer_error, writer_error
        yield writer
    finally:
        release.set()
        writer.join(NO_WAIT_BOUND_SECONDS)
    assert not writer.is_alive() and not writer_error, writer_error
    pd.testing.assert_frame_equal(store.read_series("v1", "det"), published)


def without_waiting(reads: Callable[[], T], who: str) -> T:
    """``reads()`` in a thread of its own: its answer, or a failure when it is not back within
    :data:`NO_WAIT_BOUND_SECONDS` (it waited for the writer) or raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = reads()
        except BaseException as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=run, name="reader", daemon=True)
    reader.start()
    reader.join(NO_WAIT_BOUND_SECONDS)
    assert not reader.is_alive(), f"{who} waited for the writer of v1"
    assert "error" not in outcome, outcome.get("error")
    return outcome["answer"]


@pytest.fixture
def pg_cli(plan_env, postgres_store_url, monkeypatch, sample_dir) -> PlanStore:
    """The CLI on a PostgreSQL store holding two versions (the project home's Dagster instance beside it)."""
    monkeypatch.setenv("PLAN_STORE_URL", postgres_store_url)
    store = PlanStore.from_url(postgres_store_url)
    fill(store, sample_dir)
    return store


@pytest.fixture
def empty_database(postgres_url, request) -> str:
    from plan_pipeline.store.backends.postgres import create_database, drop_database

    name = f"restore_{uuid.uuid4().hex[:12]}"
    url = create_database(postgres_url, name)
    request.addfinalizer(lambda: drop_database(postgres_url, name))
    return url


def test_backup_and_restore_into_an_empty_postgres_database(pg_cli, empty_database, plan_env, monkeypatch,
                                                            tmp_path, capsys):
    store = pg_cli
    assert main(["backup", "--out", str(tmp_path / "backups")]) == 0
    assert "backup " in capsys.readouterr().out
    (backup,) = list_backups(tmp_path / "backups")
    manifest = verify_backup(backup)
    assert manifest["backend"] == "postgres" and "postgresql_version" in manifest
    assert manifest["source_db"].startswith("postgresql://") and ":" not in manifest["source_db"].split("@")[0][13:]
    assert {t: e["rows"] for t, e in manifest["tables"].items()} == store.table_counts()
    assert not plan_env.db_path.exists()  # no DuckDB file was made on the way

    # into the database holding the rows: refused, nothing changes (no file to keep: no --force either)
    before = store.table_counts()
    assert main(["restore", str(backup)]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "empty database" in err and "PLAN_STORE_URL" in err
    assert main(["restore", str(backup), "--force"]) == 1
    assert "--force cannot replace the PostgreSQL store" in capsys.readouterr().err
    assert store.table_counts() == before

    # into an empty database: every table and sequence as backed up; the versions are partitions again
    monkeypatch.setenv("PLAN_STORE_URL", empty_database)
    assert main(["restore", str(backup)]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "2 plan version(s) registered" in out
    restored = PlanStore.from_url(empty_database)
    assert restored.table_counts() == store.table_counts()
    for vid in ("v1", "v2"):
        assert content(restored, vid) == content(store, vid)
    assert restored.record_override("v1", "det", "det:week=2025-W01,sku=A1", {"demand": 1.0})["override_id"] == 3
    assert set(plan_env.instance().get_dynamic_partitions("plan_version")) >= {"v1", "v2"}
    # restored once: a second restore into the same database is refused like any database with rows
    assert main(["restore", str(backup)]) == 1
    assert "holds" in capsys.readouterr().err


def test_a_backup_restores_into_its_own_backend_only(pg_cli, plan_env, monkeypatch, tmp_path, capsys, sample_dir):
    assert main(["backup", "--out", str(tmp_path / "pg")]) == 0
    (pg_backup,) = list_backups(tmp_path / "pg")
    # a PostgreSQL store's backup into a DuckDB file (--db wins over PLAN_STORE_URL): refused, no file made
    target = tmp_path / "restored.duckdb"
    assert main(["--db", str(target), "restore", str(pg_backup)]) == 1
    assert "is of a PostgreSQL plan store" in capsys.readouterr().err
    assert not target.exists()
    # a DuckDB store's backup into PostgreSQL: refused, naming what to do instead
    duck = PlanStore(tmp_path / "duck.duckdb")
    fill(duck, sample_dir, versions=("d1",))
    assert main(["--db", str(duck.path), "backup", "--out", str(tmp_path / "duck")]) == 0
    (duck_backup,) = list_backups(tmp_path / "duck")
    assert verify_backup(duck_backup)["backend"] == "duckdb"
    capsys.readouterr()
    monkeypatch.setenv("PLAN_STORE_URL", pg_cli.location.url)  # main(--db) pointed this process at the file
    assert main(["restore", str(duck_backup)]) == 1
    assert "is of a DuckDB plan store" in capsys.readouterr().err
    assert pg_cli.find_version("d1") is None


def test_trim_row_guard_and_restore_archived_on_postgres(pg_cli, tmp_path, capsys):
    store = pg_cli
    v1 = content(store, "v1")
    archive = tmp_path / "archive"
    assert main(["trim", "--dry-run", "--max-versions", "1", "--archive-dir", str(archive)]) == 0
    assert "would remove version v1" in capsys.readouterr().out
    assert store.find_version("v1") is not None

    assert main(["trim", "--max-versions", "1", "--kpi-max-age-months", "0", "--archive-dir", str(archive),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [v["version_id"] for v in report["versions"]] == ["v1"]
    assert report["kpi_rows_trimmed"] == 1  # v2's (v1's left with v1, in its archive)
    assert report["reclaimed_by"] == "VACUUM (ANALYZE)"
    assert report["bytes_before"] > 0 and report["bytes_after"] > 0
    assert report["bytes_reclaimed"] == report["bytes_before"] - report["bytes_after"]
    assert store.find_version("v1") is None and (archive / "v1" / "archive.json").is_file()

    assert main(["restore-archived", "v1", "--archive-dir", str(archive)]) == 0
    assert "restored plan version 'v1'" in capsys.readouterr().out
    restored = content(store, "v1")
    assert restored[:4] == v1[:4] and restored[4] == [*v1[4], "delete", "restore"]

    assert main(["row-guard", "--max-rows", "3", "--archive-dir", str(tmp_path / "guard"), "--json"]) == 0
    guard = json.loads(capsys.readouterr().out)
    assert guard["rows_before"] == 6 and guard["rows_after"] == 3 and len(guard["versions"]) == 1
    assert len(store.list_versions()) == 1


def test_maintenance_reports_the_postgres_database_size(pg_cli):
    from plan_pipeline.store.maintenance import reclaim_store_space, store_size_bytes

    assert store_size_bytes(pg_cli) > 0 and pg_cli.store_metrics().size_bytes > 0
    assert reclaim_store_space(pg_cli) == "VACUUM (ANALYZE)"
    assert not pg_cli.path.exists()  # nothing was done on a file named after the URL


def test_a_backup_of_a_missing_duckdb_store_is_refused_but_postgres_is_always_there(tmp_path):
    from plan_pipeline.operations.backup import create_backup

    with pytest.raises(PlanStoreError, match="does not exist; nothing to back up"):
        create_backup(PlanStore(tmp_path / "none.duckdb"), tmp_path / "out")


@pytest.mark.parametrize("writer_kind", ["replace", "stage"])
def test_the_cli_reads_while_a_run_writes_the_version_on_postgres(pg_cli, tmp_path, capsys, writer_kind):
    """A writer holds version v1's write transaction (its advisory lock; ``replace``: v1's published
    ``det`` rows deleted and new ones inserted, ``stage``: a plan run's staged level inserted; not
    committed): the CLI's reads of the same database -- ``version
    list``/``show``, ``export`` of v1, ``diff`` v1 v2, the overrides, ``backup``, ``trim --dry-run``,
    the PSI grid -- answer without waiting, and see v1's previously published rows. The writer then
    fails: nothing changes."""
    store = pg_cli
    published = store.read_series("v1", "det")

    def reads() -> dict[str, Any]:
        return {
            "list": main(["version", "list"]),
            "show": main(["version", "show", "v1"]),
            "export": main(["export", "v1", "--format", "csv", "--out", str(tmp_path / "export")]),
            "diff": main(["diff", "v1", "v2", "--level", "det", "--json"]),
            "overrides": main(["override", "list", "v1"]),
            "backup": main(["backup", "--out", str(tmp_path / "backups")]),
            "trim": main(["trim", "--dry-run", "--archive-dir", str(tmp_path / "archive")]),
            "psi": store.psi_cells("v1", "det"),
            "series": store.read_series("v1", "det"),
        }

    with held_writer(store, writer_kind) as writer:
        outcome = without_waiting(reads, "the CLI's reads")
        assert [outcome[k] for k in ("list", "show", "export", "diff", "overrides", "backup", "trim")] == [0] * 7
        pd.testing.assert_frame_equal(outcome["series"], published)  # the last committed rows
        assert len(outcome["psi"]) > 0
        out = capsys.readouterr().out
        assert "v1" in out and "v2" in out
        exported = next((tmp_path / "export").glob("*.csv"), None)
        assert exported is not None
        (backup,) = list_backups(tmp_path / "backups")  # v1's last committed rows, not the writer's
        assert verify_backup(backup)["tables"]["plan_series"]["rows"] == 6
        assert writer.is_alive()  # the writer was holding its transaction the whole time

def test_the_legacy_import_runs_on_postgres(reference_dir, plan_env, postgres_store_url, monkeypatch, capsys):
    """``legacy-import`` (an in-process Dagster run of the legacy_import job) imports the reference
    legacy folder into the PostgreSQL store ``PLAN_STORE_URL`` names; ``legacy-import-runs`` lists it."""
    from .legacy_helpers import LEGACY_VERSIONS, legacy_dir

    monkeypatch.setenv("PLAN_STORE_URL", postgres_store_url)
    assert main(["legacy-import", "--source", str(legacy_dir())]) == 0
    capsys.readouterr()
    assert main(["legacy-import-runs", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["status"], run["versions_imported"]) == ("success", len(LEGACY_VERSIONS))
    store = PlanStore.from_url(postgres_store_url)
    assert {v.version_id for v in store.list_versions()} == set(LEGACY_VERSIONS)
    assert set(plan_env.instance().get_dynamic_partitions("plan_version")) == set(LEGACY_VERSIONS)
    assert not plan_env.db_path.exists()
