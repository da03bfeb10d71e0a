"""Archives, aged rows and backup files in the store (what retention, ``trim`` and ``backup`` call
through the unit of work). Marked ``both_backends``: on PostgreSQL a version's archive files are
also compared with a DuckDB twin's (same tables, columns, types and rows)."""
from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.maintenance import VERSION_TABLES
from plan_pipeline.timeutil import utc_now

pytestmark = pytest.mark.both_backends


def fill(store: PlanStore, sample_dir: Path) -> None:
    import_input_dir(store, sample_dir, "sample")
    for vid in ("v1", "v2"):
        store.create_version(vid, "sample", PlanningParameters())
        store.replace_series(vid, "det", pd.DataFrame({
            "family": ["FA"] * 3, "period": ["2025-01"] * 3, "sku": ["A1", "A1", "A2"],
            "week": ["2025-W01", "2025-W02", "2025-W01"], "demand": [1.0, 2.0, 3.0], "supply": [1.0, 2.0, 2.5],
            "supply_plan": [1.0, 2.0, 2.5], "backlog": [0.0, 0.0, 0.5]}))
        store.replace_kpis(vid, "summary", pd.DataFrame({
            "category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["all"],
            "value": [0.9], "unit": ["ratio"]}))
        store.record_override(vid, "det", "det:week=2025-W02,sku=A1", {"demand": 4.0}, lock=True, actor="ana")
        store.upsert_jobs([{"job_id": f"run-{vid}", "version_id": vid, "status": "success"}])
        store.put_artifact(vid, "report", "text/plain", b"hello")


@pytest.fixture
def stores(store: PlanStore, sample_dir) -> list[PlanStore]:
    both = [store] if not store.is_postgres else [
        store, PlanStore(Path(tempfile.mkdtemp(prefix="pgport-twin-")) / "twin.duckdb")]
    for each in both:
        fill(each, sample_dir)
    return both


def _content(store: PlanStore, vid: str) -> tuple:
    overrides = store.read_overrides(vid)[["id", "key_hash", "payload_json", "lock_flag"]].to_dict("records")
    return (store.read_series(vid, "det").to_dict("records"), store.read_kpis(vid, "summary").to_dict("records"),
            overrides, store.get_artifact(vid, "report"), store.list_jobs(vid)["job_id"].tolist(),
            store.read_override_events(vid)["event_type"].tolist())


def test_a_version_archived_removed_and_loaded_back_is_the_same(stores: list[PlanStore], tmp_path):
    archives = []
    for i, store in enumerate(stores):
        before = _content(store, "v1")
        folder = tmp_path / f"archive{i}"
        folder.mkdir()
        with store.snapshot() as tx:
            assert tx.version_archive_head("v1")[:2] == ("draft", "sample")
            files = tx.write_version_files("v1", folder)
        assert {t: n for t, (_, n) in files.items()} == {
            "plan_versions": 1, "plan_override_events": 2, "plan_overrides": 1, "plan_levels": 2, "plan_series": 3,
            "plan_kpis": 1, "plan_jobs": 1, "plan_artifacts": 1}
        with store.transaction() as tx:
            removed = tx.remove_version("v1", actor="ops", reason="trim", archive_path=str(folder))
        assert removed["plan_series"] == 3 and not store.find_version("v1")
        with store.transaction() as tx:
            for table in VERSION_TABLES:
                assert tx.load_table_file(table, files[table][0]) == files[table][1]
            tx.catch_up_sequences()
            tx.revive_version("v1", actor="ops", archive_path=str(folder))
        after = _content(store, "v1")
        assert after[:5] == before[:5] and after[5] == [*before[5], "delete", "restore"]
        assert _content(store, "v2")[2][0]["key_hash"] == "det:week=2025-W02,sku=A1"  # the other version untouched
        # the sequences hand out ids above the loaded ones
        store.record_override("v1", "det", "det:week=2025-W01,sku=A1", {"demand": 1.0})
        ids = store.read_overrides("v1")["id"].tolist()
        assert len(set(ids)) == 2 and max(ids) > max(store.read_overrides("v2")["id"].tolist())
        archives.append(files)
    for files in archives[1:]:
        for table, (path, _) in files.items():
            mine, theirs = pq.read_table(path), pq.read_table(archives[0][table][0])
            assert mine.schema.names == theirs.schema.names, table
            assert [str(t) for t in mine.schema.types] == [str(t) for t in theirs.schema.types], table


