"""Stage 6 (anchor adjustment): the four anchor_stage oracle cases, the pipeline cases and
the decisions taken on the reference's oddities (§19.11)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from plan_pipeline.exports.reference_documents import csv_text, sku_week_adjusted_document
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.anchor import (
    CARRYOVER_CSV_COLUMNS,
    anchor_adjust,
    carryover_csv_rows,
    carryover_frame,
)
from plan_pipeline.planning.level_reconciliation import reconcile_levels
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.planning.oracle_cases import case_names, load_case
from plan_pipeline_tests.planning.oracle_compare import (
    ANCHOR_STAGE_CASES,
    DETAIL_COLUMNS,
    aggregate_frame,
    anchor_stage_case,
    assert_csv_close,
    assert_json_close,
    detail_frame,
    load_json,
    rows_frame,
)
from plan_pipeline_tests.planning.stage_chain import case_chain
from plan_pipeline_tests.planning.synthetic import make_inputs

ADJUSTED_CASES = [n for n in case_names() if n in ("det_near_cutover_apply", "det_near_nowindow_cutover_apply", "tight_det_near_cutover_apply")]
METRICS = ("demand", "supply", "backlog")


def _assert_same_types(actual_rows, expected_rows):
    bad = [(i, k) for i, (a, e) in enumerate(zip(actual_rows, expected_rows)) for k in e if type(a[k]) is not type(e[k])]
    assert not bad, f"int/float representation differs at {bad[:5]}"


@pytest.mark.parametrize("name", ANCHOR_STAGE_CASES)
def test_anchor_stage_case(reference_dir, name):
    folder, params, recon_params, inputs = anchor_stage_case(reference_dir, name)
    agg = aggregate_frame(folder / "aggregate.json")
    det = detail_frame(folder / "sku_week_perturbed.json")
    perturbed = load_json(folder / "sku_week_perturbed.json")
    result = anchor_adjust(agg, det, inputs, params)
    doc = sku_week_adjusted_document(result, perturbed["schema_version"], perturbed["inputs_summary"], "int")
    expected = load_json(folder / "sku_week_adjusted.json")
    assert_json_close(doc, expected, f"{name}/sku_week_adjusted.json", ignore=())
    _assert_same_types(doc["rows"], expected["rows"])
    assert_csv_close(csv_text(CARRYOVER_CSV_COLUMNS, carryover_csv_rows(result)), folder / "carryover.csv")
    after = reconcile_levels(agg, result.rows, inputs, recon_params, "after")
    assert_json_close(after, load_json(folder / "reconciliation_log_after.json"), f"{name}/reconciliation_log_after.json")


@pytest.mark.parametrize("name", ADJUSTED_CASES)
def test_pipeline_anchor_is_noop_and_matches_oracle(name):
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    agg = aggregate_frame(case.oracle_file("aggregate.json"))
    det_doc = load_json(case.oracle_file("sku_week.json"))
    det = detail_frame(case.oracle_file("sku_week.json"))
    result = anchor_adjust(agg, det, inputs, case.params)
    doc = sku_week_adjusted_document(result, det_doc["schema_version"], det_doc["inputs_summary"], case.params.round_mode)
    expected = load_json(case.oracle_file("sku_week_adjusted.json"))
    assert_json_close(doc, expected, f"{name}/sku_week_adjusted.json", ignore=())
    _assert_same_types(doc["rows"], expected["rows"])
    assert_csv_close(csv_text(CARRYOVER_CSV_COLUMNS, carryover_csv_rows(result)), case.oracle_file("carryover.csv"))
    assert not result.touched.any()


@pytest.mark.parametrize("name", ADJUSTED_CASES)
def test_pipeline_anchor_chained(name):
    chain = case_chain(name)
    result = anchor_adjust(chain.aggregate, chain.detail, chain.inputs, chain.params)
    doc = sku_week_adjusted_document(result, chain.detail_doc["schema_version"], chain.detail_doc["inputs_summary"], chain.params.round_mode)
    assert_json_close(doc, load_json(chain.case.oracle_file("sku_week_adjusted.json")), f"{name} chained", ignore=())


# --------------------------------------------------------------------------- behaviour


def _perturbed(reference_dir):
    folder, params, _, inputs = anchor_stage_case(reference_dir, "det_near_w7")
    return aggregate_frame(folder / "aggregate.json"), detail_frame(folder / "sku_week_perturbed.json"), inputs, params


def _group_totals(frame, family, period):
    sel = frame[(frame["family"] == family) & (frame["period"] == period)]
    return sel[list(METRICS)].sum().to_numpy()


def _agg_totals(agg, family, period):
    sel = agg[(agg["family"] == family) & (agg["period"] == period)]
    return sel[list(METRICS)].iloc[-1].to_numpy()


@pytest.mark.parametrize("policy", ["DET_near", "AGG_far", "blend"])
@pytest.mark.parametrize("window", [None, 7, 14, 35])
def test_cutover_month_matches_aggregate_after_adjust(reference_dir, policy, window):
    agg, det, inputs, params = _perturbed(reference_dir)
    params = dataclasses.replace(params, anchor_policy=policy, recon_window_days=window)
    result = anchor_adjust(agg, det, inputs, params)
    for fam in ("F1", "F2", "F3"):
        assert np.allclose(_group_totals(result.rows, fam, "2025-05"), _agg_totals(agg, fam, "2025-05"), atol=1e-6)
    # other months untouched (the June perturbation stays)
    other = det["period"] != "2025-05"
    assert result.rows[other].equals(det[other])
    assert not result.touched[other.to_numpy()].any()
    assert result.carryover == []


def test_no_window_weights_follow_policy(reference_dir):
    agg, det, inputs, params = _perturbed(reference_dir)
    params = dataclasses.replace(params, recon_window_days=None)
    rows = {}
    for policy in ("DET_near", "AGG_far"):
        res = anchor_adjust(agg, det, inputs, dataclasses.replace(params, anchor_policy=policy))
        f3 = (res.rows["family"] == "F3") & (res.rows["period"] == "2025-05")
        rows[policy] = res.rows.loc[f3, "backlog"].to_numpy() - det.loc[f3, "backlog"].to_numpy()
    # F3 has 5 rows (W18..W22) and backlog delta -5: DET_near weights 1..5, AGG_far 5..1
    assert np.allclose(rows["DET_near"], -5 * np.arange(1, 6) / 15, atol=1e-6)
    assert np.allclose(rows["AGG_far"], -5 * np.arange(5, 0, -1) / 15, atol=1e-6)


def test_ratio_zero_means_unlimited(reference_dir):
    """Decision: max_adjust_ratio 0 keeps the reference meaning 'no per-row limit'."""
    agg, det, inputs, params = _perturbed(reference_dir)
    a = anchor_adjust(agg, det, inputs, dataclasses.replace(params, max_adjust_ratio=0.0))
    b = anchor_adjust(agg, det, inputs, dataclasses.replace(params, max_adjust_ratio=None))
    assert a.rows.equals(b.rows)


def test_carryover_both_split_and_auto(reference_dir):
    agg, det, inputs, params = _perturbed(reference_dir)
    both = anchor_adjust(agg, det, inputs, dataclasses.replace(params, max_adjust_ratio=0.01, carryover="both", carryover_split=0.7))
    assert [(e["family"], e["to_period"]) for e in both.carryover] == [
        (f, p) for f in ("F1", "F2", "F3") for p in ("2025-04", "2025-06")
    ]
    assert all("cap_norm" in e for e in both.carryover)
    assert both.summary == {"count": 6, "prev": 3, "next": 3, "carryover_split_next": 0.7, "headroom_capacity_weight": 0.5}
    assert "split(next)=0.70" in both.note and both.note.endswith("cap_w=0.50")
    auto = anchor_adjust(agg, det, inputs, dataclasses.replace(params, carryover="auto"))
    assert len(auto.carryover) == 3
    assert set(auto.carryover[0]) == {"family", "from_period", "to_period", "metrics", "headroom_prev", "headroom_next",
                                      "cap_norm_prev", "cap_norm_next"}
    frame = carryover_frame(auto)
    assert list(frame.columns) == CARRYOVER_CSV_COLUMNS and len(frame) == 3


def test_carryover_moves_a_real_residual():
    """A residual that pass 2 cannot place (no room) is carried to the next month's rows."""
    agg = rows_frame([{"family": "F", "period": "2025-03", "demand": 20, "supply": 0, "backlog": 0, "capacity_total": 0},
                      {"family": "F", "period": "2025-04", "demand": 10, "supply": 0, "backlog": 0, "capacity_total": 0}],
                     ["family", "period", "demand", "supply", "backlog", "capacity_total"])
    det = rows_frame([{"family": "F", "period": "2025-03", "sku": "A", "week": "2025-03-W1", "demand": 10, "supply": 0, "supply_plan": 0, "backlog": 0},
                      {"family": "F", "period": "2025-04", "sku": "A", "week": "2025-04-W1", "demand": 10, "supply": 0, "supply_plan": 0, "backlog": 0},
                      {"family": "F", "period": "2025-04", "sku": "A", "week": "2025-04-W2", "demand": 0, "supply": 0, "supply_plan": 0, "backlog": 0}],
                     DETAIL_COLUMNS)
    params = PlanningParameters(cutover_date="2025-03-15", anchor_policy="DET_near", max_adjust_ratio=0.1, carryover="next")
    res = anchor_adjust(agg, det, make_inputs(), params)
    # the only March row (limit 1.0) takes +1; no room is left, so 9 move to April, where
    # W1 (limit 1.0) takes +1 and W2 (value 0: limit = the full 9) takes the other 8
    assert res.rows["demand"].tolist() == [11.0, 11.0, 8.0]
    assert res.carryover == [{"family": "F", "from_period": "2025-03", "to_period": "2025-04",
                              "metrics": {"demand": 9.0, "supply": 0.0, "backlog": 0.0}}]
    assert res.rows["demand"].sum() == pytest.approx(det["demand"].sum() + 10)


