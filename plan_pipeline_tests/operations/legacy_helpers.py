"""Shared helpers for the legacy backfill tests: the reference legacy material and our own chain."""
from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plan_pipeline.inputs.loader import load_input_dir
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.capacity import plan_capacity
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.frames import anchor_frames, capacity_frames, reconciliation_frame, report_kpi_frame
from plan_pipeline.planning.level_reconciliation import reconcile_levels
from plan_pipeline.planning.mrp import plan_mrp
from plan_pipeline.planning.report import plan_kpis, plan_report
from plan_pipeline_tests.conftest import require_reference
from plan_pipeline_tests.planning.oracle_cases import load_case

LEGACY_VERSIONS = ("legacy-default", "legacy-weekly", "legacy-tight-detnear", "legacy-dec2")
# legacy version -> the oracle case with the same inputs and options (legacy/README.md)
LEGACY_CASES = {
    "legacy-default": "default",
    "legacy-weekly": "weekly_set1_default",
    "legacy-tight-detnear": "tight_det_near_cutover_apply",
    "legacy-dec2": "round_dec2",
}
# rows of the legacy database's own plan_series / plan_kpis per version and level (README)
LEGACY_SERIES_ROWS = {
    "legacy-default": {"aggregate": 24, "det": 159, "mrp": 212, "mrp_final": 212, "weekly_summary": 53},
    "legacy-tight-detnear": {"aggregate": 36, "det": 265, "det_adjusted": 265, "mrp": 424, "mrp_final": 424,
                             "weekly_summary": 53},
}
TOL = 1e-9


def legacy_dir() -> Path:
    return require_reference() / "legacy"


def legacy_db() -> Path:
    return legacy_dir() / "scpln_legacy.db"


def writable_db_copy(target: Path) -> Path:
    """A writable copy of the reference legacy database (the original is read-only)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(legacy_db(), target)
    return target


def sqlite_exec(db: Path, sql: str, params: tuple = ()) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


@dataclass
class Chain:
    """Our own stage functions run on a legacy version's inputs: the frames our assets write."""

    series: dict[str, pd.DataFrame]
    kpis: dict[str, pd.DataFrame]


def our_chain(version_id: str) -> Chain:
    case = load_case(LEGACY_CASES[version_id])
    inputs = load_input_dir(case.input_dir)
    params = case.params.resolved()
    agg = plan_aggregate(inputs, params)
    det = plan_detail(agg, inputs, params)
    mrp = plan_mrp(det, inputs, params)
    cap = plan_capacity(det, mrp, inputs, params)
    rows, weekly = capacity_frames(cap)
    kpis_plan = plan_kpis(agg)
    series = {
        "aggregate": agg, "det": det, "mrp": mrp, "mrp_final": rows, "weekly_summary": weekly,
        "level_reconciliation": reconciliation_frame(reconcile_levels(agg, det, inputs, params, version_id)),
    }
    kpis = {"report": report_kpi_frame(plan_report(cap, inputs), kpis_plan)}
    if params.has_anchor_branch:
        result = anchor_adjust(agg, det, inputs, params)
        adjusted, carry = anchor_frames(result)
        series["det_adjusted"], series["carryover"] = adjusted, carry
        series["level_reconciliation_adjusted"] = reconciliation_frame(
            reconcile_levels(agg, adjusted, inputs, params, version_id))
        if params.apply_adjusted:
            mrp_adj = plan_mrp(adjusted, inputs, params)
            cap_adj = plan_capacity(adjusted, mrp_adj, inputs, params)
            series["mrp_adjusted"] = mrp_adj
            series["mrp_final_adjusted"], series["weekly_summary_adjusted"] = capacity_frames(cap_adj)
            kpis["report_adjusted"] = report_kpi_frame(plan_report(cap_adj, inputs), kpis_plan)
    return Chain(series, kpis)


def assert_frames_equal(got: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(got.columns) == list(expected.columns), f"{what}: columns {list(got.columns)} != {list(expected.columns)}"
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True), check_exact=False, atol=TOL, rtol=0,
        obj=what,
    )


def kpi_frame(store, version_id: str, level: str) -> pd.DataFrame:
    frame = store.read_kpis(version_id, level)
    return frame[["category", "metric", "bucket_type", "bucket_key", "value", "unit"]].reset_index(drop=True)


def assert_capacity_attrs_match(got: dict, expected: dict, what: str) -> None:
    """Weekly-summary attrs: equal, except leveled_load, which the legacy document only gives
    through the 6-decimal spill_in (approximation documented in docs/operations.md)."""
    got, expected = dict(got["capacity_plan"]), dict(expected["capacity_plan"])
    got_lv, exp_lv = got.pop("leveled_load"), expected.pop("leveled_load")
    assert got == expected, what
    assert len(got_lv) == len(exp_lv)
    assert max((abs(a - b) for a, b in zip(got_lv, exp_lv)), default=0.0) < 1e-6, what
