"""Migration 7, the narrow store: ``plan_series`` is a view over typed tables per level family.

The upgrade test starts from ``fixtures/schema6_store``: a store written by the schema-6 code
(the bundled sample planned three times, anchored versions included, and the legacy SQLite plan
database imported), exported with DuckDB's ``EXPORT DATABASE`` (fixtures/README.md).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from plan_pipeline.store import PlanStore
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.schema import SCHEMA_VERSION
from plan_pipeline.store.series_tables import SERIES_COLUMNS, SERIES_TABLE_NAMES, series_table_for

pytestmark = pytest.mark.duckdb_only("DuckDB's migration 7 and its physical tables behind plan_series (PostgreSQL partitions by version: test_postgres_store.py)")

FIXTURE = Path(__file__).parent / "fixtures" / "schema6_store"
NARROW_LEVELS = {"det", "det_adjusted", "mrp", "mrp_adjusted", "mrp_final", "mrp_final_adjusted"}


def _import_fixture(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "schema6_export"
    shutil.copytree(FIXTURE, copy)
    with duckdb.connect(str(path)) as con:
        con.execute(f"IMPORT DATABASE '{copy}'")


def _checksums(con) -> dict[str, tuple[int, int]]:
    """``{table: (rows, sum of row hashes)}`` of every table, ``plan_series`` per level."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name").fetchall()]
    sums = {}
    for table in [t for t in tables if t not in ("plan_series", "schema_migrations", *SERIES_TABLE_NAMES)]:
        sums[table] = tuple(con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t').fetchone())
    for level, n, h in con.execute(
            "SELECT level, count(*), sum(hash(s)) FROM plan_series s GROUP BY level ORDER BY level").fetchall():
        sums[f"plan_series:{level}"] = (n, h)
    sums["plan_series_current"] = tuple(con.execute(
        "SELECT count(*), sum(hash(s)) FROM plan_series_current s").fetchone())
    return sums


def _columns(con, name: str) -> list[tuple[str, str]]:
    return con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                       "ORDER BY column_index", [name]).fetchall()


def test_upgrade_of_a_schema6_store_keeps_every_row(tmp_path):
    path = tmp_path / "store.duckdb"
    _import_fixture(path, tmp_path)
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 6
        before = _checksums(con)
        columns_before = _columns(con, "plan_series")
        old_counts = dict(con.execute("SELECT level, count(*) FROM plan_series GROUP BY level").fetchall())
    assert {"det_adjusted", "mrp_final_adjusted", "aggregate", "weekly_summary_adjusted"} <= set(old_counts)
    assert sum(old_counts.values()) > 20_000

    store = PlanStore(path)
    assert store.initialise() == SCHEMA_VERSION == 7
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 7
        assert _checksums(con) == before
        # the view has the old table's columns, order and types
        assert _columns(con, "plan_series") == columns_before
        assert [c for c, _ in columns_before] == [c for c, _ in SERIES_COLUMNS]
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'plan_series'").fetchone()[0] == 1
        # every row of the big levels fitted its narrow table: the wide table holds only the small levels
        physical = {t: dict(con.execute(f"SELECT level, count(*) FROM {t} GROUP BY level").fetchall())
                    for t in SERIES_TABLE_NAMES}
    assert physical["plan_series_detail"] == {lvl: n for lvl, n in old_counts.items() if lvl.startswith("det")}
    assert physical["plan_series_mrp"] == {lvl: n for lvl, n in old_counts.items() if lvl.startswith("mrp")}
    assert physical["plan_series_wide"] == {lvl: n for lvl, n in old_counts.items() if lvl not in NARROW_LEVELS}

    # every published level of every version reads back as its frame
    read = 0
    for version in store.list_versions():
        for level, rows in store.series_levels(version.version_id).items():
            frame = store.read_series(version.version_id, level)
            assert len(frame) == rows
            read += 1
    assert read >= 40
    frame = store.read_series("anchored", "mrp_final_adjusted")
    assert {"item", "week", "planned_order_receipt_adj", "lt_weeks"} <= set(frame.columns)
    assert frame["lt_weeks"].dtype.kind == "i"


