"""Stage 5 (aggregate vs detail reconciliation log) and its CSV exports."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plan_pipeline.exports.reference_documents import (
    compare_csv_rows,
    only_violations,
    reconciliation_csv_rows,
    reconciliation_csv_text,
)
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.level_reconciliation import cutover_tags, deltas_frame, reconcile_levels
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.planning.oracle_cases import case_names, load_case
from plan_pipeline_tests.planning.oracle_compare import (
    AGG_COLUMNS,
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


def _label(case) -> str:
    return case.version_id or "pipeline"


@pytest.mark.parametrize("name", case_names())
def test_reconciliation_log_and_csvs_match_oracle(name):
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    agg = aggregate_frame(case.oracle_file("aggregate.json"))
    det = detail_frame(case.oracle_file("sku_week.json"))
    log = reconcile_levels(agg, det, inputs, case.params, _label(case))
    assert_json_close(log, load_json(case.oracle_file("reconciliation_log.json")), f"{name}/reconciliation_log.json")
    rows = reconciliation_csv_rows(log, "before")
    assert_csv_close(reconciliation_csv_text(rows), case.oracle_file("reconciliation_before.csv"))
    assert_csv_close(reconciliation_csv_text(only_violations(rows)), case.oracle_file("reconciliation_violations_before.csv"))


@pytest.mark.parametrize("name", ADJUSTED_CASES)
def test_adjusted_log_and_compare_csvs_match_oracle(name):
    case = load_case(name)
    inputs = load_input_dir(case.input_dir)
    agg = aggregate_frame(case.oracle_file("aggregate.json"))
    det = detail_frame(case.oracle_file("sku_week.json"))
    det_adj = detail_frame(case.oracle_file("sku_week_adjusted.json"))
    log = reconcile_levels(agg, det, inputs, case.params, "pipeline")
    log_adj = reconcile_levels(agg, det_adj, inputs, case.params, "pipeline-adjusted")
    assert_json_close(log_adj, load_json(case.oracle_file("reconciliation_log_adjusted.json")), f"{name}/log_adjusted")
    rows = compare_csv_rows(log, "before", log_adj, "after")
    assert_csv_close(reconciliation_csv_text(rows), case.oracle_file("reconciliation_compare.csv"))
    assert_csv_close(reconciliation_csv_text(only_violations(rows)), case.oracle_file("reconciliation_violations_compare.csv"))


@pytest.mark.parametrize("name", case_names())
def test_reconciliation_chained(name):
    chain = case_chain(name)
    log = reconcile_levels(chain.aggregate, chain.detail, chain.inputs, chain.params, _label(chain.case))
    assert_json_close(log, load_json(chain.case.oracle_file("reconciliation_log.json")), f"{name} chained")
    if name in ADJUSTED_CASES:
        adj = anchor_adjust(chain.aggregate, chain.detail, chain.inputs, chain.params)
        log_adj = reconcile_levels(chain.aggregate, adj.rows, chain.inputs, chain.params, "pipeline-adjusted")
        assert_json_close(log_adj, load_json(chain.case.oracle_file("reconciliation_log_adjusted.json")), f"{name} adj chained")
        assert_csv_close(
            reconciliation_csv_text(compare_csv_rows(log, "before", log_adj, "after")),
            chain.case.oracle_file("reconciliation_compare.csv"),
        )


@pytest.mark.parametrize("name", ANCHOR_STAGE_CASES)
def test_anchor_stage_before_log(reference_dir, name):
    folder, _, recon_params, inputs = anchor_stage_case(reference_dir, name)
    agg = aggregate_frame(folder / "aggregate.json")
    det = detail_frame(folder / "sku_week_perturbed.json")
    log = reconcile_levels(agg, det, inputs, recon_params, "before")
    assert_json_close(log, load_json(folder / "reconciliation_log_before.json"), f"{name}/before")
    assert log["summary"]["tol_violations"] == 4  # four rows, one failing metric each
    df = deltas_frame(log)
    assert int((~df["ok"]).sum()) == 4 and int(df["boundary_period"].sum()) == 3


# --------------------------------------------------------------------------- fixes and edge cases


def _small():
    agg = rows_frame(
        [
            {"family": "F1", "period": "2025-02", "demand": 10, "supply": 10, "backlog": 0, "capacity_total": 100},
            {"family": "F1", "period": "2025-03", "demand": 20, "supply": 15, "backlog": 5, "capacity_total": 100},
            {"family": "F2", "period": "2025-03", "demand": 8, "supply": 8, "backlog": 0, "capacity_total": 100},
        ],
        AGG_COLUMNS,
    )
    det = rows_frame(
        [
            {"family": "F1", "period": "2025-02", "sku": "A", "week": "2025-02-W1", "demand": 10, "supply": 10, "supply_plan": 10, "backlog": 0},
            {"family": "F1", "period": "2025-03", "sku": "A", "week": "2025-03-W1", "demand": 12, "supply": 9, "supply_plan": 9, "backlog": 3},
            {"family": "F1", "period": "2025-03", "sku": "A", "week": "2025-03-W2", "demand": 8, "supply": 6, "supply_plan": 6, "backlog": 2},
            {"family": "F2", "period": "2025-03", "sku": "B", "week": "2025-03-W1", "demand": 9, "supply": 8, "supply_plan": 8, "backlog": 1},
        ],
        DETAIL_COLUMNS,
    )
    return agg, det


def test_dayless_cutover_tags_the_month():
    """Fix of §19.12: ``2025-03`` tags 2025-03 as boundary (the reference tags nothing)."""
    agg, det = _small()
    log = reconcile_levels(agg, det, make_inputs(), PlanningParameters(cutover_date="2025-03"), "v")
    assert log["summary"]["boundary"]["period"] == "2025-03"
    tagged = [(d["family"], d["period"]) for d in log["deltas"] if d.get("boundary_period")]
    assert tagged == [("F1", "2025-03"), ("F2", "2025-03")]
    assert log["summary"]["boundary"]["violations"] == 1
    assert log["summary"]["boundary"]["top"][0]["family"] == "F2"
    assert cutover_tags("2025-03") == ("2025-03", None)
    assert cutover_tags("2025-05-20") == ("2025-05", "2025-W21")
    assert cutover_tags("garbage") == (None, None)


def test_violation_counting_and_fields():
    agg, det = _small()
    log = reconcile_levels(agg, det, make_inputs(), PlanningParameters(cutover_date="2025-03-15"), "v")
    f2 = next(d for d in log["deltas"] if d["family"] == "F2")
    assert f2["delta_demand"] == 1.0 and f2["rel_demand"] == pytest.approx(round(1 / 9, 6))
    assert f2["ok_demand"] is False and f2["ok_supply"] is True and f2["ok_backlog"] is False
    assert log["summary"]["tol_violations"] == 2
    assert log["summary"]["max_abs_delta"] == {"demand": 1.0, "supply": 0.0, "backlog": 1.0}
    assert log["inputs_summary"] == {"aggregate_rows": 3, "det_rows": 4, "families": 2, "periods": 2}
    assert list(log["deltas"][0].keys())[-1] == "ok"  # non-boundary rows have no boundary key


def test_detail_without_period_or_supply_rolls_up():
    agg, det = _small()
    det = det.copy()
    det["period"] = None
    det["supply"] = np.nan  # falls back to supply_plan
    det.loc[det["week"].str.startswith("2025-03"), "week"] = ["2025-W10", "2025-W11", "2025-W10"]
    log = reconcile_levels(agg, det, make_inputs(), PlanningParameters(), "v")
    keys = [(d["family"], d["period"]) for d in log["deltas"]]
    assert ("F1", "2025-03") in keys and ("F1", "2025-02") in keys
    f1m = next(d for d in log["deltas"] if (d["family"], d["period"]) == ("F1", "2025-03"))
    assert f1m["det_supply"] == 15.0


def test_csv_labels_and_violations_filter():
    agg, det = _small()
    log = reconcile_levels(agg, det, make_inputs(), PlanningParameters(), "v")
    rows = compare_csv_rows(log, "before", log, "after")
    assert [r["label"] for r in rows] == ["before"] * 3 + ["after"] * 3
    text = reconciliation_csv_text(only_violations(rows))
    lines = text.split("\r\n")
    assert lines[0].startswith("label,family,period,agg_demand") and lines[-1] == ""
    assert lines[1].startswith("before,F2,2025-03,8.0,9.0,1.0,0.111111,False,")
    assert len(lines) == 4


def test_empty_inputs_log():
    agg = rows_frame([], AGG_COLUMNS)
    det = rows_frame([], DETAIL_COLUMNS)
    log = reconcile_levels(agg, det, None, PlanningParameters(cutover_date="2025-01-15"), "v")
    assert log["deltas"] == [] and log["summary"]["rows"] == 0
    assert log["summary"]["boundary"] == {"period": "2025-01", "violations": 0,
                                          "max_abs_delta": {"demand": 0.0, "supply": 0.0, "backlog": 0.0}, "top": []}
    assert isinstance(deltas_frame(log), pd.DataFrame)