def test_aged_rows_file_and_backup_files(stores: list[PlanStore], tmp_path):
    tables = []
    for i, store in enumerate(stores):
        cutoff = utc_now() + timedelta(days=1)
        with store.snapshot() as tx:
            assert tx.count_aged_rows("plan_kpis", cutoff, ["v2"]) == 1
            assert tx.write_aged_rows_file("plan_kpis", cutoff, ["v2"], tmp_path / f"aged{i}.parquet") == 1
        aged = pq.read_table(tmp_path / f"aged{i}.parquet").to_pylist()
        assert [(r["version_id"], r["metric"], r["value"]) for r in aged] == [("v1", "fill_rate", 0.9)]
        folder = tmp_path / f"backup{i}"
        folder.mkdir()
        with store.snapshot() as tx:
            written = tx.write_all_table_files(folder)
            sequences = tx.sequence_state()
        counts = {t: n for t, (_, n) in written.items()}
        assert counts["plan_series"] == 6 and counts["plan_versions"] == 2 and counts["plan_overrides"] == 2
        assert counts["input_sets"] == 1 and set(counts) >= set(VERSION_TABLES)
        assert sequences["seq_plan_overrides"] == 2 and sequences["seq_plan_override_events"] == 4
        tables.append({t: n for t, n in counts.items() if t != "schema_migrations"})
    assert all(t == tables[0] for t in tables)


def test_a_backup_restores_into_a_new_store(store: PlanStore, sample_dir, tmp_path, request):
    """Backup files, then the backend's restore: a new DuckDB file (build_store_file) or an empty
    PostgreSQL database (restore_into_postgres, by COPY); the restored store reads the same."""
    from plan_pipeline.store.store_files import build_store_file, restore_into_postgres

    fill(store, sample_dir)
    folder = tmp_path / "backup"
    folder.mkdir()
    with store.snapshot() as tx:
        written = tx.write_all_table_files(folder)
        sequences = tx.sequence_state()
    tables = {t: {"file": path.name, "rows": n} for t, (path, n) in written.items()}
    if store.is_postgres:
        from plan_pipeline.store.backends.postgres import create_database, drop_database

        server = request.getfixturevalue("postgres_url")
        name = f"restored_{uuid.uuid4().hex[:12]}"
        url = create_database(server, name)
        request.addfinalizer(lambda: drop_database(server, name))
        loaded = restore_into_postgres(url, folder, tables, sequences)
        restored = PlanStore.from_url(url)
        with pytest.raises(PlanStoreError, match=r"holds \d+ rows: a backup is restored into an empty database"):
            restore_into_postgres(url, folder, tables, sequences)
    else:
        loaded = build_store_file(tmp_path / "restored.duckdb", folder, tables, sequences)
        restored = PlanStore(tmp_path / "restored.duckdb")
    assert loaded == {t: e["rows"] for t, e in tables.items()}
    assert restored.table_counts() == store.table_counts()
    for vid in ("v1", "v2"):
        assert _content(restored, vid) == _content(store, vid)
    restored.record_override("v1", "det", "det:week=2025-W01,sku=A1", {"demand": 1.0})
    assert restored.read_overrides("v1")["id"].max() == 3  # the sequence went on from the backup's
    restored.create_version("v3", "sample", PlanningParameters())
    restored.replace_series("v3", "det", store.read_series("v1", "det"))
    assert len(restored.read_series("v3", "det")) == 3


def test_the_store_size_and_giving_space_back(store: PlanStore, sample_dir):
    """What trim measures and calls after removing rows, on either backend: the DuckDB file's size
    and a CHECKPOINT, or the database's size (pg_database_size) and VACUUM (ANALYZE) of the plan
    tables (never a file named after the PostgreSQL URL)."""
    from plan_pipeline.store.maintenance import reclaim_store_space, store_size_bytes

    fill(store, sample_dir)
    assert store_size_bytes(store) > 0
    with store.transaction() as tx:
        tx.remove_version("v1", actor="ops", reason="trim", archive_path=None)
    assert reclaim_store_space(store) == ("VACUUM (ANALYZE)" if store.is_postgres else "CHECKPOINT")
    assert store_size_bytes(store) > 0 and store.store_metrics().size_bytes > 0
    assert store.path.exists() != store.is_postgres
    assert len(store.read_series("v2", "det")) == 3
