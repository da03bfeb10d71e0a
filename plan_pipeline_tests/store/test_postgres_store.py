"""The PostgreSQL plan store backend (issue 15): the setting, migrations, partitions, transactions.

These tests always use PostgreSQL (the ``postgres_url`` session server: they fail under CI and
skip elsewhere when Debian's server packages are missing); they are marked ``both_backends`` so
``pytest --store-backend=postgres`` runs them with the shared store tests.
"""
from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.backends.postgres import (
    PARTITIONED_TABLES,
    PG_MIGRATIONS,
    PG_SCHEMA_VERSION,
    apply_pg_migrations,
    open_pg_connection,
    partition_name,
    translate_placeholders,
)
from plan_pipeline.store.repository import PostgresPlanStore, postgres_unported
from plan_pipeline.store.rules import STORE_URL_ENV, parse_store_url
from plan_pipeline.store.unit_of_work import postgres_unported_statements

pytestmark = pytest.mark.both_backends


def det_frame(offset: float = 0.0) -> pd.DataFrame:
    rows = [("FA", "2025-01", sku, f"2025-W0{w}", 10.0 * w + offset, 5.0 * w, 5.0 * w, 5.0 * w + offset)
            for sku in ("A1", "A2") for w in (1, 2, 3)]
    return pd.DataFrame(rows, columns=["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"])


@pytest.fixture
def pg_store(postgres_store_url, sample_dir) -> PlanStore:
    store = PlanStore.from_url(postgres_store_url)
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    return store


# ------------------------------------------------------------------------------------ the setting
def test_the_store_url_setting_selects_the_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAN_PIPELINE_DB", str(tmp_path / "default.duckdb"))
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    unset = PlanStore()
    assert (type(unset), unset.location.backend, unset.path) == (PlanStore, "duckdb", tmp_path / "default.duckdb")

    monkeypatch.setenv(STORE_URL_ENV, f"duckdb://{tmp_path}/chosen.duckdb")
    chosen = PlanStore()
    assert (type(chosen), chosen.path) == (PlanStore, tmp_path / "chosen.duckdb")
    # an explicit path is the DuckDB file, whatever the setting says
    monkeypatch.setenv(STORE_URL_ENV, "postgresql://plan:secret@127.0.0.1:5999/plan_store")
    explicit = PlanStore(tmp_path / "x.duckdb")
    assert type(explicit) is PlanStore and type(explicit.writing_as("dagster")) is PlanStore

    pg = PlanStore()
    assert isinstance(pg, PostgresPlanStore) and pg.is_postgres
    assert pg.location.describe() == "postgresql://plan@127.0.0.1:5999/plan_store"  # no password in messages
    assert not pg.path.exists()
    with pytest.raises(PlanStoreError, match="is a plan store URL, not a DuckDB file"):
        PlanStore(pg.path)  # would otherwise become a DuckDB file named after the URL in the current folder
    assert type(pg.writing_as("dagster")) is PostgresPlanStore

    for bad in ("duckdb:relative.duckdb", "mysql://h/db", "postgresql://127.0.0.1", "plan_store.duckdb"):
        with pytest.raises(PlanStoreError, match=STORE_URL_ENV):
            parse_store_url(bad)


def test_placeholders_translate_outside_quotes_only():
    assert translate_placeholders("SELECT ? , '?', \"a?\" WHERE x LIKE 'a%' AND y = ?") == \
        "SELECT %s , '?', \"a?\" WHERE x LIKE 'a%%' AND y = %s"


def test_every_store_feature_runs_on_postgres(pg_store: PlanStore):
    # every public PlanStore method is ported: none is left to raise "not yet available"
    assert postgres_unported() == []
    # the unit of work: every statement group is ported
    assert postgres_unported_statements() == []
    with pg_store.transaction() as tx:
        assert [head[0] for head in tx.version_heads()] == ["v1"] and tx.version_exists("v1")


