"""Capacity/service report (spec §14) and the stored plan KPIs (persistence spec §2.10).

``plan_report`` gives report.csv's rows: one ``capacity`` row per weekly-summary row, then
one ``service`` row per week (finished goods only; on-hand stock is ignored and each week's
fill rate is capped at 1, as in the reference);
``plan_pipeline.exports.reference_documents.report_csv_text`` writes them exactly as the reference does.

``plan_kpis`` computes fill rate / backlog / demand / supply totals **from the aggregate
plan itself**. Deliberate deviation: the reference first rewrites the aggregate from the
adjusted receipts (§16.2), which counts a shared week's receipt in both months and ignores
inventory; those KPIs are not reproduced.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.capacity import CapacityPlan
from plan_pipeline.planning.keys import isin_keys
from plan_pipeline.planning.rounding import round6
from plan_pipeline.planning.types import PlanningInputs
from plan_pipeline.planning.vocabulary import PLAN_KPI_COLUMNS

__all__ = ["REPORT_COLUMNS", "fill_rate", "plan_kpis", "plan_report"]

REPORT_COLUMNS = [
    "type", "week", "capacity", "original_load", "adjusted_load", "utilization",
    "spill_in", "spill_out", "demand", "supply_plan", "fill_rate",
]


def plan_report(capacity_plan: CapacityPlan, inputs: PlanningInputs) -> pd.DataFrame:
    """report.csv as a DataFrame: capacity rows then service rows; unused cells are NaN.

    ``utilization`` of a week without capacity is 0 (the CSV writes it as ``0``).
    """
    ws = capacity_plan.weekly_summary
    rows = capacity_plan.rows
    fg = {str(s) for s in inputs.mix_share["sku"]} if len(inputs.mix_share) else set()

    cap = ws["capacity"].to_numpy(dtype=np.float64)
    adjusted = ws["adjusted_load"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap > 0, round6(np.where(cap > 0, adjusted / np.where(cap > 0, cap, 1.0), 0.0)), 0.0)
    n_cap = len(ws)
    capacity_part = pd.DataFrame(
        {
            "type": ["capacity"] * n_cap,
            "week": ws["week"].astype(object).tolist(),
            "capacity": round6(cap),
            "original_load": round6(ws["original_load"].to_numpy(dtype=np.float64)),
            "adjusted_load": round6(adjusted),
            "utilization": util,
            "spill_in": round6(ws["spill_in"].to_numpy(dtype=np.float64)),
            "spill_out": round6(ws["spill_out"].to_numpy(dtype=np.float64)),
        }
    )

    is_fg = isin_keys(rows["item"], fg, as_text=True) if len(rows) else np.zeros(0, bool)
    # FG values as masked column arrays (no copy of the whole capacity frame)
    fg_weeks = rows["week"].to_numpy(dtype=object)[is_fg].astype(str) if len(rows) else np.zeros(0, dtype=object)
    if n_cap:
        weeks = ws["week"].astype(object).tolist()
    else:
        weeks = sorted(set(fg_weeks.tolist()))
    pos = pd.Index(weeks, dtype=object).get_indexer(fg_weeks) if len(fg_weeks) else np.zeros(0, np.int64)
    keep = pos >= 0
    nW = len(weeks)

    def fg_values(col: str) -> np.ndarray:
        return rows[col].to_numpy(dtype=np.float64)[is_fg] if len(rows) else np.zeros(0)

    gross = fg_values("gross_req")[keep]
    supply = (fg_values("scheduled_receipts") + fg_values("planned_order_receipt_adj"))[keep]
    dem = np.bincount(pos[keep], weights=gross, minlength=nW) if nW else np.zeros(0)
    sup = np.bincount(pos[keep], weights=supply, minlength=nW) if nW else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fill = np.where(dem > 0, round6(np.minimum(1.0, sup / np.where(dem > 0, dem, 1.0))), 1.0)
    service_part = pd.DataFrame(
        {
            "type": ["service"] * nW,
            "week": weeks,
            "demand": round6(dem),
            "supply_plan": round6(sup),
            "fill_rate": fill,
        }
    )
    out = pd.concat([capacity_part, service_part], ignore_index=True, sort=False)
    out = out.reindex(columns=REPORT_COLUMNS)
    for c in REPORT_COLUMNS[2:]:
        out[c] = out[c].astype("float64")
    out["type"] = out["type"].astype(object)
    out["week"] = out["week"].astype(object)
    return out


def fill_rate(demand: float, supply: float) -> float:
    """1.0 when demand <= 0, else supply/demand clamped to [0, 1]."""
    if demand <= 0:
        return 1.0
    return min(1.0, max(0.0, supply / demand))


def plan_kpis(aggregate: pd.DataFrame) -> pd.DataFrame:
    """Stored KPIs from the aggregate plan (§2.10 formulas; no receipt rewrite).

    Per period (sorted as strings): ``fill_rate`` (ratio) and ``backlog_total`` (units);
    totals (bucket ``total``/``total``): ``fill_rate``, ``backlog_total``, ``demand_total``,
    ``supply_total``. Empty aggregate => no rows. A missing period is bucketed as ``"None"``.
    """
    if aggregate is None or len(aggregate) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else object) for c in PLAN_KPI_COLUMNS})
    periods = aggregate["period"].astype(object).where(aggregate["period"].notna(), "None").astype(str).to_numpy()
    codes, uniq = pd.factorize(periods, sort=False)
    vals = {}
    for m in ("demand", "supply", "backlog"):
        v = np.nan_to_num(pd.to_numeric(aggregate[m], errors="coerce").to_numpy(dtype=np.float64), nan=0.0)
        total = float(np.bincount(np.zeros(len(v), dtype=np.int64), weights=v, minlength=1)[0])
        vals[m] = (np.bincount(codes, weights=v, minlength=len(uniq)), total)
    records = []
    for k in sorted(range(len(uniq)), key=lambda i: uniq[i]):
        d, s, b = vals["demand"][0][k], vals["supply"][0][k], vals["backlog"][0][k]
        records.append(("fill_rate", "month", str(uniq[k]), fill_rate(d, s), "ratio"))
        records.append(("backlog_total", "month", str(uniq[k]), float(b), "units"))
    D, S, B = vals["demand"][1], vals["supply"][1], vals["backlog"][1]
    records.append(("fill_rate", "total", "total", fill_rate(D, S), "ratio"))
    records.append(("backlog_total", "total", "total", B, "units"))
    records.append(("demand_total", "total", "total", D, "units"))
    records.append(("supply_total", "total", "total", S, "units"))
    df = pd.DataFrame.from_records(records, columns=PLAN_KPI_COLUMNS)
    df["value"] = df["value"].astype("float64")
    return df
