"""The plan write log (migration 6): every store write records (source, operation, level, rows) in
its own transaction; a refused or failed write records nothing; deletes keep the log; the
aggregates ``GET /metrics`` reads (``store_metrics``) equal the store's contents."""
from __future__ import annotations

from datetime import UTC, timedelta

import duckdb
import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanConflictError, PlanStore, PlanStoreError
from plan_pipeline.store.maintenance import store_file_bytes
from plan_pipeline.store.schema import MIGRATIONS, SCHEMA_VERSION
from plan_pipeline.store.write_log import OPERATIONS, WRITE_SOURCES
from plan_pipeline.timeutil import utc_now
from plan_pipeline_tests.store.test_repository import det_frame

KEY = "det:week=2025-W01,sku=A1"


def kpi_frame(value: float = 0.9) -> pd.DataFrame:
    return pd.DataFrame({"category": ["plan", "plan"], "metric": ["fill_rate", "backlog_total"],
                         "bucket_type": ["total", "total"], "bucket_key": ["total", "total"],
                         "value": [value, 12.0], "unit": ["ratio", "units"]})


def log_rows(store: PlanStore, version_id: str | None = None) -> list[tuple]:
    """(source, operation, version_id, level, rows, run_id) of the log, oldest first."""
    log = store.read_write_log(version_id)
    return [tuple(None if pd.isna(v) else v for v in r)
            for r in log[["source", "operation", "version_id", "level", "rows", "run_id"]].itertuples(index=False)]


@pytest.fixture
def planned(store: PlanStore, sample_dir):
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    return store


@pytest.mark.duckdb_only("upgrades a schema-5 DuckDB file (PostgreSQL stores start at the current schema)")
def test_migration_6_upgrades_a_schema_5_store_in_place(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # a store as release 5 left it, with a version in it
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL)")
        for number, name, statements in MIGRATIONS[:5]:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [number, name])
        con.execute("INSERT INTO plan_versions (version_id, status, round_mode, lt_unit, week_days, fallback_weeks, "
                    "blend_weight_mode, apply_adjusted, carryover, tol_abs, tol_rel, created_at, updated_at) "
                    "VALUES ('old', 'draft', 'none', 'week', 7, 4, 'tri', false, 'none', 0, 0, now(), now())")
        assert "plan_write_log" not in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    store = PlanStore(path)
    assert store.schema_version() == SCHEMA_VERSION >= 6  # migration 7 (narrow store) runs too
    assert store.table_counts()["plan_write_log"] == 0  # no history invented for older writes
    assert store.get_version("old").status == "draft"
    store.replace_series("old", "det", det_frame(), run_id="r1")
    assert log_rows(store) == [("cli", "replace", "old", "det", 6, "r1")]
    metrics = store.store_metrics()
    assert [(w.source, w.operation, w.level, w.writes, w.rows) for w in metrics.writes] == [
        ("cli", "replace", "det", 1, 6)]
    assert metrics.version_rows == [("old", "draft", 6)]


@pytest.mark.both_backends
def test_a_run_stages_and_publishes_with_the_dagster_source(planned: PlanStore):
    run = planned.writing_as("dagster")
    assert (run.path, run.write_source, planned.write_source) == (planned.path, "dagster", "cli")
    run.stage_series("v1", "det", det_frame(), run_id="run-1")
    run.stage_kpis("v1", "kpi", kpi_frame(), run_id="run-1")
    run.stage_not_applicable("v1", "anchored", "plan_series", run_id="run-1")
    run.publish_run("v1", ["run-1"], ["det", "kpi", "anchored"])
    assert log_rows(planned, "v1")[1:] == [  # [0]: the version's creation
        ("dagster", "stage", "v1", "det", 6, "run-1"),
        ("dagster", "stage", "v1", "kpi", 2, "run-1"),
        ("dagster", "stage", "v1", "anchored", 0, "run-1"),
        ("dagster", "publish", "v1", "det", 6, "run-1"),  # the applicable levels, in one INSERT
        ("dagster", "publish", "v1", "kpi", 2, "run-1"),
    ]
    assert log_rows(planned, "v1")[0] == ("cli", "create", "v1", "version", 1, None)


@pytest.mark.both_backends
def test_every_write_path_records_its_operation_level_and_rows(planned: PlanStore):
    api = planned.writing_as("api")  # another store object on the same store (a request of the API)
    api.record_override("v1", "det", KEY, {"demand": 5.0}, actor="ann")
    api.record_override("v1", "det", KEY, {"demand": 5.0}, actor="ann")  # no change: nothing written, nothing logged
    planned.record_override("v1", "det", KEY, {}, lock=True, actor="bob")  # the CLI's
    planned.replace_kpis("v1", "kpi", kpi_frame(), run_id="k1")
    planned.duplicate_version("v1", "v2", actor="bob")
    planned.transition_status("v1", "submitted", actor="bob")
    api.transition_status("v1", "approved", actor="ann")
    assert log_rows(planned, "v1")[1:] == [
        ("api", "override", "v1", "det", 1, None),
        ("cli", "override", "v1", "det", 1, None),
        ("cli", "replace", "v1", "kpi", 2, "k1"),
        ("cli", "submit", "v1", "version", 1, None),
        ("api", "approve", "v1", "version", 1, None),
    ]
    assert log_rows(planned, "v2") == [("cli", "duplicate", "v2", "version", 2, None)]  # the row + 1 edit copied
    inputs = log_rows(planned, None)[0]
    assert inputs[:4] == ("cli", "import_inputs", None, "inputs")
    assert inputs[4] == sum(planned.table_counts()[t] for t in planned.table_counts() if t.startswith("input_")
                            and t != "input_sets")
    assert {r[1] for r in log_rows(planned)} <= set(OPERATIONS)
    assert {r[0] for r in log_rows(planned)} <= set(WRITE_SOURCES)