# ------------------------------------------------------------------------------------- migrations
def test_migrations_run_once_and_upgrade_an_existing_database(pg_store: PlanStore, postgres_store_url):
    assert pg_store.initialise() == PG_SCHEMA_VERSION == PG_MIGRATIONS[-1][0]
    pg_store.replace_series("v1", "det", det_frame())
    con = open_pg_connection(postgres_store_url)
    try:
        assert apply_pg_migrations(con) == []  # nothing missing: nothing applied
        # a later release's migration upgrades the database in place, its rows kept
        later = [*PG_MIGRATIONS, (PG_SCHEMA_VERSION + 1, "test: a new column",
                                  ["ALTER TABLE plan_versions ADD COLUMN test_note TEXT"])]
        assert apply_pg_migrations(con, later) == [PG_SCHEMA_VERSION + 1]
        assert apply_pg_migrations(con, later) == []
        # a failing migration changes nothing (PostgreSQL's DDL is transactional)
        broken = [*later, (PG_SCHEMA_VERSION + 2, "test: broken",
                           ["ALTER TABLE plan_versions ADD COLUMN never TEXT", "SELECT no_such_function()"])]
        with pytest.raises(Exception, match="no_such_function"):
            apply_pg_migrations(con, broken)
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'plan_versions'").fetchall()}
        assert "test_note" in columns and "never" not in columns
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == PG_SCHEMA_VERSION + 1
    finally:
        con.close()
    reopened = PlanStore.from_url(postgres_store_url)
    assert reopened.schema_version() == PG_SCHEMA_VERSION + 1
    pd.testing.assert_frame_equal(reopened.read_series("v1", "det"), det_frame())


def test_migration_2_keeps_a_levels_attributes_in_their_key_order(pg_store: PlanStore, postgres_store_url):
    """JSONB put an object's keys in its own order (shorter first): a level's attributes came back
    reordered (the reference files then differed from the DuckDB store's). Migration 2 makes
    ``plan_levels.attrs_json`` JSON; a schema-1 database upgrades in place with every row kept."""
    written = det_frame()
    written.attrs = {"summary_of_the_plan": {"zz_total": 1.5, "a": 2}, "b": [3, 1]}
    pg_store.replace_series("v1", "det", written)
    con = open_pg_connection(postgres_store_url)
    try:
        # the database as migration 1 left it: attrs_json JSONB (the row's keys in JSONB's order)
        con.execute("ALTER TABLE plan_levels ALTER COLUMN attrs_json DROP DEFAULT")
        con.execute("ALTER TABLE plan_levels ALTER COLUMN attrs_json TYPE JSONB USING attrs_json::jsonb")
        con.execute("ALTER TABLE plan_levels ALTER COLUMN attrs_json SET DEFAULT '{}'")
        con.execute("DELETE FROM schema_migrations WHERE version = 2")
        (stored,) = con.execute("SELECT attrs_json FROM plan_levels WHERE version_id = 'v1' AND level = 'det' "
                                "AND state = 'published'").fetchone()
        assert list(json.loads(stored)) == ["b", "summary_of_the_plan"]  # JSONB's order, not the written one
        before = {table: con.execute(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
                                     ).fetchone() for table in ("plan_versions", "plan_levels", "plan_series")}
    finally:
        con.close()

    upgraded = PlanStore.from_url(postgres_store_url)
    assert upgraded.initialise() == PG_SCHEMA_VERSION >= 2
    con = open_pg_connection(postgres_store_url)
    try:
        kind = con.execute("SELECT data_type FROM information_schema.columns "
                           "WHERE table_name = 'plan_levels' AND column_name = 'attrs_json'").fetchone()[0]
        after = {table: con.execute(f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
                                    ).fetchone() for table in before}
    finally:
        con.close()
    assert kind == "json"
    assert after == before  # every row kept, the same text (JSONB's text of the rows written before)
    pd.testing.assert_frame_equal(upgraded.read_series("v1", "det"), written)
    # written after the upgrade: the keys come back in the order they were written
    upgraded.replace_series("v1", "det", written)
    read = upgraded.read_series("v1", "det")
    assert json.dumps(read.attrs) == json.dumps(written.attrs)


