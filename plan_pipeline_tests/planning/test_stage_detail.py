"""Stage 2 — allocate (spec §7): oracle parity, mass balance, int-mode properties."""
from __future__ import annotations

import numpy as np
import pytest

from plan_pipeline.exports.reference_documents import aggregate_document, detail_document
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.detail import DETAIL_COLUMNS, plan_detail
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.planning.oracle_cases import assert_json_matches, case_names, load_oracle_json
from plan_pipeline_tests.planning.stage_chain import case_chain
from plan_pipeline_tests.planning.synthetic import make_inputs, without_calendar

ROUND_MODES = ("none", "int", "dec1", "dec2")
QTY = ["demand", "supply", "supply_plan", "backlog"]


@pytest.mark.parametrize("case_name", case_names())
def test_detail_matches_oracle(case_name):
    res = case_chain(case_name)
    expected = load_oracle_json(res.case, "sku_week.json")
    assert_json_matches(res.detail_doc, expected)
    assert res.detail_doc["inputs_summary"] == expected["inputs_summary"]
    assert res.detail_doc["schema_version"] == expected["schema_version"]


def test_detail_frame_contract(reference_dir):
    inputs = load_input_dir(reference_dir / "inputs/sample_tight")
    params = PlanningParameters()
    det = plan_detail(plan_aggregate(inputs, params), inputs, params)
    assert list(det.columns) == DETAIL_COLUMNS
    for c in QTY:
        assert det[c].dtype == np.float64
    assert (det["supply_plan"] == det["supply"]).all()
    # pseudo-SKU for the family without mix rows; 3:2 shares normalised
    assert set(det.loc[det.family == "F3", "sku"]) == {"F3"}
    jan = det[(det.period == "2025-01") & (det.family == "F1")].groupby("sku")["demand"].sum()
    assert jan.to_dict() == {"SKU1": 60.0, "SKU2": 40.0}
    # a shared calendar week appears in both months for the same SKU
    w05 = det[(det.sku == "SKU1") & (det.week == "2025-W05")]
    assert w05["period"].tolist() == ["2025-01", "2025-02"]


def test_detail_spec_example(reference_dir):
    inputs = load_input_dir(reference_dir / "inputs/samples_planning")
    params = PlanningParameters()
    det = plan_detail(plan_aggregate(inputs, params), inputs, params)
    jan = det[(det.sku == "SKU1") & (det.period == "2025-01")]
    assert jan["demand"].tolist() == [12, 13, 13, 13, 9]


def _inputs_variants(reference_dir, name):
    inputs = load_input_dir(reference_dir / "inputs" / name)
    return [("calendar", inputs, None), ("weeks3", without_calendar(inputs), 3),
            ("weeks4", without_calendar(inputs), 4), ("weeks5", without_calendar(inputs), 5)]


@pytest.mark.parametrize("input_name", ["samples_planning", "sample_tight"])
@pytest.mark.parametrize("mode", ROUND_MODES)
def test_detail_mass_balance(reference_dir, input_name, mode):
    for label, inputs, weeks in _inputs_variants(reference_dir, input_name):
        params = PlanningParameters(round_mode=mode, fallback_weeks=weeks or 4)
        agg = plan_aggregate(inputs, params)
        det = plan_detail(agg, inputs, params)
        sums = det.groupby(["family", "period"], sort=False)[QTY].sum()
        expect = agg.set_index(["family", "period"])
        assert len(sums) == len(expect), label
        for col, agg_col in zip(QTY, ["demand", "supply", "supply", "backlog"]):
            got = sums[col].reindex(expect.index).to_numpy()
            want = expect[agg_col].to_numpy()
            if mode == "int":
                assert np.array_equal(got, want), (label, col)
            else:
                assert np.abs(got - want).max() < 1e-6, (label, col)
        if weeks is not None:
            k = det.groupby(["family", "period", "sku"])["week"].count()
            expected_k = {3: {3}, 4: {5}, 5: {5}}[weeks]  # 2025 months all touch 5 ISO weeks
            assert set(k) == expected_k, label
        if mode == "int":
            vals = det[QTY].to_numpy()
            assert (vals % 1 == 0).all()
            assert ((det["supply"] >= 0) & (det["supply"] <= det["demand"])).all()
            assert (det["backlog"] == det["demand"] - det["supply"]).all()


