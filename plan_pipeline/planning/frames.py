"""Stage results <-> the flat frames the plan store keeps (pure conversions, no I/O).

Every stage result is stored as one DataFrame per level; what is not a row (summaries,
parameters echoed by the reference documents) travels in the frame's ``attrs``, which the
store keeps beside the rows. These functions convert both ways, so the reference documents
can be rebuilt from what was stored.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.planning.anchor import AnchorResult, carryover_frame
from plan_pipeline.planning.capacity import BOUNDARY_COLUMNS, CapacityPlan
from plan_pipeline.planning.level_reconciliation import deltas_frame
from plan_pipeline.planning.report import REPORT_COLUMNS
from plan_pipeline.planning.vocabulary import STORED_KPI_COLUMNS

# ----------------------------------------------------------------------------- capacity
_CAPACITY_ATTRS = (
    "boundary_summary", "reconcile_params", "inputs_summary", "round_mode", "mode", "fg_items",
    "unplaced_load", "share_next", "has_window", "extra",
)


def capacity_frames(plan: CapacityPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows for level ``mrp_final``, weekly summary for level ``weekly_summary``)."""
    rows = plan.rows.copy(deep=False)  # shares the column arrays: 795k rows at 5,000 SKUs
    rows.index = pd.RangeIndex(len(rows))
    weekly = plan.weekly_summary.reset_index(drop=True).copy()
    for col in ("boundary_period", "in_window_pre", "in_window_post"):
        if col in weekly.columns:
            weekly[col] = weekly[col].astype("boolean")
    for col in ("boundary_index", "boundary_size"):
        if col in weekly.columns:
            weekly[col] = weekly[col].astype("Int64")
    attrs = {name: getattr(plan, name) for name in _CAPACITY_ATTRS}
    attrs["leveled_load"] = np.asarray(plan.leveled_load, dtype=float).tolist()
    weekly.attrs = {"capacity_plan": attrs}
    rows.attrs = {}
    return rows, weekly


def capacity_plan_from_frames(rows: pd.DataFrame, weekly: pd.DataFrame) -> CapacityPlan:
    attrs = dict(weekly.attrs.get("capacity_plan") or {})
    weekly = weekly.copy()
    # cleared before the column work: pandas deep-copies a frame's attrs (the 25 KB capacity
    # plan) into every Series and frame derived from it
    weekly.attrs = {}
    for col in BOUNDARY_COLUMNS:
        if col in weekly.columns and col != "zone":
            values = weekly[col].astype(object)
            weekly[col] = values.where(values.notna(), None).map(
                lambda v: v if v is None or isinstance(v, bool) else (bool(v) if isinstance(v, np.bool_) else int(v))
            )
    leveled = np.asarray(attrs.pop("leveled_load", []), dtype=float)
    shared = rows.copy(deep=False)  # the MRP columns are read, never written: no copy
    shared.index = pd.RangeIndex(len(shared))
    return CapacityPlan(rows=shared, weekly_summary=weekly, leveled_load=leveled, **attrs)


# ----------------------------------------------------------------------------- reconciliation log
def reconciliation_frame(log: dict) -> pd.DataFrame:
    """The log's deltas as rows; the rest of the document in ``attrs['log']``."""
    frame = deltas_frame(log)
    frame.attrs = {"log": {k: v for k, v in log.items() if k != "deltas"}}
    return frame


def reconciliation_log_from_frame(frame: pd.DataFrame) -> dict:
    head = dict(frame.attrs.get("log") or {})
    cols = [c for c in frame.columns if c != "boundary_period"]
    values = {c: frame[c].tolist() for c in frame.columns}
    deltas = []
    for i in range(len(frame)):
        row: dict[str, Any] = {}
        for c in cols:
            v = values[c][i]
            if isinstance(v, (np.bool_,)):
                v = bool(v)
            row[c] = v
        if "boundary_period" in values and bool(values["boundary_period"][i]):
            row["boundary_period"] = True
        deltas.append(row)
    doc: dict[str, Any] = {}
    for key in ("schema_version", "version_id", "cutover", "inputs_summary", "tolerance", "summary"):
        if key in head:
            doc[key] = head[key]
    doc["deltas"] = deltas
    return doc