# ------------------------------------------------------------------------------------- partitions
def test_every_version_has_its_own_partition_of_the_plan_tables(pg_store: PlanStore, postgres_store_url):
    pg_store.create_version("v2", "sample", PlanningParameters())
    pg_store.replace_series("v1", "det", det_frame())
    pg_store.replace_series("v2", "det", det_frame(offset=1.0))
    con = open_pg_connection(postgres_store_url)
    try:
        for table in PARTITIONED_TABLES:
            parts = {r[0] for r in con.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?", [table]).fetchall()}
            assert parts == {partition_name(table, "v1"), partition_name(table, "v2")}, table
        detail_v1 = partition_name("plan_series_detail", "v1")
        assert con.execute(f"SELECT count(*), min(version_id), max(version_id) FROM {detail_v1}").fetchone() == \
            (6, "v1", "v1")
    finally:
        con.close()
    # deleting a version empties its partitions (TRUNCATE) and takes nothing of the other's
    pg_store.replace_kpis("v1", "report", pd.DataFrame(
        {"category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["total"],
         "value": [1.0], "unit": ["ratio"]}))
    removed = pg_store.delete_version("v1")
    assert (removed["plan_series"], removed["plan_kpis"], removed["plan_levels"]) == (6, 1, 2)
    con = open_pg_connection(postgres_store_url)
    try:
        for table in PARTITIONED_TABLES:
            assert con.execute(f"SELECT count(*) FROM {partition_name(table, 'v1')}").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'v2'").fetchone() == (6,)
    finally:
        con.close()
    assert pg_store.find_version("v1") is None and pg_store.tombstone("v1")["reason"] == "deleted by request"
    pd.testing.assert_frame_equal(pg_store.read_series("v2", "det"), det_frame(offset=1.0))


def test_a_run_publishes_whole_and_the_ledger_follows(pg_store: PlanStore):
    job = {"job_id": "run-1", "version_id": "v1", "status": "started", "job_name": "plan_job"}
    pg_store.stage_series("v1", "det", det_frame(), run_id="run-1", job=job)
    pg_store.stage_kpis("v1", "report", pd.DataFrame(
        {"category": ["plan"], "metric": ["fill_rate"], "bucket_type": ["total"], "bucket_key": ["total"],
         "value": [0.5], "unit": ["ratio"]}), run_id="run-1")
    assert pg_store.level_state("v1", "det", "run-1") == "staged" and pg_store.level_state("v1", "det") is None
    assert pg_store.active_jobs("v1") == ["run-1"]
    publication = pg_store.publish_run("v1", ["run-1"], ["det", "report"])
    assert publication.levels == {"det": 6, "report": 1}
    assert pg_store.publication("v1")["levels"] == {"det": 6}
    assert pg_store.read_kpis("v1", "report")["value"].tolist() == [0.5]
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame())
    assert pg_store.close_jobs(["run-1"], "failure", "crashed") == 1
    assert pg_store.get_job("run-1")["status"] == "failure" and pg_store.open_jobs() == []


# ----------------------------------------------------------------------------------- transactions
class HeldWrite:
    """A level write of ``version`` that holds its transaction open (rows inserted, not committed)
    until :meth:`release`."""

    def __init__(self, store: PlanStore, version: str, frame: pd.DataFrame):
        self.inside, self._go = threading.Event(), threading.Event()
        self.error: BaseException | None = None

        def hold(con):
            self.inside.set()
            assert self._go.wait(30), "the held write was never released"

        def run():
            try:
                store.replace_series(version, "det", frame, run_id="held", _fault=hold)
            except BaseException as exc:  # reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.inside.wait(30), "the held write never reached its rows"

    def release(self) -> None:
        self._go.set()
        self.thread.join(30)
        assert not self.thread.is_alive() and self.error is None, self.error


