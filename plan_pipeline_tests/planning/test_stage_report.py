"""Report (report.csv) and stored KPIs."""
from __future__ import annotations

import numpy as np
import pytest

from plan_pipeline.exports.reference_documents import report_csv_text
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.capacity import plan_capacity
from plan_pipeline.planning.mrp import plan_mrp
from plan_pipeline.planning.report import REPORT_COLUMNS, plan_kpis, plan_report
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import PLAN_KPI_COLUMNS
from plan_pipeline_tests.planning.oracle_cases import case_names, load_case
from plan_pipeline_tests.planning.oracle_compare import (
    AGG_COLUMNS,
    DETAIL_COLUMNS,
    MRP_COLUMNS,
    aggregate_frame,
    assert_csv_close,
    detail_frame,
    load_json,
    mrp_frame,
    rows_frame,
)
from plan_pipeline_tests.planning.stage_chain import case_chain
from plan_pipeline_tests.planning.synthetic import make_inputs

ADJUSTED_CASES = [n for n in case_names() if n in ("det_near_cutover_apply", "det_near_nowindow_cutover_apply", "tight_det_near_cutover_apply")]


@pytest.mark.parametrize("name", case_names())
def test_report_matches_oracle(name):
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    plan = plan_capacity(detail_frame(case.oracle_file("sku_week.json")), mrp_frame(case.oracle_file("mrp.json")), inputs, case.params)
    df = plan_report(plan, inputs)
    assert list(df.columns) == REPORT_COLUMNS
    text = report_csv_text(df)
    assert_csv_close(text, case.oracle_file("report.csv"))
    # the writer reproduces the reference byte for byte
    assert text == case.oracle_file("report.csv").read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", ADJUSTED_CASES)
def test_report_adjusted_matches_oracle(name):
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    plan = plan_capacity(detail_frame(case.oracle_file("sku_week_adjusted.json")), mrp_frame(case.oracle_file("mrp_adjusted.json")), inputs, case.params)
    assert_csv_close(report_csv_text(plan_report(plan, inputs)), case.oracle_file("report_adjusted.csv"))


@pytest.mark.parametrize("name", case_names())
def test_report_chained(name):
    chain = case_chain(name)
    plan = plan_capacity(chain.detail, chain.mrp, chain.inputs, chain.params)
    assert_csv_close(report_csv_text(plan_report(plan, chain.inputs)), chain.case.oracle_file("report.csv"))
    if name in ADJUSTED_CASES:
        adj = anchor_adjust(chain.aggregate, chain.detail, chain.inputs, chain.params)
        plan_adj = plan_capacity(adj.rows, plan_mrp(adj.rows, chain.inputs, chain.params), chain.inputs, chain.params)
        assert_csv_close(report_csv_text(plan_report(plan_adj, chain.inputs)), chain.case.oracle_file("report_adjusted.csv"))


def test_report_rows_layout_and_zero_capacity():
    inputs = make_inputs(mix_share=[("F", "A", 1.0)])  # no capacity at all
    det = rows_frame([{"family": "F", "period": "2025-01", "sku": "A", "week": "2025-01-W1", "demand": 4, "supply": 4, "supply_plan": 4, "backlog": 0}], DETAIL_COLUMNS)
    mrp = rows_frame([
        {"item": "A", "sku": "A", "week": "2025-01-W1", "gross_req": 4, "scheduled_receipts": 1, "on_hand_start": 0, "net_req": 3,
         "planned_order_receipt": 3, "planned_order_release": 3, "lt_weeks": 0, "lot": 1, "moq": 0, "on_hand_end": 0},
        {"item": "A", "sku": "A", "week": "2025-01-W2", "gross_req": 0, "scheduled_receipts": 0, "on_hand_start": 0, "net_req": 0,
         "planned_order_receipt": 0, "planned_order_release": 0, "lt_weeks": 0, "lot": 1, "moq": 0, "on_hand_end": 0},
    ], MRP_COLUMNS)
    plan = plan_capacity(det, mrp, inputs, PlanningParameters())
    df = plan_report(plan, inputs)
    assert df["type"].tolist() == ["capacity", "capacity", "service", "service"]
    text = report_csv_text(df).split("\r\n")
    # capacity 0: load cannot be placed, utilization written as 0; service row: no receipt_adj (all spilled)
    assert text[1] == "capacity,2025-01-W1,0.0,3.0,0.0,0,0.0,3.0,,,"
    assert text[2] == "capacity,2025-01-W2,0.0,0.0,0.0,0,3.0,3.0,,,"
    assert text[3] == "service,2025-01-W1,,,,,,,4.0,1.0,0.25"
    assert text[4] == "service,2025-01-W2,,,,,,,0.0,0.0,1.0"