def test_detail_fallback_codes(reference_dir):
    inputs = without_calendar(load_input_dir(reference_dir / "inputs/samples_planning"))
    params = PlanningParameters(fallback_weeks=3)
    det = plan_detail(plan_aggregate(inputs, params), inputs, params)
    assert det.loc[det.period == "2025-12", "week"].unique().tolist() == ["2025-12-W1", "2025-12-W2", "2025-12-W3"]


def test_detail_zero_shares():
    inputs = make_inputs(
        demand_family=[("F", "2025-01", 10.0)], capacity=[("W", "2025-01", 100.0)],
        mix_share=[("F", "A", 0.0), ("F", "B", -1.0)],
    )
    for mode, expected in (("int", 10.0), ("none", 0.0)):
        params = PlanningParameters(round_mode=mode)
        det = plan_detail(plan_aggregate(inputs, params), inputs, params)
        by_sku = det.groupby("sku", sort=False)["demand"].sum()
        assert by_sku.index.tolist() == ["A", "B"]
        assert by_sku.sum() == expected
        if mode == "int":
            assert by_sku.tolist() == [5.0, 5.0]


def test_detail_non_int_residual_on_last_week(reference_dir):
    inputs = load_input_dir(reference_dir / "inputs/samples_planning")
    params = PlanningParameters(round_mode="dec1")
    agg = plan_aggregate(inputs, params)
    det = plan_detail(agg, inputs, params)
    grp = det[(det.sku == "SKU1") & (det.period == "2025-01")]
    # all weeks but the last are 1-decimal values; the total is exact
    assert all(round(v, 1) == v for v in grp["demand"].iloc[:-1])
    assert grp["demand"].sum() == pytest.approx(60.0, abs=1e-9)


def test_detail_document_inputs_summary(reference_dir):
    inputs = without_calendar(load_input_dir(reference_dir / "inputs/samples_planning"))
    params = PlanningParameters(round_mode="dec2", fallback_weeks=3)
    agg = plan_aggregate(inputs, params)
    agg_doc = aggregate_document(agg, inputs, params)
    det = plan_detail(agg, inputs, params)
    doc = detail_document(det, agg_doc, inputs, params)
    assert doc["inputs_summary"] == {
        **agg_doc["inputs_summary"], "aggregate_rows": 24, "mix_families": 2, "weeks_per_period": 3,
        "round_mode": "dec2", "calendar_mode": "fallback_weeks", "calendar_periods": 0,
    }
    assert doc == detail_document(det, agg_doc["inputs_summary"], inputs, params, aggregate_rows=24)
    assert all(type(r["demand"]) is float for r in doc["rows"])


def test_detail_empty_aggregate():
    inputs = make_inputs(capacity=[("W", "P", 1.0)])
    params = PlanningParameters()
    det = plan_detail(plan_aggregate(inputs, params), inputs, params)
    assert det.empty and list(det.columns) == DETAIL_COLUMNS


def test_detail_invalid_calendar_raises():
    from plan_pipeline.planning.calendar import CalendarError

    bad = {"periods": [{"period": "2025-01", "start_date": "2025-01-01", "end_date": "2025-01-31",
                        "weeks": [{"week_code": "W1", "sequence": 1, "start_date": "x", "end_date": "2025-01-07"}]}]}
    inputs = make_inputs(calendar=bad, demand_family=[("F", "2025-01", 1.0)], capacity=[("W", "2025-01", 1.0)])
    params = PlanningParameters()
    with pytest.raises(CalendarError, match=r"periods\[0\]\.weeks\[0\]\.start_date"):
        plan_detail(plan_aggregate(inputs, params), inputs, params)