def test_upgraded_version_can_be_replanned(tmp_path, plan_env):
    from plan_pipeline.orchestration.plan.launch import materialize_version

    store = plan_env.store
    store.path.unlink(missing_ok=True)
    _import_fixture(store.path, tmp_path)
    before = store.read_series("base", "mrp")  # opening upgrades the store
    assert store.schema_version() == 7
    outcome = materialize_version(plan_env.instance(), store, "base")
    assert outcome.success, outcome.errors
    after = store.read_series("base", "mrp")
    pd.testing.assert_frame_equal(after, before)  # same inputs and parameters: the same plan
    assert store.publication("base")["runs"] == [outcome.run_id]
    with duckdb.connect(str(store.path)) as con:
        runs = con.execute("SELECT DISTINCT source_run_id FROM plan_series_mrp WHERE version_id = 'base'").fetchall()
    assert runs == [(outcome.run_id,)]


@pytest.fixture
def upgraded(tmp_path) -> PlanStore:
    path = tmp_path / "upgraded.duckdb"
    _import_fixture(path, tmp_path)
    store = PlanStore(path)
    store.initialise()
    return store


def _view_rows(path: Path, version: str, level: str) -> pd.DataFrame:
    with duckdb.connect(str(path)) as con:
        return con.execute("SELECT * EXCLUDE (version_id, source_run_id, created_at, updated_at) FROM plan_series "
                           "WHERE version_id = ? AND level = ? ORDER BY row_seq", [version, level]).df()


def test_writes_land_in_their_family_table_and_read_back_through_the_view(upgraded: PlanStore):
    """Each level of a planned anchored version written again lands in its family's table; the
    view shows exactly the rows it showed for the original (the constants it supplies included)."""
    from plan_pipeline.planning.parameters import PlanningParameters

    upgraded.create_version("copy", None, PlanningParameters())
    levels = upgraded.series_levels("anchored")
    assert set(levels) >= NARROW_LEVELS | {"aggregate", "weekly_summary", "level_reconciliation"}
    for level in levels:
        frame = upgraded.read_series("anchored", level)
        assert upgraded.replace_series("copy", level, frame, run_id="copy-run") == len(frame)
        pd.testing.assert_frame_equal(upgraded.read_series("copy", level), frame)
        pd.testing.assert_frame_equal(_view_rows(upgraded.path, "copy", level),
                                      _view_rows(upgraded.path, "anchored", level))
        with duckdb.connect(str(upgraded.path)) as con:
            homes = {t: con.execute(f"SELECT count(*) FROM {t} WHERE version_id = 'copy' AND level = ?",
                                    [level]).fetchone()[0] for t in SERIES_TABLE_NAMES}
            stamps = con.execute(
                "SELECT DISTINCT s.created_at = l.written_at AND s.updated_at = l.written_at FROM plan_series s "
                "JOIN plan_levels l ON l.version_id = s.version_id AND l.level = s.level "
                "AND l.run_id = s.source_run_id WHERE s.version_id = 'copy' AND s.level = ?", [level]).fetchall()
        assert homes == {t: (len(frame) if t == series_table_for(level).name else 0) for t in SERIES_TABLE_NAMES}
        assert stamps == ([(True,)] if len(frame) else [])
    expected_home = {"det": "plan_series_detail", "mrp_final_adjusted": "plan_series_mrp",
                     "aggregate": "plan_series_wide", "carryover": "plan_series_wide"}
    assert {lvl: series_table_for(lvl).name for lvl in expected_home} == expected_home
    # deleting the version removes its rows from every physical table
    removed = upgraded.delete_version("copy", actor="test")
    assert removed["plan_series"] == sum(levels.values())
    with duckdb.connect(str(upgraded.path)) as con:
        assert [con.execute(f"SELECT count(*) FROM {t} WHERE version_id = 'copy'").fetchone()[0]
                for t in SERIES_TABLE_NAMES] == [0, 0, 0]