def in_thread(call) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_writers_of_different_versions_never_wait_for_each_other(pg_store: PlanStore, postgres_store_url):
    pg_store.create_version("v2", "sample", PlanningParameters())
    held = HeldWrite(PlanStore.from_url(postgres_store_url), "v1", det_frame(offset=7.0))
    try:
        other = PlanStore.from_url(postgres_store_url)
        started = time.monotonic()
        assert other.replace_series("v2", "det", det_frame(offset=2.0)) == 6
        other.create_version("v3", "sample", PlanningParameters())  # a new version's partitions attach meanwhile
        assert other.replace_series("v3", "det", det_frame(offset=3.0)) == 6
        assert time.monotonic() - started < 10
        assert other.series_levels("v1") == {}  # the held write is not visible before its commit
    finally:
        held.release()
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame(offset=7.0))
    pd.testing.assert_frame_equal(pg_store.read_series("v2", "det"), det_frame(offset=2.0))
    pd.testing.assert_frame_equal(pg_store.read_series("v3", "det"), det_frame(offset=3.0))


def test_two_writers_of_one_version_serialize(pg_store: PlanStore, postgres_store_url):
    pg_store.replace_series("v1", "det", det_frame())
    held = HeldWrite(PlanStore.from_url(postgres_store_url), "v1", det_frame(offset=1.0))
    second, result = in_thread(lambda: PlanStore.from_url(postgres_store_url).replace_series(
        "v1", "det", det_frame(offset=2.0), run_id="second"))
    try:
        second.join(1.5)
        assert second.is_alive(), "the second writer of v1 did not wait for the first"
        # readers never wait: they see the last committed level
        pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame())
    finally:
        held.release()
    second.join(30)
    assert result == [6]
    # the second writer ran after the first committed: its level replaced the first's
    assert pg_store.publication("v1")["runs"] == ["second"]
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame(offset=2.0))


def test_lifecycle_freezes_a_version_on_postgres(pg_store: PlanStore):
    pg_store.replace_series("v1", "det", det_frame())
    assert pg_store.transition_status("v1", "submitted") == "draft"
    assert pg_store.transition_status("v1", "approved") == "submitted"
    assert pg_store.get_version("v1").status == "approved"
    with pytest.raises(PlanStoreError, match="frozen"):
        pg_store.stage_series("v1", "det", det_frame(offset=1.0), run_id="late")
    with pytest.raises(PlanStoreError, match="frozen"):
        pg_store.delete_version("v1")
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame())


def test_reading_sees_one_state_while_a_writer_commits(pg_store: PlanStore, postgres_store_url):
    pg_store.replace_series("v1", "det", det_frame())
    with pg_store.reading() as reader:
        first = reader.read_series("v1", "det")
        PlanStore.from_url(postgres_store_url).replace_series("v1", "det", det_frame(offset=5.0))
        pd.testing.assert_frame_equal(reader.read_series("v1", "det"), first)  # REPEATABLE READ: one snapshot
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame(offset=5.0))


def test_metrics_and_table_counts_read_the_database(pg_store: PlanStore):
    pg_store.replace_series("v1", "det", det_frame())
    pg_store.upsert_jobs([{"job_id": "x-1", "version_id": None, "job_name": None, "status": "success"}])
    metrics = pg_store.store_metrics()
    assert metrics.version_rows == [("v1", "draft", 6)]
    assert metrics.runs == [("unknown", "success", 1)]
    assert metrics.size_bytes > 1_000_000  # the database on the server (pg_database_size)
    totals = {(w.source, w.operation, w.level): (w.writes, w.rows) for w in metrics.writes}
    assert totals == {("cli", "import_inputs", "inputs"): (1, 162), ("cli", "create", "version"): (1, 1),
                      ("cli", "replace", "det"): (1, 6)}
    assert all(abs(w.last_write_epoch_seconds - time.time()) < 120 for w in metrics.writes)
    counts = pg_store.table_counts()
    assert (counts["plan_series"], counts["plan_versions"], counts["plan_levels"], counts["plan_kpis"]) == (6, 1, 1, 0)
    assert counts["input_demand_family"] == 36 and not any("_v_" in name for name in counts)  # no partitions


