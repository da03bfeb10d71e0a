"""Stage 1 — aggregate (spec §6): oracle parity and properties."""
from __future__ import annotations

import numpy as np
import pytest

from plan_pipeline.exports.reference_documents import aggregate_document
from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.aggregate import AGGREGATE_COLUMNS, plan_aggregate
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline_tests.planning.oracle_cases import assert_json_matches, case_names, load_oracle_json
from plan_pipeline_tests.planning.stage_chain import case_chain
from plan_pipeline_tests.planning.synthetic import make_inputs

ROUND_MODES = ("none", "int", "dec1", "dec2")


@pytest.mark.parametrize("case_name", case_names())
def test_aggregate_matches_oracle(case_name):
    res = case_chain(case_name)
    expected = load_oracle_json(res.case, "aggregate.json")
    assert_json_matches(res.aggregate_doc, expected)
    assert res.aggregate_doc["inputs_summary"] == expected["inputs_summary"]


def test_aggregate_frame_contract(reference_dir):
    inputs = load_input_dir(reference_dir / "inputs/sample_tight")
    rows = plan_aggregate(inputs, PlanningParameters())
    assert list(rows.columns) == AGGREGATE_COLUMNS
    for c in AGGREGATE_COLUMNS[2:]:
        assert rows[c].dtype == np.float64
    keys = list(zip(rows["period"], rows["family"]))
    assert keys == sorted(keys)
    # duplicate F3 2025-03 rows are summed: 47 + 10
    f3 = rows[(rows.family == "F3") & (rows.period == "2025-03")]
    assert f3["demand"].tolist() == [57.0]


@pytest.mark.parametrize("mode", ROUND_MODES)
def test_aggregate_supply_properties(reference_dir, mode):
    inputs = load_input_dir(reference_dir / "inputs/sample_tight")
    rows = plan_aggregate(inputs, PlanningParameters(round_mode=mode))
    for _period, grp in rows.groupby("period"):
        assert grp["capacity_total"].nunique() == 1
        cap = grp["capacity_total"].iloc[0]
        assert (grp["supply"] <= grp["demand"] + 1e-9).all()
        assert np.allclose(grp["backlog"], grp["demand"] - grp["supply"], atol=1e-6)
        if mode == "int":
            assert grp["supply"].sum() == min(cap, grp["demand"].sum())
            assert (rows[["demand", "supply", "backlog", "capacity_total"]] % 1 == 0).all().all()
        else:
            # independent rounding per family: off by at most half a unit of the last decimal each
            half_unit = {"none": 0.5e-6, "dec1": 0.05, "dec2": 0.005}[mode]
            assert abs(grp["supply"].sum() - min(cap, grp["demand"].sum())) <= len(grp) * half_unit + 1e-9


def test_aggregate_rationing_example(reference_dir):
    # Appendix A.1: tight_default 2025-05 and 2025-04
    inputs = load_input_dir(reference_dir / "inputs/sample_tight")
    rows = plan_aggregate(inputs, PlanningParameters()).set_index(["period", "family"])
    may = rows.loc["2025-05"]
    assert may["supply"].tolist() == [87, 62, 31]
    assert may["backlog"].tolist() == [83, 58, 30]
    # second example of A.1 (capacity 200 + 100 for demand 160/110/53)
    inputs = make_inputs(
        demand_family=[("F1", "2025-04", 160.0), ("F2", "2025-04", 110.0), ("F3", "2025-04", 53.0)],
        capacity=[("WC1", "2025-04", 200.0), ("WC2", "2025-04", 100.0)],
        mix_share=[],
    )
    apr = plan_aggregate(inputs, PlanningParameters())
    assert apr["supply"].tolist() == [149, 102, 49]
    assert apr["backlog"].tolist() == [11, 8, 4]


def test_aggregate_edge_cases():
    inputs = make_inputs(
        demand_family=[("F1", "P1", 60.3), ("F2", "P1", 40.4),   # rounded capacity is the target
                       ("F1", "P2", -5.0), ("F2", "P2", 3.0),    # negative period total
                       ("F1", "P3", 10.0)],                      # no capacity row => cap 0
        capacity=[("W", "P1", 50.0), ("W", "P1", 49.5), ("W", "P2", 10.0), ("W", "P9", 5.0)],
        mix_share=[("F1", "S1", 1.0)],
    )
    rows = plan_aggregate(inputs, PlanningParameters()).set_index(["period", "family"])
    assert rows.loc[("P1", "F1"), "capacity_total"] == 100  # 99.5 -> 100 (half to even)
    assert rows.loc["P1", "supply"].tolist() == [60, 40]
    assert rows.loc["P2", "supply"].tolist() == [0, 0]
    assert rows.loc["P2", "demand"].tolist() == [-5, 3]
    assert rows.loc["P2", "backlog"].tolist() == [0, 3]
    assert rows.loc[("P3", "F1"), "supply"] == 0 and rows.loc[("P3", "F1"), "capacity_total"] == 0
    assert "P9" not in rows.index.get_level_values(0)
    none = plan_aggregate(inputs, PlanningParameters(round_mode="none")).set_index(["period", "family"])
    assert none.loc[("P1", "F1"), "supply"] == round(60.3 * 99.5 / 100.7, 6)
    assert none.loc[("P1", "F1"), "capacity_total"] == 99.5


def test_aggregate_document_types():
    inputs = make_inputs(demand_family=[("F1", "P1", 10.0)], capacity=[("W", "P1", 4.0)], mix_share=[])
    doc = aggregate_document(plan_aggregate(inputs, PlanningParameters()), inputs, PlanningParameters())
    assert doc["rows"] == [{"family": "F1", "period": "P1", "demand": 10, "supply": 4, "backlog": 6, "capacity_total": 4}]
    assert all(type(v) is int for v in list(doc["rows"][0].values())[2:])
    assert doc["inputs_summary"] == {"demand_rows": 1, "capacity_rows": 1, "mix_rows": 0}
    p = PlanningParameters(round_mode="dec1")
    doc = aggregate_document(plan_aggregate(inputs, p), inputs, p)
    assert all(type(v) is float for v in list(doc["rows"][0].values())[2:])


def test_aggregate_empty_demand():
    inputs = make_inputs(capacity=[("W", "P1", 4.0)])
    rows = plan_aggregate(inputs, PlanningParameters())
    assert list(rows.columns) == AGGREGATE_COLUMNS and rows.empty
    assert aggregate_document(rows, inputs, PlanningParameters())["rows"] == []
