"""``plan_scorecard``: the scorecard is published with the plan, follows a planner's edit in exactly the
buckets it should, is computed from the anchored plan where a version applies it, and its
materialization carries the totals as numbers, a per-family table and the lowest-fill-rate SKUs."""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.plan.assets.stages import PLAN_LEVELS
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.kpis import scorecard_kpis
from plan_pipeline.planning.overrides import detail_key
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_KPI_NAMES, SCORECARD_LEVEL

pytestmark = pytest.mark.both_backends  # plan_env: a home on DuckDB, or PostgreSQL with --store-backend=postgres

KEYS = ["metric", "bucket_type", "bucket_key"]

# Two families, three SKUs, ample capacity, lot-for-lot with a one-week lead time, 30 units of
# stock per SKU (gone in January), unit cost 10 in January and 12 in February. No calendar: the
# weeks are 2025-01-W1 ... 2025-02-W5.
INPUTS = {
    "demand_family.csv": "family,period,demand\nF1,2025-01,100\nF1,2025-02,100\nF2,2025-01,80\nF2,2025-02,80\n",
    "capacity.csv": "workcenter,period,capacity\nLINE,2025-01,10000\nLINE,2025-02,10000\n",
    "mix_share.csv": "family,sku,share\nF1,A,0.5\nF1,B,0.5\nF2,C,1\n",
    "item.csv": "item,lt,lot,moq\nA,7,1,0\nB,7,1,0\nC,7,1,0\n",
    "inventory.csv": "item,loc,qty\nA,DC,30\nB,DC,30\nC,DC,30\n",
    "period_cost.csv": "period,cost\n2025-01,10\n2025-02,12\n",
}


def _input_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    folder.mkdir()
    for name, text in INPUTS.items():
        (folder / name).write_text(text)
    return folder


def _latest(instance, asset: str, version: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[version]), limit=1).records
    return records[0].asset_materialization.metadata


def _changed(before: pd.DataFrame, after: pd.DataFrame) -> set[tuple[str, str, str]]:
    merged = before[KEYS + ["value"]].merge(after[KEYS + ["value"]], on=KEYS, how="outer",
                                            suffixes=("_before", "_after"))
    differ = ~(merged["value_before"] == merged["value_after"])  # a row on one side only differs too
    return set(zip(merged["metric"][differ], merged["bucket_type"][differ], merged["bucket_key"][differ]))