def test_duplicate_rows_are_adjusted_by_position():
    """Fix of the reference's list.index lookup: two identical rows are two rows."""
    agg = rows_frame([{"family": "F", "period": "2025-03", "demand": 26, "supply": 0, "backlog": 0, "capacity_total": 0}],
                     ["family", "period", "demand", "supply", "backlog", "capacity_total"])
    row = {"family": "F", "period": "2025-03", "sku": "A", "week": "2025-03-W1", "demand": 10, "supply": 0, "supply_plan": 0, "backlog": 0}
    det = rows_frame([row, dict(row), {**row, "week": "2025-03-W2"}], DETAIL_COLUMNS)
    res = anchor_adjust(agg, det, make_inputs(), PlanningParameters(cutover_date="2025-03-15", anchor_policy="DET_near"))
    # weights 1, 2, 3 per row over delta -4
    assert res.rows["demand"].tolist() == pytest.approx([10 - 4 / 6, 10 - 8 / 6, 10 - 12 / 6], abs=1e-6)


def test_policy_spelling_with_dash_is_det_near():
    agg = rows_frame([{"family": "F", "period": "2025-03", "demand": 26, "supply": 0, "backlog": 0, "capacity_total": 0}],
                     ["family", "period", "demand", "supply", "backlog", "capacity_total"])
    row = {"family": "F", "period": "2025-03", "sku": "A", "week": "2025-03-W1", "demand": 10, "supply": 0, "supply_plan": 0, "backlog": 0}
    det = rows_frame([row, {**row, "week": "2025-03-W2"}, {**row, "week": "2025-03-W3"}], DETAIL_COLUMNS)
    a = anchor_adjust(agg, det, make_inputs(), PlanningParameters(cutover_date="2025-03-15", anchor_policy="DET-NEAR"))
    b = anchor_adjust(agg, det, make_inputs(), PlanningParameters(cutover_date="2025-03-15", anchor_policy="DET_near"))
    assert a.rows.equals(b.rows)


def test_within_tolerance_and_empty():
    agg, det = (rows_frame([], ["family", "period", "demand", "supply", "backlog", "capacity_total"]), rows_frame([], DETAIL_COLUMNS))
    res = anchor_adjust(agg, det, None, PlanningParameters(cutover_date="2025-03-15"))
    assert len(res.rows) == 0 and res.carryover == [] and res.summary["count"] == 0
    doc = sku_week_adjusted_document(res)
    assert doc["rows"] == [] and doc["cutover"]["anchor_policy"] == "DET_near"