@pytest.mark.both_backends
def test_a_refused_or_failed_write_records_nothing(planned: PlanStore):
    planned.replace_series("v1", "det", det_frame(), run_id="good")
    before = log_rows(planned)

    def explode(con):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        planned.replace_series("v1", "det", det_frame(offset=1.0), run_id="bad", _fault=explode)
    with pytest.raises(PlanStoreError, match="lacks column"):
        planned.stage_kpis("v1", "kpi", kpi_frame().drop(columns="unit"), run_id="r")
    planned.transition_status("v1", "submitted")
    planned.transition_status("v1", "approved")
    with pytest.raises(PlanConflictError):
        planned.record_override("v1", "det", KEY, {"demand": 1.0})  # frozen
    with pytest.raises(PlanConflictError):
        planned.stage_series("v1", "det", det_frame(), run_id="late")
    assert log_rows(planned)[len(before):] == [("cli", "submit", "v1", "version", 1, None),
                                               ("cli", "approve", "v1", "version", 1, None)]


@pytest.mark.both_backends
def test_deleting_a_version_keeps_its_write_log_and_logs_the_removal(planned: PlanStore):
    planned.replace_series("v1", "det", det_frame(), run_id="r1")
    planned.record_override("v1", "det", KEY, {"demand": 5.0})
    counts = {t: n for t, n in planned.table_counts().items() if t in ("plan_series", "plan_levels", "plan_overrides",
                                                                        "plan_override_events", "plan_versions")}
    removed = planned.delete_version("v1", actor="bob", reason="not needed")
    assert sum(removed.values()) == sum(counts.values())
    rows = log_rows(planned, "v1")
    assert [r[1] for r in rows] == ["create", "replace", "override", "delete"]  # the audit of writes survives
    assert rows[-1] == ("cli", "delete", "v1", "version", sum(removed.values()), None)
    assert planned.store_metrics().version_rows == []  # the gauge follows the versions that exist


@pytest.mark.both_backends
def test_trim_of_aged_rows_is_logged_by_table(planned: PlanStore):
    planned.record_override("v1", "det", KEY, {"demand": 5.0})
    with planned.transaction() as tx:
        assert tx.delete_aged_rows("plan_override_events", utc_now() - timedelta(days=1), []) == 0
        assert tx.delete_aged_rows("plan_override_events", utc_now() + timedelta(days=1), []) == 1
    assert log_rows(planned)[-1] == ("cli", "trim", None, "plan_override_events", 1, None)
    assert [r[1] for r in log_rows(planned)].count("trim") == 1  # nothing deleted, nothing logged


@pytest.mark.both_backends
def test_store_metrics_equal_the_store_contents(planned: PlanStore):
    planned.create_version("v2", "sample", PlanningParameters())
    dagster = planned.writing_as("dagster")
    dagster.stage_series("v1", "det", det_frame(), run_id="run-1")
    dagster.stage_series("v1", "aggregate", pd.DataFrame({
        "family": ["FA"], "period": ["2025-01"], "demand": [1.0], "supply": [1.0], "backlog": [0.0],
        "capacity_total": [3.0]}), run_id="run-1")
    dagster.stage_kpis("v1", "kpi", kpi_frame(), run_id="run-1")
    dagster.publish_run("v1", ["run-1"], ["det", "aggregate", "kpi"])
    dagster.stage_series("v2", "det", det_frame(n_weeks=2), run_id="run-2")  # staged only: not published rows
    planned.upsert_jobs([
        {"job_id": "run-1", "version_id": "v1", "job_name": "plan_job", "status": "success"},
        {"job_id": "run-2", "version_id": "v2", "job_name": "plan_job", "status": "started"},
        {"job_id": "t-1", "version_id": None, "job_name": "trim_job", "status": "failure"},
        {"job_id": "x-1", "version_id": None, "job_name": None, "status": "success"},
    ])
    metrics = planned.store_metrics()
    assert metrics.version_rows == [("v1", "draft", sum(planned.series_levels("v1").values())), ("v2", "draft", 0)]
    assert metrics.version_rows[0][2] == 7
    assert metrics.runs == [("plan_job", "started", 1), ("plan_job", "success", 1), ("trim_job", "failure", 1),
                            ("unknown", "success", 1)]
    if planned.is_postgres:  # the database's size (pg_database_size)
        assert metrics.size_bytes > 0
    else:
        assert metrics.size_bytes == store_file_bytes(planned.path) > 0
    totals = {(w.source, w.operation, w.level): (w.writes, w.rows) for w in metrics.writes}
    log = planned.read_write_log()
    assert totals == {k: (len(g), int(g["rows"].sum()))
                      for k, g in log.groupby(["source", "operation", "level"])}
    assert totals[("dagster", "stage", "det")] == (2, 10)
    assert totals[("dagster", "publish", "det")] == (1, 6)
    newest = max(w.last_write_epoch_seconds for w in metrics.writes)
    assert abs(newest - utc_now().replace(tzinfo=UTC).timestamp()) < 120  # epoch seconds of a UTC time