def test_plan_kpis_small_frame():
    agg = rows_frame([
        {"family": "F1", "period": "2025-02", "demand": 100, "supply": 80, "backlog": 20, "capacity_total": 0},
        {"family": "F2", "period": "2025-02", "demand": 50, "supply": 50, "backlog": 0, "capacity_total": 0},
        {"family": "F1", "period": "2025-01", "demand": 0, "supply": 0, "backlog": 0, "capacity_total": 0},
        {"family": "F2", "period": "2025-03", "demand": 10, "supply": 15, "backlog": 0, "capacity_total": 0},
    ], AGG_COLUMNS)
    kpis = plan_kpis(agg)
    assert list(kpis.columns) == PLAN_KPI_COLUMNS
    got = {(r.metric, r.bucket_type, r.bucket_key): (r.value, r.unit) for r in kpis.itertuples()}
    assert got == {
        ("fill_rate", "month", "2025-01"): (1.0, "ratio"),       # no demand
        ("backlog_total", "month", "2025-01"): (0.0, "units"),
        ("fill_rate", "month", "2025-02"): (130 / 150, "ratio"),
        ("backlog_total", "month", "2025-02"): (20.0, "units"),
        ("fill_rate", "month", "2025-03"): (1.0, "ratio"),       # clamped (15/10)
        ("backlog_total", "month", "2025-03"): (0.0, "units"),
        ("fill_rate", "total", "total"): (145 / 160, "ratio"),
        ("backlog_total", "total", "total"): (20.0, "units"),
        ("demand_total", "total", "total"): (160.0, "units"),
        ("supply_total", "total", "total"): (145.0, "units"),
    }
    assert len(kpis) == 2 * 3 + 4
    assert kpis["bucket_key"].tolist()[:6] == ["2025-01", "2025-01", "2025-02", "2025-02", "2025-03", "2025-03"]
    assert plan_kpis(rows_frame([], AGG_COLUMNS)).empty


def test_plan_kpis_come_from_the_aggregate_not_the_receipt_rewrite(reference_dir):
    """Deliberate deviation from §16.2/16.3: the reference's stored KPIs are computed after the
    receipt rewrite (shared weeks double-counted: supply_total 4330 > demand 3780)."""
    case = load_case("db_storage_both_default")
    agg = aggregate_frame(case.oracle_file("aggregate.json"))
    ours = plan_kpis(agg).set_index(["metric", "bucket_type", "bucket_key"])["value"]
    theirs = {(k["metric"], k["bucket_type"], k["bucket_key"]): k["value"] for k in load_json(case.oracle_file("db_plan_kpis.json"))}
    assert ours[("supply_total", "total", "total")] == pytest.approx(agg["supply"].sum())
    assert ours[("demand_total", "total", "total")] == theirs[("demand_total", "total", "total")]
    assert ours[("supply_total", "total", "total")] != theirs[("supply_total", "total", "total")]
    assert set(ours.index) == set(theirs)
    assert np.all(plan_kpis(agg).query("metric == 'fill_rate'")["value"].between(0, 1))
