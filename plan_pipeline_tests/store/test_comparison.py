"""Version comparison in the store: the baseline rule, compare_versions on a hand-checked tiny plan,
the row diff of one level, and the stored baseline comparison (replaced, read back, deleted with
its version)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.planning.vocabulary import ADJ_COLUMNS, DETAIL_COLUMNS, MRP_COLUMNS, WEEKLY_COLUMNS
from plan_pipeline.store import PlanStore, PlanStoreError
from plan_pipeline.store.comparison import COMPARISON_LEVEL, COMPONENT_FAMILY

pytestmark = pytest.mark.both_backends  # every test here runs on DuckDB and PostgreSQL (--store-backend)

DET_A = [
    ("F1", "2025-01", "A", "2025-W01", 10, 8, 2),
    ("F1", "2025-01", "B", "2025-W01", 5, 5, 0),
    ("F2", "2025-01", "C", "2025-W01", 4, 4, 0),
    ("F1", "2025-01", "A", "2025-W05", 3, 3, 0),  # a week shared by two months: two fragments
    ("F1", "2025-02", "A", "2025-W05", 6, 6, 0),
]
DET_B = [
    ("F1", "2025-01", "A", "2025-W01", 13, 8, 5),  # demand +3 -> backlog +3
    ("F1", "2025-01", "B", "2025-W01", 5, 5, 0),
    ("F2", "2025-01", "C", "2025-W01", 4, 2, 2),  # supply -2 -> backlog +2
    ("F1", "2025-01", "A", "2025-W05", 3, 3, 0),
    ("F1", "2025-02", "A", "2025-W05", 6, 6, 0),
    ("F2", "2025-02", "C", "2025-W06", 7, 7, 0),  # a row only b has
]


def det(rows) -> pd.DataFrame:
    frame = pd.DataFrame([(f, p, s, w, float(d), float(su), float(su), float(b)) for f, p, s, w, d, su, b in rows],
                         columns=DETAIL_COLUMNS)
    return frame


def mrp_final(on_hand_a_w05: float, receipt_a_w05: float) -> pd.DataFrame:
    """Items A, C (finished goods) and X (a component) over W01 and W05."""
    rows = []
    for item, week, on_hand, receipt in (
        ("A", "2025-W01", 10.0, 5.0), ("A", "2025-W05", on_hand_a_w05, receipt_a_w05),
        ("C", "2025-W01", 4.0, 0.0), ("C", "2025-W05", 4.0, 0.0),
        ("X", "2025-W01", 100.0, 50.0), ("X", "2025-W05", 100.0, 0.0),
    ):
        rows.append({"item": item, "sku": item, "week": week, "gross_req": 1.0, "scheduled_receipts": 0.0,
                     "on_hand_start": on_hand, "net_req": 0.0, "planned_order_receipt": receipt,
                     "planned_order_release": receipt, "lt_weeks": 1, "lot": 1.0, "moq": 0.0,
                     "on_hand_end": on_hand, "planned_order_release_adj": receipt,
                     "planned_order_receipt_adj": receipt})
    return pd.DataFrame(rows, columns=MRP_COLUMNS + ADJ_COLUMNS)


def weekly(load_w05: float) -> pd.DataFrame:
    return pd.DataFrame([("2025-W01", 100.0, 50.0, 0.0, 0.0, 50.0, 0.0, 50.0),
                         ("2025-W05", 100.0, load_w05, 0.0, 0.0, load_w05, 0.0, 0.0)], columns=WEEKLY_COLUMNS)


@pytest.fixture
def two_plans(store: PlanStore):
    """Versions a and b with hand-made published det, mrp_final and weekly_summary levels."""
    for version, rows, on_hand, receipt, load in (("a", DET_A, 20.0, 0.0, 60.0), ("b", DET_B, 30.0, 10.0, 70.0)):
        store.create_version(version, None, PlanningParameters())
        store.replace_series(version, "det", det(rows))
        store.replace_series(version, "mrp_final", mrp_final(on_hand, receipt))
        store.replace_series(version, "weekly_summary", weekly(load))
    return store


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [(r.bucket, r.metric, None if math.isnan(r.baseline) else r.baseline,
             None if math.isnan(r.value) else r.value, r.delta) for r in frame.itertuples()]


PLAN = ["demand", "supply", "backlog"]


def test_compare_versions_by_sku_family_month_week_total(two_plans):
    store = two_plans
    sku = store.compare_versions("a", "b", "sku", PLAN)
    assert list(sku.columns) == ["bucket", "metric", "baseline", "value", "delta"]
    assert rows(sku) == [
        ("C", "demand", 4.0, 11.0, 7.0),
        ("C", "supply", 4.0, 9.0, 5.0),
        ("A", "backlog", 2.0, 5.0, 3.0),
        ("A", "demand", 19.0, 22.0, 3.0),
        ("C", "backlog", 0.0, 2.0, 2.0),
    ]  # B is unchanged: no row
    assert rows(store.compare_versions("a", "b", "family", PLAN)) == [
        ("F2", "demand", 4.0, 11.0, 7.0),
        ("F2", "supply", 4.0, 9.0, 5.0),
        ("F1", "backlog", 2.0, 5.0, 3.0),
        ("F1", "demand", 24.0, 27.0, 3.0),
        ("F2", "backlog", 0.0, 2.0, 2.0),
    ]
    # months from the fragments' own period: W05's 2025-02 fragment and W06 land in 2025-02
    assert rows(store.compare_versions("a", "b", "month", PLAN)) == [
        ("2025-02", "demand", 6.0, 13.0, 7.0),
        ("2025-02", "supply", 6.0, 13.0, 7.0),
        ("2025-01", "backlog", 2.0, 7.0, 5.0),
        ("2025-01", "demand", 22.0, 25.0, 3.0),
        ("2025-01", "supply", 20.0, 18.0, -2.0),
    ]
    # a week only b has is listed with every metric, even one whose value is 0
    assert rows(store.compare_versions("a", "b", "week", PLAN)) == [
        ("2025-W06", "demand", None, 7.0, 7.0),
        ("2025-W06", "supply", None, 7.0, 7.0),
        ("2025-W01", "backlog", 2.0, 7.0, 5.0),
        ("2025-W01", "demand", 19.0, 22.0, 3.0),
        ("2025-W01", "supply", 17.0, 15.0, -2.0),
        ("2025-W06", "backlog", None, 0.0, 0.0),
    ]
    assert rows(store.compare_versions("a", "b", "total", PLAN)) == [
        ("total", "demand", 28.0, 38.0, 10.0),
        ("total", "backlog", 2.0, 7.0, 5.0),
        ("total", "supply", 26.0, 31.0, 5.0),
    ]
    # the other direction is the mirror image; a version against itself has no change
    back = store.compare_versions("b", "a", "total", PLAN)
    assert back["delta"].tolist() == [-10.0, -5.0, -5.0]
    assert store.compare_versions("a", "a", "sku").empty


def test_mrp_and_capacity_metrics_roll_up_flows_and_average_stock(two_plans):
    store = two_plans
    metrics = ["planned_receipts", "projected_on_hand", "leveled_load"]
    # receipts are summed; on hand is summed over the bucket's items, then averaged over its weeks
    assert rows(store.compare_versions("a", "b", "total", metrics)) == [
        ("total", "leveled_load", 110.0, 120.0, 10.0),
        ("total", "planned_receipts", 55.0, 65.0, 10.0),
        ("total", "projected_on_hand", 119.0, 124.0, 5.0),
    ]
    assert rows(store.compare_versions("a", "b", "sku", metrics)) == [
        ("A", "planned_receipts", 5.0, 15.0, 10.0),
        ("A", "projected_on_hand", 15.0, 20.0, 5.0),
    ]
    family = store.compare_versions("a", "b", "family", metrics)
    assert rows(family) == [("F1", "planned_receipts", 5.0, 15.0, 10.0), ("F1", "projected_on_hand", 15.0, 20.0, 5.0)]
    assert family.attrs["not_compared"] == ["leveled_load"]  # the capacity plan has no family
    # a week counts in the first month it has in the detail plan (W05: 2025-01)
    assert rows(store.compare_versions("a", "b", "month", metrics)) == [
        ("2025-01", "leveled_load", 110.0, 120.0, 10.0),
        ("2025-01", "planned_receipts", 55.0, 65.0, 10.0),
        ("2025-01", "projected_on_hand", 119.0, 124.0, 5.0),
    ]
    assert rows(store.compare_versions("a", "b", "week", metrics)) == [
        ("2025-W05", "leveled_load", 60.0, 70.0, 10.0),
        ("2025-W05", "planned_receipts", 0.0, 10.0, 10.0),
        ("2025-W05", "projected_on_hand", 124.0, 134.0, 10.0),
    ]
    # a component has no family of its own
    store.replace_series("b", "mrp_final", mrp_final(30.0, 10.0).assign(
        planned_order_receipt_adj=lambda f: f["planned_order_receipt_adj"].where(f["item"] != "X", 60.0)))
    components = store.compare_versions("a", "b", "family", ["planned_receipts"])
    assert rows(components)[0] == (COMPONENT_FAMILY, "planned_receipts", 50.0, 120.0, 70.0)


def scorecard(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    return pd.DataFrame([{"category": "scorecard", "metric": m, "bucket_type": t, "bucket_key": k, "value": v,
                          "unit": "ratio"} for (m, t, k), v in values.items()])


def test_scorecard_kpis_are_compared_value_by_value_where_both_store_them(two_plans):
    store = two_plans
    store.replace_kpis("a", "scorecard", scorecard({
        ("fill_rate", "total", "total"): 0.9, ("fill_rate", "sku", "A"): 0.8, ("fill_rate", "sku", "B"): 1.0,
        ("service_level", "sku", "A"): 0.5}))
    store.replace_kpis("b", "scorecard", scorecard({
        ("fill_rate", "total", "total"): 0.85, ("fill_rate", "sku", "A"): 0.6, ("fill_rate", "sku", "B"): 1.0,
        ("fill_rate", "sku", "C"): 0.7}))
    by_sku = store.compare_versions("a", "b", "sku", ["fill_rate", "service_level"])
    # ratios are never summed: each SKU's stored value; C is new; service_level only a stores
    assert [(b, m, v, d) for b, m, _, v, d in rows(by_sku)] == [("C", "fill_rate", 0.7, pytest.approx(0.7)),
                                                                 ("A", "fill_rate", 0.6, pytest.approx(-0.2))]
    assert by_sku.attrs["not_compared"] == ["service_level"]
    total = store.compare_versions("a", "b", "total", ["fill_rate"])
    assert rows(total) == [("total", "fill_rate", 0.9, 0.85, pytest.approx(-0.05))]


def test_unknown_bucket_metric_or_version_is_refused(two_plans):
    store = two_plans
    with pytest.raises(PlanStoreError, match=r"unknown comparison bucket 'day'; choose one of: total, month, week"):
        store.compare_versions("a", "b", "day")
    with pytest.raises(PlanStoreError, match=r"unknown comparison metric\(s\) 'margin'; choose from: demand"):
        store.compare_versions("a", "b", "total", ["demand", "margin"])
    with pytest.raises(PlanStoreError, match="unknown plan version 'zz'"):
        store.compare_versions("a", "zz")


def test_level_row_diff_and_its_refusals(two_plans):
    store = two_plans
    diff = store.level_row_diff("a", "b", "det")
    assert diff[["time_bucket_key", "period_key", "item_key", "presence"]].values.tolist() == [
        ["2025-W01", "2025-01", "A", "both"], ["2025-W01", "2025-01", "C", "both"],
        ["2025-W06", "2025-02", "C", "only b"]]
    assert diff["demand_delta"].tolist() == [3.0, 0.0, 7.0]
    assert diff["backlog_delta"].tolist() == [3.0, 2.0, 0.0]
    assert store.level_row_diff("a", "a", "det").empty
    with pytest.raises(PlanStoreError, match="unknown plan level 'foo'; choose one of: aggregate, det"):
        store.level_row_diff("a", "b", "foo")
    with pytest.raises(PlanStoreError, match="neither 'a' nor 'b' publishes level 'mrp'; their levels: det, "
                                             "mrp_final, weekly_summary"):
        store.level_row_diff("a", "b", "mrp")


def test_stored_comparison_is_replaced_read_back_and_deleted_with_its_version(two_plans):
    store = two_plans
    frames = {by: store.compare_versions("a", "b", by) for by in ("total", "family")}
    written = store.write_baseline_comparison("b", "a", frames, run_id="r1")
    assert written == 3 * sum(len(f) for f in frames.values())
    stored = store.read_baseline_comparison("b")
    assert stored.attrs["baseline"] == "a" and stored.attrs["buckets"] == ["total", "family"]
    # written about the published plan, not part of it
    publication = store.publication("b")
    assert COMPARISON_LEVEL not in publication["kpi_levels"] and "r1" not in publication["runs"]
    store.create_version("c", None, PlanningParameters())
    store.write_baseline_comparison("c", "a", frames)
    assert store.publication("c")["complete"] is False
    for by, frame in frames.items():
        pd.testing.assert_frame_equal(stored[stored["by"] == by].drop(columns="by").reset_index(drop=True), frame,
                                      check_like=False)
    # replaced whole, never added to: "no baseline" leaves no rows
    assert store.write_baseline_comparison("b", None, {}, run_id="r2") == 0
    empty = store.read_baseline_comparison("b")
    assert empty.empty and empty.attrs["baseline"] is None
    assert store.read_kpis("b", COMPARISON_LEVEL).empty
    assert store.read_baseline_comparison("a") is None
    store.write_baseline_comparison("b", "a", frames)
    store.delete_version("b", reason="test")
    assert store.find_version("b") is None
    with store.snapshot() as tx:
        counts = tx.version_row_counts("b")
    # only the audit trail's 'delete' event outlives the version (by design)
    assert {t: n for t, n in counts.items() if n} == {"plan_override_events": 1}


@pytest.fixture
def labelled(store: PlanStore, sample_dir):
    import_input_dir(store, sample_dir, "s")
    import_input_dir(store, sample_dir, "t")
    return store


def approve(store: PlanStore, version: str) -> None:
    store.transition_status(version, "submitted")
    store.transition_status(version, "approved")


def test_baseline_is_the_duplicate_source_else_the_latest_approved_version_of_the_label(labelled):
    store = labelled
    store.create_version("first", "s", PlanningParameters())
    assert store.baseline_version("first") is None  # nothing approved, not a duplicate
    approve(store, "first")
    assert store.baseline_version("first") is None  # never itself
    store.create_version("other", "t", PlanningParameters())
    approve(store, "other")  # approved, but another input set
    store.create_version("second", "s", PlanningParameters())
    approve(store, "second")
    store.create_version("draft", "s", PlanningParameters())
    assert store.baseline_version("draft") == "second"  # the latest approval of label s
    assert store.baseline_version("second") == "first"
    assert store.baseline_version("other") is None
    # a duplicate compares with its source, whatever its status
    store.duplicate_version("draft", "copy")
    assert store.baseline_version("copy") == "draft"
    store.duplicate_version("copy", "copy2")
    assert store.baseline_version("copy2") == "copy"
    # once the source is gone, the label's latest approved version
    store.delete_version("copy", reason="test")
    assert store.baseline_version("copy2") == "second"
    with pytest.raises(PlanStoreError, match="unknown plan version 'nope'"):
        store.baseline_version("nope")
