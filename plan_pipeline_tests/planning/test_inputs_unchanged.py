"""No stage writes into the frames it is given.

The run-local frame cache hands every consumer a *shallow* copy of an upstream frame (its
column arrays are shared, see ``RunLocalCache``), and ``capacity_plan``'s rows share the MRP
frame's arrays. That is only sound if no planning function modifies an input frame in place;
this test runs every stage and check on the bundled sample, for each leveling mode, and
compares every input with a deep copy taken before the call.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.capacity import plan_capacity
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.frames import anchor_frames, capacity_frames, capacity_plan_from_frames
from plan_pipeline.planning.invariants import (
    detail_violations,
    leveling_violations,
    mrp_violations,
    released_capacity_violations,
    report_violations,
)
from plan_pipeline.planning.level_reconciliation import reconcile_levels
from plan_pipeline.planning.mrp import plan_mrp
from plan_pipeline.planning.overrides import apply_detail_overrides
from plan_pipeline.planning.report import plan_kpis, plan_report
from plan_pipeline.planning.types import PlanningParameters


def _frozen(*frames: pd.DataFrame) -> list[pd.DataFrame]:
    return [f.copy(deep=True) for f in frames]


def _assert_unchanged(before: list[pd.DataFrame], after: tuple[pd.DataFrame, ...], what: str) -> None:
    for i, (b, a) in enumerate(zip(before, after)):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{what} input {i}")
        assert a.attrs == b.attrs, f"{what} input {i}: attrs changed"


def _inputs_unchanged(call, what: str, *frames: pd.DataFrame):
    before = _frozen(*frames)
    result = call(*frames)
    _assert_unchanged(before, frames, what)
    return result


@pytest.mark.parametrize("preset", ["det_near", "agg_far", "blend"])
def test_no_stage_modifies_its_input_frames(sample_dir, preset):
    inputs = load_input_dir(sample_dir)
    params = PlanningParameters(preset=preset, cutover_date="2025-03-12", apply_adjusted=True,
                                round_mode="int").resolved()

    aggregate = plan_aggregate(inputs, params)
    detail = _inputs_unchanged(lambda a: plan_detail(a, inputs, params), "plan_detail", aggregate)
    _inputs_unchanged(lambda a, d: detail_violations(a, d, params), "detail_violations", aggregate, detail)
    plain = _inputs_unchanged(lambda d: apply_detail_overrides(d, []), "apply_detail_overrides", detail)
    pd.testing.assert_frame_equal(plain.frame, detail)
    first = detail.iloc[0]
    edit = {"key": f"det:week={first['week']},sku={first['sku']},period={first['period']}",
            "payload": {"demand": float(first["demand"]) + 5.0}, "locked": True}
    edited = _inputs_unchanged(lambda d: apply_detail_overrides(d, [edit]), "apply_detail_overrides", detail)
    assert edited.frame["demand"].iat[0] == first["demand"] + 5.0 and edited.locked[0]
    _inputs_unchanged(lambda a, d: reconcile_levels(a, d, inputs, params, "before"), "reconcile_levels",
                      aggregate, detail)
    locked = np.zeros(len(detail), dtype=bool)
    anchored = _inputs_unchanged(lambda a, d: anchor_adjust(a, d, inputs, params, locked=locked),
                                 "anchor_adjust", aggregate, detail)
    anchored_rows, _ = anchor_frames(anchored)

    for det in (detail, anchored_rows):
        mrp = _inputs_unchanged(lambda d: plan_mrp(d, inputs, params), "plan_mrp", det)
        _inputs_unchanged(mrp_violations, "mrp_violations", mrp)
        plan = _inputs_unchanged(lambda d, m: plan_capacity(d, m, inputs, params), "plan_capacity", det, mrp)
        rows, weekly = capacity_frames(plan)
        _inputs_unchanged(lambda w: leveling_violations(w, plan.leveled_load, plan.unplaced_load),
                          "leveling_violations", weekly)
        _inputs_unchanged(lambda w, r: released_capacity_violations(w, r, plan.fg_items, params),
                          "released_capacity_violations", weekly, rows)
        rebuilt = _inputs_unchanged(capacity_plan_from_frames, "capacity_plan_from_frames", rows, weekly)
        report = _inputs_unchanged(lambda r, w: plan_report(capacity_plan_from_frames(r, w), inputs), "plan_report",
                                   rows, weekly)
        kpis = _inputs_unchanged(plan_kpis, "plan_kpis", aggregate)
        _inputs_unchanged(report_violations, "report_violations", report, kpis, aggregate)
        # the capacity rows share the MRP columns: the MRP frame itself is still the MRP result
        assert "planned_order_release_adj" not in mrp.columns
        assert rebuilt.rows["planned_order_release_adj"].equals(rows["planned_order_release_adj"])