def test_one_sku_week_edit_moves_exactly_its_kpis_and_buckets(plan_env, tmp_path):
    store = plan_env.store
    import_input_dir(store, _input_dir(tmp_path), "small")
    store.create_version("base", "small", PlanningParameters())
    assert materialize_version(plan_env.instance(), store, "base").success
    assert SCORECARD_LEVEL in PLAN_LEVELS
    assert store.publication("base")["kpi_levels"][SCORECARD_LEVEL] > 0
    before = store.read_kpis("base", SCORECARD_LEVEL)
    assert set(before["category"]) == {SCORECARD_CATEGORY}
    assert set(before["metric"]) == set(SCORECARD_KPI_NAMES)
    report_before = store.read_kpis("base", "report")

    store.duplicate_version("base", "edited")
    detail = store.read_series("base", "det")
    cell = detail[(detail["sku"] == "A") & (detail["week"] == "2025-02-W3")]
    assert len(cell) == 1 and float(cell["demand"].iloc[0]) == 10.0 and float(cell["supply"].iloc[0]) == 10.0
    store.record_override("edited", "det", detail_key("2025-02-W3", "A"), {"demand": 23.0})
    assert materialize_version(plan_env.instance(), store, "edited").success
    after = store.read_kpis("edited", SCORECARD_LEVEL)

    demand_side = {(metric, bucket, key) for metric in ("fill_rate", "service_level", "backlog_days")
                   for bucket, key in (("total", "total"), ("month", "2025-02"), ("week", "2025-02-W3"),
                                       ("family", "F1"), ("sku", "A"))}
    # MRP: A's receipt in 2025-02-W3 grows by 13, released a week earlier (2025-02-W2): that week's load.
    capacity = {("capacity_util", "total", "total"), ("capacity_util", "month", "2025-02"),
                ("capacity_util", "week", "2025-02-W2")}
    # A's gross requirement grows; February holds no stock, so turns of its month and week stay
    # undefined (no row) and only A, its family and the total move.
    turns = {("inventory_turns", "total", "total"), ("inventory_turns", "family", "F1"),
             ("inventory_turns", "sku", "A")}
    # ample capacity: nothing is leveled, so on-time rate and cost variance do not move
    assert _changed(before, after) == demand_side | capacity | turns
    edited = after.set_index(KEYS)["value"]
    assert edited[("fill_rate", "sku", "A")] == pytest.approx(100 / 113, abs=1e-6)
    assert edited[("fill_rate", "week", "2025-02-W3")] == pytest.approx(1 - 13 / 49, abs=1e-6)
    assert edited[("service_level", "week", "2025-02-W3")] == pytest.approx(2 / 3, abs=1e-6)
    # the reference plan KPIs (sums of the aggregate plan) stay exactly as they were: the bug the scorecard fixes
    report_after = store.read_kpis("edited", "report")
    plan_rows = [frame[frame["category"] == "plan"][KEYS + ["value"]].reset_index(drop=True)
                 for frame in (report_before, report_after)]
    assert len(plan_rows[0]) > 0
    pd.testing.assert_frame_equal(*plan_rows)


def test_scorecard_metadata_and_the_anchored_final_plan(plan_env, sample_dir):
    store = plan_env.store
    import_input_dir(store, sample_dir, "sample")
    params = PlanningParameters(anchor_policy="DET_near", cutover_date="2025-02-15", recon_window_days=7,
                                apply_adjusted=True)
    store.create_version("anchored", "sample", params)
    outcome = materialize_version(plan_env.instance(), store, "anchored")
    assert outcome.success, outcome.errors
    kpis = store.read_kpis("anchored", SCORECARD_LEVEL)
    version = store.get_version("anchored")
    expected = scorecard_kpis(store.read_series("anchored", "det_adjusted"),
                              store.read_series("anchored", "mrp_final_adjusted"),
                              store.read_series("anchored", "weekly_summary_adjusted"),
                              store.load_input_set("sample"), version.params.resolved())
    pd.testing.assert_frame_equal(kpis[expected.columns].reset_index(drop=True), expected)

    meta = _latest(plan_env.instance(), "plan_scorecard", "anchored")
    assert meta["final_plan"].value == "anchored"
    totals = kpis[kpis["bucket_type"] == "total"].set_index("metric")["value"]
    for name in SCORECARD_KPI_NAMES:
        assert isinstance(meta[f"scorecard/{name}"], dg.FloatMetadataValue)
        assert meta[f"scorecard/{name}"].value == pytest.approx(float(totals[name]))
    assert meta["scorecard/fill_rate_display"].value.endswith(" %")
    families = meta["by_family"].value
    assert [r.data["family"] for r in families.records] == sorted(kpis.loc[kpis["bucket_type"] == "family",
                                                                           "bucket_key"].unique())
    assert "capacity_util" not in families.records[0].data  # capacity is pooled: no family bucket
    worst = meta["lowest_fill_rate_skus"].value.records
    sku_fill = kpis[(kpis["metric"] == "fill_rate") & (kpis["bucket_type"] == "sku")]
    lowest = sku_fill.sort_values(["value", "bucket_key"], kind="stable").head(10)
    assert [r.data["sku"] for r in worst] == list(lowest["bucket_key"])
    assert all(r.data["family"] for r in worst)
    assert [c.name for c in meta["lowest_fill_rate_skus"].value.schema.columns][:3] == ["sku", "family", "fill_rate"]