def test_a_server_that_cannot_be_reached_is_a_busy_store_without_the_password():
    from plan_pipeline.store import PlanStoreBusyError

    store = PlanStore.from_url("postgresql://plan:secret@127.0.0.1:9/plan_store", lock_wait_seconds=0)
    with pytest.raises(PlanStoreBusyError, match=r"cannot reach the PostgreSQL plan store "
                                                 r"postgresql://plan@127.0.0.1:9/plan_store") as caught:
        store.list_versions()
    assert "secret" not in str(caught.value)


def test_series_keep_nullable_and_extra_columns_exactly(pg_store: PlanStore):
    """The COPY of a level (columns computed in Python) and its typed read give back the frame
    exactly: nullable ints and bools, text NULL, NaN, -0.0, extra fields through the JSON column."""
    import numpy as np

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
    frame["big"] = [1.0 / 3.0, 2.0**60 + 1.0] * (n // 2)
    pg_store.replace_series("v1", "det", frame)
    back = pg_store.read_series("v1", "det")
    pd.testing.assert_frame_equal(back, frame)
    assert back["note"].tolist() == ["x", None] * (n // 2) and back["all_none"].tolist() == [None] * n
    assert str(back["supply"].iloc[0]) == "-0.0" and back["big"].iloc[0] == 1.0 / 3.0


def test_stored_rows_equal_duckdbs_column_for_column(pg_store: PlanStore, tmp_path, sample_dir):
    """What PostgreSQL's COPY stores (columns computed in Python) is what DuckDB's INSERT ... SELECT
    stores: every plan_series column of a detail level and of a wide-table level, read back raw."""
    duck = PlanStore(tmp_path / "parity.duckdb")
    import_input_dir(duck, sample_dir, "sample")
    duck.create_version("v1", "sample", PlanningParameters())
    aggregate = pd.DataFrame({"family": ["FA", "FB"], "period": ["2025-01", "2025-02"], "demand": [1.0, 2.5],
                              "supply": [1.0, 2.0], "backlog": [0.0, 0.5], "capacity_total": [3.0, 4.0]})
    detail = det_frame().assign(note=["x", None] * 3)
    for store in (duck, pg_store):
        store.replace_series("v1", "aggregate", aggregate, run_id="r")
        store.replace_series("v1", "det", detail, run_id="r")
    for level in ("aggregate", "det"):
        ours, theirs = (s.read_series_rows("v1", level) for s in (pg_store, duck))
        pd.testing.assert_frame_equal(ours.drop(columns="extra_json"), theirs.drop(columns="extra_json"))
        assert [json.loads(v) for v in ours["extra_json"]] == [json.loads(v) for v in theirs["extra_json"]]
        pd.testing.assert_frame_equal(pg_store.read_series("v1", level), duck.read_series("v1", level))
    assert pg_store.read_series_rows("v1", "aggregate")["time_bucket_type"].tolist() == ["month", "month"]


def test_every_level_of_a_real_plan_round_trips_like_duckdb(pg_store: PlanStore, tmp_path):
    """Every level of a planned version (the schema-6 fixture store, upgraded), written to
    PostgreSQL and to a fresh DuckDB store: the frames read back equal, and so do the stored rows."""
    from plan_pipeline_tests.store.test_narrow_store import _import_fixture

    source_path = tmp_path / "fixture.duckdb"
    _import_fixture(source_path, tmp_path)
    source = PlanStore(source_path)
    duck = PlanStore(tmp_path / "fresh.duckdb")
    for store in (duck, pg_store):
        if store is duck:
            duck.import_input_set("sample", source.load_input_set(source.get_version("base").input_set),
                                  "0" * 64, None, {}, [])
            duck.create_version("v1", "sample", PlanningParameters())
    levels = source.series_levels("base")
    assert {"det", "det_adjusted", "mrp", "aggregate", "carryover"} <= set(levels) and len(levels) == 9
    for level in levels:
        frame = source.read_series("base", level)
        for store in (duck, pg_store):
            store.replace_series("v1", level, frame, run_id="copy")
        pd.testing.assert_frame_equal(pg_store.read_series("v1", level), frame, obj=level)
        ours, theirs = (s.read_series_rows("v1", level) for s in (pg_store, duck))
        pd.testing.assert_frame_equal(ours.drop(columns="extra_json"), theirs.drop(columns="extra_json"), obj=level)
        assert [json.loads(v) for v in ours["extra_json"]] == [json.loads(v) for v in theirs["extra_json"]], level


def test_a_copy_the_database_refuses_reports_its_error_and_keeps_the_previous_rows(pg_store: PlanStore):
    """PostgreSQL refuses a row in the middle of a level's COPY (an empty demand, NOT NULL): its own
    error comes back, the level keeps its previous rows, nothing of the failed write is logged."""
    import psycopg

    pg_store.replace_series("v1", "det", det_frame(), run_id="good")
    writes = len(pg_store.read_write_log())
    broken = det_frame()
    broken["demand"] = broken["demand"].astype(object)
    broken.loc[3, "demand"] = None
    with pytest.raises(psycopg.errors.NotNullViolation, match='null value in column "demand"'):
        pg_store.stage_series("v1", "det", broken, run_id="bad")
    pd.testing.assert_frame_equal(pg_store.read_series("v1", "det"), det_frame())
    assert pg_store.level_state("v1", "det", "bad") is None and len(pg_store.read_write_log()) == writes


def test_api_keys_on_postgres(postgres_store_url):
    store = PlanStore.from_url(postgres_store_url)
    key = store.create_api_key("ann", "planner", actor="admin")
    assert store.api_key_principal(key) == ("ann", "planner") and store.api_key_principal(key + "x") is None
    with pytest.raises(PlanStoreError, match="already exists"):
        store.create_api_key("ann", "viewer")
    [listed] = store.list_api_keys()
    assert (listed["name"], listed["role"], listed["created_by"], listed["revoked_at"]) == ("ann", "planner", "admin", None)
    assert key.startswith(listed["key_prefix"]) and "key_hash" not in listed
    revoked = store.revoke_api_key("ann", actor="admin")
    assert revoked["revoked_by"] == "admin" and revoked["revoked_at"] is not None
    assert store.api_key_principal(key) is None and store.list_api_keys(include_revoked=False) == []
    with pytest.raises(PlanStoreError, match="already revoked"):
        store.revoke_api_key("ann")


def test_copy_database_copies_every_row_and_partition(pg_store: PlanStore, postgres_url):
    """``copy_database`` (``CREATE DATABASE ... TEMPLATE``: the API tests' per-test copy of a planned
    database): the copy holds the template's rows and partitions; writing it leaves the template as it was."""
    import uuid

    from plan_pipeline.store.backends.postgres import copy_database, drop_database

    pg_store.replace_series("v1", "det", det_frame())
    assert pg_store.location.dsn is not None
    template = pg_store.location.dsn.rsplit("/", 1)[1].split("?")[0]
    name = f"copy_{uuid.uuid4().hex[:12]}"
    copy = PlanStore.from_url(copy_database(postgres_url, template, name))
    try:
        assert copy.table_counts() == pg_store.table_counts()
        pd.testing.assert_frame_equal(copy.read_series("v1", "det"), pg_store.read_series("v1", "det"))
        copy.replace_series("v1", "det", det_frame(offset=1.0))
        assert sorted(pg_store.read_series("v1", "det")["demand"]) == sorted(det_frame()["demand"])
        with pytest.raises(PlanStoreError):
            copy_database(postgres_url, template, "bad name")
    finally:
        drop_database(postgres_url, name)
