"""Problem 2: a version's plan is always one complete run.

A re-run after an edit that dies half-way leaves the previous complete plan readable, and its
exports byte-identical; a run that fails leaves nothing visible and its staged rows are removed
by the next publication; a run that did not write every level is never published.
"""
from __future__ import annotations

import filecmp

import pandas as pd
import pytest

from plan_pipeline.cli.main import main
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStoreError
from plan_pipeline_tests.reliability.cli_process import Home, assert_same_plan, ok, plan_snapshot
from plan_pipeline_tests.reliability.conftest import PLAN_FLAGS

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres


def _edited_row(store, version):
    det = store.read_series(version, "det")
    return det.iloc[len(det) // 3]


def test_killed_rerun_after_an_edit_keeps_the_previous_plan_and_its_exports(home500: Home):
    store = home500.store
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "edited", *PLAN_FLAGS))
    ok(home500.run("materialize", "edited"))
    before = plan_snapshot(store, "edited")
    first = home500.path / "export-before"
    ok(home500.run("export", "edited", "--format", "csv", "--out", str(first)))
    ok(home500.run("export", "edited", "--format", "reference", "--out", str(home500.path / "ref-before")))
    row = _edited_row(store, "edited")
    ok(home500.run("override", "set", "edited", "--week", row.week, "--sku", row.sku, "--period", row.period,
                   "--demand", "99999"))
    # the re-run dies after the detail and MRP levels of the edit were written
    home500.crash("stage.after_commit:mrp", "materialize", "edited")
    assert_same_plan(store, "edited", before)
    det = store.read_series("edited", "det")
    assert det.loc[(det.week == row.week) & (det.sku == row.sku) & (det.period == row.period), "demand"].item() \
        == row.demand
    second = home500.path / "export-after-crash"
    ok(home500.run("export", "edited", "--format", "csv", "--out", str(second)))
    for name in ("plan_series.csv", "plan_kpis.csv"):
        assert filecmp.cmp(first / name, second / name, shallow=False), name
    ok(home500.run("export", "edited", "--format", "reference", "--out", str(home500.path / "ref-after")))
    compared = filecmp.dircmp(home500.path / "ref-before", home500.path / "ref-after")
    assert compared.left_only == compared.right_only == [] and compared.diff_files == ["manifest.json"]
    # a complete re-run publishes the edit everywhere at once
    ok(home500.run("materialize", "edited"))
    det = store.read_series("edited", "det")
    assert det.loc[(det.week == row.week) & (det.sku == row.sku) & (det.period == row.period), "demand"].item() \
        == 99999
    mrp = store.read_series("edited", "mrp")
    gross = mrp.loc[(mrp.item == row.sku) & (mrp.week == row.week), "gross_req"].sum()
    assert gross == det.loc[(det.sku == row.sku) & (det.week == row.week), "demand"].sum()
    assert len(store.publication("edited")["runs"]) == 1


@pytest.fixture
def sample_version(plan_env, sample_dir):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    store.create_version("v1", "sample", PlanningParameters())
    return store


def test_failed_run_publishes_nothing_and_its_rows_go_at_the_next_publication(plan_env, sample_version, monkeypatch):
    store = sample_version
    first = materialize_version(plan_env.instance(), store, "v1")
    assert first.success
    before = plan_snapshot(store, "v1")
    import plan_pipeline.orchestration.plan.assets.chain as chain_module

    def broken(*args, **kwargs):
        raise RuntimeError("capacity engine exploded")

    with monkeypatch.context() as patched:
        patched.setattr(chain_module, "capacity_stage", broken)
        failed = materialize_version(plan_env.instance(), store, "v1")
    assert not failed.success and any("capacity engine exploded" in e for e in failed.errors)
    assert_same_plan(store, "v1", before)
    publication = store.publication("v1")
    assert publication["runs"] == [first.run_id] and publication["staged_runs"] == [failed.run_id]
    # the failed run staged aggregate/det/mrp/... under its own id; nothing of it is readable
    assert store.level_state("v1", "det", failed.run_id) == "staged"
    assert set(store.read_series_rows("v1")["source_run_id"]) == {first.run_id}
    again = materialize_version(plan_env.instance(), store, "v1")
    assert again.success
    assert store.publication("v1")["staged_runs"] == []
    with store.connect() as con:
        runs = {r[0] for r in con.execute("SELECT DISTINCT source_run_id FROM plan_series WHERE version_id = 'v1'")
                .fetchall()}
    assert runs == {again.run_id}
    assert_same_plan(store, "v1", before)


def test_a_run_that_did_not_write_every_level_is_not_published(sample_version):
    store = sample_version
    frame = pd.DataFrame({"family": ["F"], "period": ["2025-01"], "demand": [1.0], "supply": [1.0],
                          "backlog": [0.0], "capacity_total": [2.0]})
    store.stage_series("v1", "aggregate", frame, run_id="r1")
    with pytest.raises(PlanStoreError, match=r"did not write level\(s\) det"):
        store.publish_run("v1", ["r1"], ["aggregate", "det"])
    assert store.publication("v1")["complete"] is False
    # a re-execution (r2 continues r1) publishes r1's level with its own
    store.stage_series("v1", "det", pd.DataFrame({"family": ["F"], "period": ["2025-01"], "sku": ["S"],
                                                  "week": ["2025-W01"], "demand": [1.0], "supply": [1.0],
                                                  "backlog": [0.0]}), run_id="r2")
    publication = store.publish_run("v1", ["r2", "r1"], ["aggregate", "det"])
    assert publication.runs == ["r1", "r2"] and publication.levels == {"aggregate": 1, "det": 1}
    pd.testing.assert_frame_equal(store.read_series("v1", "aggregate"), frame)


def test_exports_of_a_version_without_a_complete_plan_are_refused(plan_env, sample_version, tmp_path, capsys):
    assert main(["export", "v1", "--format", "csv", "--out", str(tmp_path / "out")]) == 1
    assert "has no complete plan to export" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.duckdb_only("DuckDB's write memory limit: the publication of 3.8 M rows in one DuckDB transaction")
def test_replanning_a_5000_sku_version_publishes_within_the_write_memory_limit(tmp_path):
    """At the benchmark's size (3.8 M plan rows) the publication replaces the previous plan under
    the default DuckDB write memory limit: a re-plan succeeds and leaves exactly one plan."""
    home = Home(tmp_path / "home")
    ok(home.run("sample-inputs", "--out", str(tmp_path / "in"), "--families", "100", "--skus-per-family", "50",
                "--components-per-sku", "2"))
    ok(home.run("inputs", "import", str(tmp_path / "in"), "--label", "big"))
    ok(home.run("version", "create", "--input-set", "big", "--version-id", "big", "--preset", "det_near",
                "--cutover-date", "2025-06-15", "--apply-adjusted"))
    ok(home.run("materialize", "big", timeout=600))
    first = home.store.publication("big")
    ok(home.run("materialize", "big", timeout=600))
    second = home.store.publication("big")
    assert second["levels"] == first["levels"] and sum(second["levels"].values()) > 3_000_000
    assert second["runs"] != first["runs"] and second["staged_runs"] == []
    with home.store.connect(read_only=True) as con:
        runs = con.execute("SELECT DISTINCT source_run_id FROM plan_series WHERE version_id = 'big'").fetchall()
    assert [r[0] for r in runs] == second["runs"]