def test_carryover_is_written_to_the_wide_table(store: PlanStore):
    from plan_pipeline.planning.parameters import PlanningParameters

    store.create_version("v1", None, PlanningParameters())
    frame = pd.DataFrame({"from_period": ["2025-05", "2025-06"], "to_period": ["2025-06", "2025-07"],
                          "family": ["F1", "F1"], "delta_demand": [1.5, -2.0], "delta_supply": [0.0, 3.25],
                          "delta_backlog": [0.5, 0.0], "note": ["a", None]})
    store.replace_series("v1", "carryover", frame)
    pd.testing.assert_frame_equal(store.read_series("v1", "carryover"), frame)
    with duckdb.connect(str(store.path)) as con:
        assert con.execute("SELECT count(*) FROM plan_series_wide WHERE level = 'carryover'").fetchone()[0] == 2
        row = con.execute("SELECT source, demand, supply, backlog, extra_json, period_key FROM plan_series "
                          "WHERE level = 'carryover' ORDER BY row_seq").fetchall()
    assert [(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in row] == [
        ("anchor", 1.5, 0.0, 0.5, {"note": "a"}, "2025-06"), ("anchor", -2.0, 3.25, 0.0, {"note": None}, "2025-07")]


def test_an_mrp_frame_with_unmapped_columns_is_refused(upgraded: PlanStore):
    frame = upgraded.read_series("base", "mrp").assign(comment="x")
    with pytest.raises(PlanStoreError, match="no place in plan_series_mrp"):
        upgraded.replace_series("base", "mrp", frame)
    assert len(upgraded.read_series("base", "mrp")) == len(frame)  # nothing changed


def test_rows_that_do_not_fit_a_narrow_table_move_whole_to_the_wide_table(tmp_path):
    """A schema-6 row whose dropped columns hold something else than the view supplies (another
    source, a location, its own timestamps) is kept whole in plan_series_wide: nothing is lost."""
    path = tmp_path / "store.duckdb"
    _import_fixture(path, tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE plan_series SET location_key = 'plant-1' WHERE version_id = 'base' AND level = 'det' "
                    "AND row_seq = 3")
        con.execute("UPDATE plan_series SET created_at = created_at - INTERVAL 1 DAY, source = NULL "
                    "WHERE version_id = 'legacy-default' AND level = 'mrp' AND row_seq < 5")
        before = _checksums(con)
    store = PlanStore(path)
    store.initialise()
    with duckdb.connect(str(path)) as con:
        assert _checksums(con) == before
        wide = con.execute("SELECT version_id, level, count(*) FROM plan_series_wide WHERE level IN ('det', 'mrp') "
                           "GROUP BY ALL ORDER BY ALL").fetchall()
        assert wide == [("base", "det", 1), ("legacy-default", "mrp", 5)]
        kept = con.execute("SELECT location_key FROM plan_series WHERE version_id = 'base' AND level = 'det' "
                           "AND row_seq = 3").fetchall()
    assert kept == [("plant-1",)]
    frame = store.read_series("legacy-default", "mrp")  # the level reads whole, in row order
    assert len(frame) == store.series_levels("legacy-default")["mrp"]
    det = store.read_series("base", "det")
    assert len(det) == store.series_levels("base")["det"]
    # deleting the version removes its rows from the wide table too
    removed = store.delete_version("base", actor="test")
    assert removed["plan_series"] == sum(before[k][0] for k in before if k.startswith("plan_series:")) - \
        con_rows_left(path)
    with duckdb.connect(str(path)) as con:
        assert con.execute("SELECT count(*) FROM plan_series WHERE version_id = 'base'").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM plan_series_wide WHERE version_id = 'base'").fetchone()[0] == 0


def con_rows_left(path: Path) -> int:
    with duckdb.connect(str(path)) as con:
        return con.execute("SELECT count(*) FROM plan_series").fetchone()[0]


@pytest.mark.parametrize(("values", "tag"), [
    (["a", "b"], "str"), ([True, False], "bool"), ([None, True, None], "bool"), ([np.nan, np.bool_(False)], "bool"),
    ([pd.NA, True], "bool"), ([True, "x"], "str"), (["x", True], "str"), ([None, "x", True], "str"),
    ([1, True], "str"), ([True, 1.5], "str"), ([None, None], "str"), ([], "str"), ([[True], True], "str"),
    ([None, [1, 2]], "str"),
], ids=repr)
def test_the_dtype_tag_of_an_object_column_is_what_a_full_scan_says(values, tag):
    """dtype_tag decides text columns at their first value; the tag is the one the full
    ``infer_dtype`` scan gives (bool only for all-bool object columns)."""
    from plan_pipeline.store.layouts import dtype_tag

    column = pd.Series(values, dtype=object)
    assert tag == ("bool" if pd.api.types.infer_dtype(column, skipna=True) == "boolean" else "str")
    assert dtype_tag(column) == tag
