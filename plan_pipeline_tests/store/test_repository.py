"""Plan store repository: migrations, atomic level replace, cascade delete, audit survival, round trips."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.schema import SCHEMA_VERSION, VERSION_CHILD_TABLES


def det_frame(n_weeks: int = 3, offset: float = 0.0) -> pd.DataFrame:
    rows = []
    for sku in ("A1", "A2"):
        for w in range(1, n_weeks + 1):
            rows.append(("FA", "2025-01", sku, f"2025-W0{w}", 10.0 * w + offset, 5.0 * w, 5.0 * w, 5.0 * w + offset))
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


@pytest.fixture
def version_store(store: PlanStore, sample_dir):
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    return store


@pytest.mark.duckdb_only("DuckDB's migration chain and catalog (PostgreSQL's: test_postgres_store.py)")
def test_migrations_apply_once_and_record_schema_version(store: PlanStore):
    assert store.initialise() == SCHEMA_VERSION
    # reopening applies nothing new and keeps one row per migration
    again = PlanStore(store.path)
    assert again.schema_version() == SCHEMA_VERSION
    with duckdb.connect(str(store.path)) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        # since migration 7 plan_series is a view over typed tables (store/series_tables.py)
        tables |= {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    for table in ("input_sets", "plan_versions", "plan_series", "plan_kpis", "plan_overrides",
                  "plan_override_events", "plan_jobs", "plan_backfill_runs", "plan_artifacts"):
        assert table in tables


@pytest.mark.duckdb_only("upgrades a schema-1 DuckDB file (PostgreSQL stores start at the current schema)")
def test_migration_2_moves_detail_supply_plan_out_of_json(tmp_path):
    """A store written at schema 1 (supply_plan in extra_json) reads back the same frame after upgrade."""
    from plan_pipeline.store.schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL)")
        _number, name, statements = MIGRATIONS[0]
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_migrations VALUES (1, ?, now()::TIMESTAMP)", [name])
        con.execute("INSERT INTO plan_versions (version_id, status, round_mode, lt_unit, week_days, fallback_weeks, "
                    "blend_weight_mode, apply_adjusted, carryover, tol_abs, tol_rel, created_at, updated_at) "
                    "VALUES ('old', 'draft', 'none', 'week', 7, 4, 'tri', false, 'none', 0, 0, now(), now())")
        for seq, (week, plan, other) in enumerate([("2025-W01", 7.5, None), ("2025-W02", 8.0, "x")]):
            extra = {"supply_plan": plan} if other is None else {"supply_plan": plan, "note": other}
            con.execute(
                "INSERT INTO plan_series (version_id, level, row_seq, time_bucket_type, time_bucket_key, period_key, "
                "item_key, family_key, demand, supply, backlog, extra_json, created_at, updated_at) "
                "VALUES ('old', 'det', ?, 'week', ?, '2025-01', 'A1', 'FA', 10, 7, 3, ?, now(), now())",
                [seq, week, json.dumps(extra)],
            )
        columns = [{"name": n, "dtype": t} for n, t in [("family", "str"), ("period", "str"), ("sku", "str"),
                   ("week", "str"), ("demand", "float"), ("supply", "float"), ("supply_plan", "float"),
                   ("backlog", "float")]]
        con.execute("INSERT INTO plan_series_layouts VALUES ('old', 'det', ?, '{}', 2, NULL, now())",
                    [json.dumps(columns)])
    store = PlanStore(path)
    frame = store.read_series("old", "det")
    assert store.schema_version() == SCHEMA_VERSION >= 2
    assert frame["supply_plan"].tolist() == [7.5, 8.0]
    assert frame["supply"].tolist() == [7.0, 7.0]
    with duckdb.connect(str(path)) as con:
        extras = [json.loads(r[0]) for r in con.execute(
            "SELECT extra_json FROM plan_series ORDER BY row_seq").fetchall()]
        typed = [r[0] for r in con.execute("SELECT supply_plan FROM plan_series ORDER BY row_seq").fetchall()]
    assert extras == [{}, {"note": "x"}]
    assert typed == [7.5, 8.0]


@pytest.mark.both_backends
def test_series_round_trip_keeps_columns_dtypes_and_order(version_store: PlanStore):
    frame = det_frame()
    frame = frame.iloc[::-1].reset_index(drop=True)  # a non-sorted natural order must survive
    assert version_store.replace_series("v1", "det", frame, run_id="run-1") == len(frame)
    back = version_store.read_series("v1", "det")
    pd.testing.assert_frame_equal(back, frame)
    rows = version_store.read_series_rows("v1", "det")
    assert set(rows["source_run_id"]) == {"run-1"}
    assert list(rows["time_bucket_type"].unique()) == ["week"]


@pytest.mark.both_backends
def test_shared_week_fragments_stay_separate_rows(version_store: PlanStore):
    frame = pd.DataFrame(
        [("F", "2025-01", "S", "2025-W05", 9.0, 9.0, 9.0, 0.0), ("F", "2025-02", "S", "2025-W05", 5.0, 5.0, 5.0, 0.0)],
        columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"],
    )
    version_store.replace_series("v1", "det", frame)
    rows = version_store.read_series_rows("v1", "det")
    assert list(rows["period_key"]) == ["2025-01", "2025-02"]
    assert rows["demand"].sum() == 14.0
    pd.testing.assert_frame_equal(version_store.read_series("v1", "det"), frame)


@pytest.mark.both_backends
def test_replace_is_atomic_when_the_write_fails_midway(version_store: PlanStore):
    old = det_frame()
    version_store.replace_series("v1", "det", old, run_id="good")

    def explode(con):
        # inside this transaction the old rows are already gone and the new ones written
        assert con.execute("SELECT DISTINCT source_run_id FROM plan_series WHERE version_id='v1' AND level='det'"
                           ).fetchall() == [("bad",)]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        version_store.replace_series("v1", "det", det_frame(offset=100.0), run_id="bad", _fault=explode)
    pd.testing.assert_frame_equal(version_store.read_series("v1", "det"), old)
    assert set(version_store.read_series_rows("v1", "det")["source_run_id"]) == {"good"}


@pytest.mark.both_backends
def test_replace_is_atomic_on_a_duplicate_key(version_store: PlanStore):
    old = det_frame()
    version_store.replace_series("v1", "det", old)
    duplicated = pd.concat([det_frame(offset=1.0), det_frame(offset=1.0).head(1)], ignore_index=True)
    with pytest.raises(PlanStoreError, match=r"duplicate key \(week='2025-W01', period='2025-01', sku='A1'\) appears 2 times"):
        version_store.replace_series("v1", "det", duplicated)
    pd.testing.assert_frame_equal(version_store.read_series("v1", "det"), old)


@pytest.mark.both_backends
def test_replace_only_touches_its_level(version_store: PlanStore):
    version_store.replace_series("v1", "det", det_frame())
    agg = pd.DataFrame({"family": ["FA"], "period": ["2025-01"], "demand": [1.0], "supply": [1.0],
                        "backlog": [0.0], "capacity_total": [3.0]})
    version_store.replace_series("v1", "aggregate", agg)
    version_store.replace_series("v1", "det", det_frame(n_weeks=2))
    assert version_store.series_levels("v1") == {"aggregate": 1, "det": 4}
    assert version_store.read_series_rows("v1", "aggregate")["time_bucket_type"].tolist() == ["month"]


@pytest.mark.both_backends
def test_writes_for_an_unknown_version_are_refused(version_store: PlanStore):
    with pytest.raises(PlanStoreError, match="unknown plan version 'nope'"):
        version_store.replace_series("nope", "det", det_frame())
    with pytest.raises(PlanStoreError, match="frame lacks column"):
        version_store.replace_series("v1", "det", det_frame().drop(columns=["week"]))


@pytest.mark.both_backends
def test_audit_events_survive_a_rewrite_of_plan_rows(version_store: PlanStore):
    version_store.replace_series("v1", "det", det_frame())
    version_store.record_override("v1", "det", "det:week=2025-W01,sku=A1", {"demand": 42.0}, actor="ana", notes="promo")
    version_store.record_override("v1", "det", "det:week=2025-W01,sku=A1", {}, lock=True, actor="ana")
    version_store.replace_series("v1", "det", det_frame(offset=3.0))
    version_store.replace_kpis("v1", "report", pd.DataFrame(
        {"category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["total"],
         "value": [0.9], "unit": ["ratio"]}))
    events = version_store.read_override_events("v1")
    assert events["event_type"].tolist() == ["edit", "lock"]
    assert events["actor"].tolist() == ["ana", "ana"]
    overrides = version_store.read_overrides("v1")
    assert len(overrides) == 1 and bool(overrides["lock_flag"].iat[0]) is True


@pytest.mark.both_backends
def test_delete_version_cascades_every_child_table(version_store: PlanStore):
    store = version_store
    store.create_version("v2", "sample", PlanningParameters())
    for v in ("v1", "v2"):
        store.replace_series(v, "det", det_frame())
        store.replace_kpis(v, "report", pd.DataFrame(
            {"category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["total"],
             "value": [1.0], "unit": ["ratio"]}))
        store.record_override(v, "det", "det:week=2025-W01,sku=A1", {"demand": 1.0})
        store.put_artifact(v, "aggregate.json", {"rows": []})
        store.upsert_jobs([{"job_id": f"run-{v}", "version_id": v, "status": "success"}])
    removed = store.delete_version("v1")
    assert removed["plan_series"] == 6 and removed["plan_kpis"] == 1 and removed["plan_jobs"] == 1
    assert removed["plan_override_events"] == 1 and removed["plan_overrides"] == 1 and removed["plan_artifacts"] == 1
    with store.connect() as con:
        for table in (*VERSION_CHILD_TABLES, "plan_versions"):
            left = con.execute(f"SELECT event_type FROM {table} WHERE version_id = 'v1'").fetchall() \
                if table == "plan_override_events" else \
                con.execute(f"SELECT count(*) FROM {table} WHERE version_id = 'v1'").fetchone()[0]
            # only the audit trail's 'delete' event outlives the version
            assert left == ([("delete",)] if table == "plan_override_events" else 0), table
        # the other version is untouched
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'v2'").fetchone()[0] == 6
    with pytest.raises(PlanStoreError, match="unknown plan version 'v1'"):
        store.delete_version("v1")


@pytest.mark.both_backends
def test_input_set_import_is_immutable_and_idempotent(store: PlanStore, sample_dir, tmp_path):
    import shutil

    first = import_input_dir(store, sample_dir, "base")
    assert first.status == "created"
    again = import_input_dir(store, sample_dir, "base")
    assert again.status == "unchanged" and again.content_hash == first.content_hash
    changed = tmp_path / "changed"
    shutil.copytree(sample_dir, changed)
    demand = changed / "demand_family.csv"
    demand.write_text(demand.read_text() + demand.read_text().splitlines()[1] + "\n")
    with pytest.raises(PlanStoreError, match="already used by different content"):
        import_input_dir(store, changed, "base")
    # the same content under another label is fine, and reads back identically
    import_input_dir(store, changed, "base-2")
    assert store.load_input_set("base").demand_family.shape[0] + 1 == store.load_input_set("base-2").demand_family.shape[0]


@pytest.mark.both_backends
def test_loaded_input_set_equals_the_parsed_folder(store: PlanStore, sample_dir):
    from plan_pipeline.inputs.loader import load_input_dir

    import_input_dir(store, sample_dir, "s")
    parsed = load_input_dir(sample_dir)
    loaded = store.load_input_set("s")
    for name in ("demand_family", "capacity", "mix_share", "item", "inventory", "open_po", "bom"):
        pd.testing.assert_frame_equal(loaded.table(name), parsed.table(name), check_dtype=True)
    assert loaded.calendar == parsed.calendar


@pytest.mark.both_backends
@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 65, "..", ".hidden", "a b"])
def test_identifiers_cannot_traverse_paths(store: PlanStore, bad):
    with pytest.raises(PlanStoreError, match="invalid version id"):
        store.create_version(bad, None, PlanningParameters())


@pytest.mark.both_backends
def test_kpi_round_trip(version_store: PlanStore):
    frame = pd.DataFrame({
        "category": ["plan", "plan", "capacity"],
        "metric": ["fill_rate", "backlog_total", "utilization"],
        "bucket_type": ["total", "month", "week"],
        "bucket_key": ["total", "2025-01", "2025-W02"],
        "value": [0.875, 12.0, np.nan],
        "unit": ["ratio", "units", None],
    })
    version_store.replace_kpis("v1", "report", frame, run_id="r")
    back = version_store.read_kpis("v1", "report")
    assert back["metric"].tolist() == ["fill_rate", "backlog_total", "utilization"]
    assert back["value"].iloc[:2].tolist() == [0.875, 12.0] and np.isnan(back["value"].iat[2])
    assert set(back["source_run_id"]) == {"r"}


@pytest.mark.both_backends
def test_creating_an_existing_version_is_refused_and_keeps_it(version_store: PlanStore):
    before = version_store.get_version("v1")
    with pytest.raises(PlanStoreError, match="plan version 'v1' already exists"):
        version_store.create_version("v1", "sample", PlanningParameters(round_mode="none"))
    after = version_store.get_version("v1")
    assert after.created_at == before.created_at and after.params.round_mode == "int"


@pytest.mark.both_backends
def test_detail_frame_without_supply_plan_round_trips(version_store: PlanStore):
    frame = det_frame().drop(columns=["supply_plan"])
    version_store.replace_series("v1", "det", frame)
    back = version_store.read_series("v1", "det")
    pd.testing.assert_frame_equal(back, frame)
    rows = version_store.read_series_rows("v1", "det")
    assert rows["supply_plan"].isna().all()


@pytest.mark.duckdb_only("DuckDB's memory_limit setting for bulk writes")
def test_bulk_write_memory_limit_is_configurable_and_validated(version_store: PlanStore, monkeypatch):
    from plan_pipeline.store.repository import WRITE_MEMORY_LIMIT_ENV, bulk_write_memory_limit

    assert bulk_write_memory_limit() == "256MB"
    monkeypatch.setenv(WRITE_MEMORY_LIMIT_ENV, "1GB")
    assert bulk_write_memory_limit() == "1GB"
    with version_store.write(bulk=True) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").lower() in {"1gb", "953.6mib", "1000.0mb"}, limit
    monkeypatch.setenv(WRITE_MEMORY_LIMIT_ENV, "1GB; DROP TABLE plan_series")
    with pytest.raises(PlanStoreError, match="PLAN_PIPELINE_WRITE_MEMORY_LIMIT"):
        version_store.replace_series("v1", "det", det_frame())
    monkeypatch.setenv(WRITE_MEMORY_LIMIT_ENV, "64MB")
    assert version_store.replace_series("v1", "det", det_frame()) == 6


@pytest.mark.both_backends
def test_series_keys_are_checked_before_anything_is_written(version_store: PlanStore):
    version_store.replace_series("v1", "det", det_frame())
    before = version_store.read_series("v1", "det")

    empty = det_frame()
    empty.loc[2, "sku"] = None
    with pytest.raises(PlanStoreError, match="key column 'sku' has empty values"):
        version_store.replace_series("v1", "det", empty)
    # no period and '' are the same plan_series period key: two such rows collide
    blank = det_frame().head(2).assign(period=[None, ""], week="2025-W01", sku="A1")
    with pytest.raises(PlanStoreError, match=r"duplicate key \(week='2025-W01', period='', sku='A1'\) appears 2"):
        version_store.replace_series("v1", "det", blank)
    # the same week of two months is two keys, not a duplicate
    shared = det_frame().head(2).assign(period=["2025-01", "2025-02"], week="2025-W05", sku="A1")
    assert version_store.replace_series("v1", "det_adjusted", shared) == 2
    pd.testing.assert_frame_equal(version_store.read_series("v1", "det"), before)


@pytest.mark.both_backends
def test_mrp_alias_column_must_equal_its_original(version_store: PlanStore):
    mrp = pd.DataFrame({
        "item": ["A", "A"], "sku": ["A", "B"], "week": ["2025-W01", "2025-W02"],
        **{c: [1.0, 2.0] for c in ("gross_req", "scheduled_receipts", "on_hand_start", "net_req",
                                   "planned_order_receipt", "planned_order_release", "lot", "moq", "on_hand_end")},
        "lt_weeks": [1, 1],
    })
    with pytest.raises(PlanStoreError, match="column 'sku' must equal 'item'"):
        version_store.replace_series("v1", "mrp", mrp)
    mrp["sku"] = mrp["item"]
    assert version_store.replace_series("v1", "mrp", mrp) == 2
    pd.testing.assert_frame_equal(version_store.read_series("v1", "mrp"), mrp)


@pytest.mark.both_backends
def test_a_failed_plan_write_reports_its_real_error_and_keeps_the_previous_rows(version_store: PlanStore):
    """A write that the database refuses (here: an empty demand for a NOT NULL column) fails with
    the database's own message, not with "Current transaction is aborted" from a statement run
    after it, and the level keeps its previous rows."""
    version_store.replace_series("v1", "det", det_frame(), run_id="good")
    before = version_store.read_series("v1", "det")
    broken = det_frame()
    broken["demand"] = broken["demand"].astype(object)
    broken.loc[0, "demand"] = None
    if version_store.is_postgres:
        import psycopg

        refused = pytest.raises(psycopg.errors.NotNullViolation, match='null value in column "demand"')
    else:
        refused = pytest.raises(duckdb.ConstraintException, match="NOT NULL constraint failed")
    with refused:
        version_store.stage_series("v1", "det", broken, run_id="bad")
    pd.testing.assert_frame_equal(version_store.read_series("v1", "det"), before)
    assert version_store.level_state("v1", "det", "bad") is None


@pytest.mark.both_backends
def test_duplicate_version_copies_the_version_and_its_overrides_in_one_transaction(version_store: PlanStore):
    store = version_store
    store.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 4.0}, lock=True, actor="ana")
    store.record_override("v1", "det", "det:week=2025-W03,sku=A2", {"supply": 1.0}, actor="bo")
    params = PlanningParameters(round_mode="dec1")
    copy = store.duplicate_version("v1", "v2", params=params, actor="cy")
    assert (copy.input_set, copy.status, copy.read_only, copy.note) == ("sample", "draft", False, "duplicate of v1")
    assert copy.params == params
    assert store.detail_overrides("v2") == store.detail_overrides("v1") and len(store.detail_overrides("v2")) == 2
    copied = store.read_overrides("v2")
    assert copied["author"].tolist() == ["ana", "bo"] and copied["locked_by"].tolist() == ["ana", None]
    events = store.read_override_events("v2")
    assert events["event_type"].tolist() == ["duplicate"] and events["actor"].tolist() == ["cy"]
    assert json.loads(events["payload_json"].iloc[0]) == {"from": "v1", "overrides": 2}
    # without params the source's stored parameters are carried over
    assert store.duplicate_version("v1", "v3").params == store.get_version("v1").params


@pytest.mark.both_backends
def test_duplicate_version_refuses_and_writes_nothing(version_store: PlanStore, monkeypatch):
    store = version_store
    store.record_override("v1", "det", "det:week=2025-W02,sku=A1", {"demand": 4.0})
    store.create_version("gone", "sample", PlanningParameters())
    store.delete_version("gone", reason="test")
    store.create_version("imp", None, PlanningParameters(), status="imported", read_only=True)
    for source, new, message in (
        ("v1", "v1", "plan version 'v1' already exists"),
        ("v1", "gone", "version ids are never reused"),
        ("nope", "x", "unknown plan version 'nope'"),
        ("imp", "x", "has no input set (imported read-only version)"),
        ("v1", "a/b", "invalid version id"),
    ):
        with pytest.raises(PlanStoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
            store.duplicate_version(source, new)
    assert {v.version_id for v in store.list_versions()} == {"v1", "imp"}
    assert len(store.read_overrides("v1")) == 1 and store.read_overrides("x").empty
    # a crash inside the transaction (after the version row, before the overrides) leaves nothing
    from plan_pipeline.store import versions

    def boom(*args, **kwargs):
        raise RuntimeError("crash")

    monkeypatch.setattr(versions, "insert_version_event", boom)
    with pytest.raises(RuntimeError):
        store.duplicate_version("v1", "half")
    assert store.find_version("half") is None and store.read_overrides("half").empty


@pytest.mark.both_backends
def test_free_version_id_skips_taken_and_deleted_ids(version_store: PlanStore, monkeypatch):
    from plan_pipeline.store import versions

    monkeypatch.setattr(versions, "generated_version_id", lambda: "v20250101-000000")
    store = version_store
    assert store.free_version_id() == "v20250101-000000"
    store.create_version("v20250101-000000", "sample", PlanningParameters())
    store.create_version("v20250101-000000-2", "sample", PlanningParameters())
    store.delete_version("v20250101-000000-2")
    assert store.free_version_id() == "v20250101-000000-3"
    assert store.duplicate_version("v1").version_id == "v20250101-000000-3"


@pytest.mark.duckdb_only("DuckDB's Arrow read path (PostgreSQL's: test_postgres_store.py)")
def test_series_read_keeps_nullable_and_extra_columns_exactly(version_store: PlanStore):
    """read_series reads through Arrow: every dtype the frame was written with comes back
    (nullable ints and bools as Int64 / boolean, text NULL as None, NaN floats), equal to the
    frame DuckDB's ``.df()`` gave after the former per-column dtype fix-up."""
    import json as json_module

    from plan_pipeline.store.layouts import layout_for
    from plan_pipeline.store.series_mapping import _read_series_sql, _restore_dtypes

    frame = det_frame()
    n = len(frame)
    frame["flag"] = [True, False] * (n // 2)
    frame["flag_na"] = pd.array([True, None] * (n // 2), dtype="boolean")
    frame["count"] = np.arange(n, dtype=np.int64) - 2
    frame["count_na"] = pd.array([None, 7] * (n // 2), dtype="Int64")
    frame["note"] = ["x", None] * (n // 2)
    frame["all_none"] = pd.Series([None] * n, dtype=object)
    frame["ratio"] = [0.5, np.nan] * (n // 2)
    frame["supply"] = [-0.0, 1e-05] * (n // 2)
    version_store.replace_series("v1", "det", frame)
    back = version_store.read_series("v1", "det")
    pd.testing.assert_frame_equal(back, frame)
    assert back["note"].tolist() == ["x", None] * (n // 2) and back["all_none"].tolist() == [None] * n
    assert str(back["supply"].iloc[0]) == "-0.0"
    # the same frame as the former read (DuckDB's .df() and _restore_dtypes), also with no rows
    # (where a nullable column is read back as int64 / bool, as before)

    def former_read():
        with duckdb.connect(str(version_store.path), read_only=True) as con:
            run_id, columns_json = con.execute(
                "SELECT run_id, columns_json FROM plan_levels WHERE version_id = 'v1' AND level = 'det' "
                "AND state = 'published'").fetchall()[0]
            columns = json_module.loads(columns_json)
            sql = _read_series_sql(layout_for("det"), columns)
            return _restore_dtypes(con.execute(sql, ["v1", "det", run_id]).df(), columns)

    pd.testing.assert_frame_equal(back, former_read())
    version_store.replace_series("v1", "det", frame.iloc[:0])
    empty = version_store.read_series("v1", "det")
    assert len(empty) == 0 and list(empty.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(empty, former_read())


@pytest.mark.duckdb_only("counts DuckDB read-only file connections")
def test_reading_shares_one_read_only_snapshot(version_store: PlanStore, monkeypatch):
    """Inside ``reading()`` every call uses one read-only connection and transaction."""
    import plan_pipeline.store.base as base

    version_store.replace_series("v1", "det", det_frame())
    opened = []
    real_open = base.open_connection

    def counting_open(path, read_only=False, **kwargs):
        opened.append(read_only)
        return real_open(path, read_only=read_only, **kwargs)

    monkeypatch.setattr(base, "open_connection", counting_open)
    with version_store.reading() as reader:
        assert reader is version_store
        levels = version_store.series_levels("v1")
        first = version_store.read_series("v1", "det")
        version_store.get_version("v1")
        with pytest.raises(duckdb.Error, match=r"read-only|within a transaction"):  # a write fails
            version_store.create_version("v2", "sample", PlanningParameters())
    assert opened == [True]
    assert levels == {"det": len(det_frame())}
    pd.testing.assert_frame_equal(first, det_frame())
    assert version_store.get_version("v1").version_id == "v1"
    assert opened == [True, False]
