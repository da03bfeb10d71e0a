"""The ``baseline_comparison`` asset body, called directly on a hand-made plan store: against the
duplicate's source, with no baseline, and on a frozen version (nothing written). Its wiring in
``plan_job`` (after ``published_plan``, skipped for frozen versions) is covered by
plan_pipeline_tests/cli/test_cli_compare.py and test_version_jobs.py."""
from __future__ import annotations

import dagster as dg
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.baseline_comparison import baseline_comparison
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.store import PlanStoreError
from plan_pipeline_tests.store.test_comparison import DET_A, DET_B, det, mrp_final, weekly

pytestmark = pytest.mark.both_backends  # the store fixture: DuckDB, or PostgreSQL with --store-backend=postgres


@pytest.fixture
def plans(store, sample_dir):
    import_input_dir(store, sample_dir, "s")
    store.create_version("a", "s", PlanningParameters())
    for version, rows, on_hand, receipt, load in (("a", DET_A, 20.0, 0.0, 60.0), ("b", DET_B, 30.0, 10.0, 70.0)):
        if version == "b":
            store.duplicate_version("a", "b")
        store.replace_series(version, "det", det(rows))
        store.replace_series(version, "mrp_final", mrp_final(on_hand, receipt))
        store.replace_series(version, "weekly_summary", weekly(load))
    return store


def materialize(store, version: str) -> dict:
    context = dg.build_asset_context(partition_key=version,
                                     resources={"plan_store": PlanStoreResource(store_url=store.location.url)})
    return baseline_comparison(context).metadata


def test_compares_the_duplicate_with_its_source_and_stores_it(plans):
    meta = materialize(plans, "b")
    assert meta["baseline"] == "a" and meta["baseline_status"] == "draft"
    # total deltas, numeric: demand 28 -> 38, leveled load 110 -> 120; unchanged metrics are 0.0
    assert meta["delta/demand"].value == 10.0 and meta["delta/leveled_load"].value == 10.0
    assert meta["delta/projected_on_hand"].value == 5.0
    assert "delta/fill_rate" not in meta  # no scorecard stored: not compared
    assert meta["not_compared"].value == ["fill_rate", "service_level", "backlog_days", "inventory_turns",
                                          "capacity_util", "cost_variance", "on_time_rate"]
    family = [r.data for r in meta["top_family_changes"].value.records]
    assert (family[0]["bucket"], family[0]["metric"], family[0]["delta"]) == ("F1", "planned_receipts", 10.0)
    sku = [r.data for r in meta["top_sku_changes"].value.records]
    assert (sku[0]["bucket"], sku[0]["metric"], sku[0]["delta"]) == ("A", "planned_receipts", 10.0)
    assert meta["most_changed"].startswith("family F1: planned_receipts +10; sku A: planned_receipts +10")
    stored = plans.read_baseline_comparison("b")
    assert stored.attrs["baseline"] == "a" and len(stored) == meta["dagster/row_count"].value // 3
    assert stored[stored["by"] == "total"].set_index("metric")["delta"].to_dict() == {
        "demand": 10.0, "leveled_load": 10.0, "planned_receipts": 10.0, "backlog": 5.0, "supply": 5.0,
        "projected_on_hand": 5.0}


def test_no_baseline_is_a_clean_materialization(plans):
    meta = materialize(plans, "a")
    assert meta["baseline"] == "none" and meta["comparison"].startswith("no baseline")
    stored = plans.read_baseline_comparison("a")
    assert stored.empty and stored.attrs["baseline"] is None


def test_a_frozen_version_keeps_its_stored_comparison(plans):
    materialize(plans, "b")
    before = plans.read_baseline_comparison("b")
    plans.transition_status("b", "submitted")
    plans.transition_status("b", "approved")
    meta = materialize(plans, "b")
    assert meta["plan_state"] == "frozen (status approved): nothing to do, stored rows unchanged"
    assert "baseline" not in meta
    after = plans.read_baseline_comparison("b")
    assert after.equals(before)
    with pytest.raises(PlanStoreError, match="'b' is approved: it is frozen"):
        plans.write_baseline_comparison("b", None, {})


def test_an_unknown_partition_is_refused(plans):
    with pytest.raises(dg.Failure, match="plan version 'zz' is not recorded in the plan store"):
        materialize(plans, "zz")