# ----------------------------------------------------------------------------- anchor
def anchor_frames(result: AnchorResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(adjusted detail for level ``det_adjusted``, carryover log for level ``carryover``)."""
    rows = result.rows.reset_index(drop=True).copy()
    rows.attrs = {
        "anchor": {
            "note": result.note,
            "cutover": result.cutover,
            "summary": result.summary,
            "carryover": result.carryover,
            "adjusted_groups": [list(g) for g in result.adjusted_groups],
        }
    }
    carry = carryover_frame(result)
    carry.attrs = {}
    return rows, carry


def anchor_result_from_frames(rows: pd.DataFrame) -> AnchorResult:
    meta = dict(rows.attrs.get("anchor") or {})
    frame = rows.copy()
    frame.attrs = {}
    return AnchorResult(
        rows=frame,
        carryover=list(meta.get("carryover") or []),
        summary=dict(meta.get("summary") or {}),
        note=meta.get("note", ""),
        cutover=dict(meta.get("cutover") or {}),
        touched=np.zeros((len(frame), 3), dtype=bool),
        adjusted_groups=[tuple(g) for g in meta.get("adjusted_groups") or []],
    )


# ----------------------------------------------------------------------------- report and KPIs
_UNITS = {"utilization": "ratio", "fill_rate": "ratio"}


def report_kpi_frame(report: pd.DataFrame, kpis: pd.DataFrame) -> pd.DataFrame:
    """report.csv rows (capacity, service) and the plan KPIs as one long ``plan_kpis`` frame."""
    parts = []
    for category in ("capacity", "service"):
        block = report[report["type"] == category]
        metrics = [c for c in REPORT_COLUMNS[2:] if block[c].notna().any()] if len(block) else []
        if not metrics:
            continue
        long = block.melt(id_vars=["week"], value_vars=metrics, var_name="metric", value_name="value",
                          ignore_index=False)
        long["_order"] = long.index
        long["_metric_order"] = long["metric"].map({m: i for i, m in enumerate(metrics)})
        long = long.sort_values(["_order", "_metric_order"], kind="stable")
        long = long[long["value"].notna()]
        parts.append(pd.DataFrame({
            "category": category,
            "metric": long["metric"].to_numpy(),
            "bucket_type": "week",
            "bucket_key": long["week"].to_numpy(),
            "value": long["value"].to_numpy(dtype=float),
            "unit": long["metric"].map(lambda m: _UNITS.get(m, "units")).to_numpy(),
        }))
    if len(kpis):
        parts.append(pd.DataFrame({
            "category": "plan",
            "metric": kpis["metric"].to_numpy(),
            "bucket_type": kpis["bucket_type"].to_numpy(),
            "bucket_key": kpis["bucket_key"].to_numpy(),
            "value": kpis["value"].to_numpy(dtype=float),
            "unit": kpis["unit"].to_numpy(),
        }))
    columns = STORED_KPI_COLUMNS
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else object) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def report_from_kpi_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Rebuild report.csv's frame (capacity rows, then service rows) from the long KPI rows."""
    rows: list[dict[str, Any]] = []
    index: dict[tuple[str, str], int] = {}
    for category in ("capacity", "service"):
        block = long[long["category"] == category]
        for week, metric, value in zip(block["bucket_key"], block["metric"], block["value"]):
            key = (category, week)
            if key not in index:
                index[key] = len(rows)
                rows.append({"type": category, "week": week})
            rows[index[key]][metric] = value
    frame = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    for c in REPORT_COLUMNS[2:]:
        frame[c] = frame[c].astype("float64")
    frame["type"] = frame["type"].astype(object)
    frame["week"] = frame["week"].astype(object)
    return frame
