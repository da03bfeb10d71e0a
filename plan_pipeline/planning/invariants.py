"""Conservation laws and plan invariants, as pure functions returning violation tables.

Each function returns a DataFrame with one row per violation (empty when the law
holds); the Dagster asset checks report them. Tolerances follow the round mode: a
rounded quantity may differ from the exact law by at most half a rounding step per
row that was rounded.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.keys import isin_keys
from plan_pipeline.planning.types import PlanningParameters

EPS = 1e-9
# float64 sums of shares of large quantities: 1e-12 relative is ~4,500 ulps, far below any real error
RELATIVE_TOLERANCE = 1e-12


def rounding_step(round_mode: str) -> float:
    return {"int": 1.0, "dec1": 0.1, "dec2": 0.01}.get(round_mode, 1e-6)


def aggregate_violations(aggregate: pd.DataFrame, params: PlanningParameters) -> pd.DataFrame:
    """Per period: supply <= demand, supply <= capacity, backlog = demand - supply, and in
    int mode Σ supply = min(capacity, Σ demand) exactly (non-negative demand)."""
    problems = []
    if aggregate.empty:
        return pd.DataFrame(columns=["period", "family", "rule", "detail"])
    step = rounding_step(params.round_mode)
    row_tol = 0.0 if params.round_mode == "int" else step / 2 + EPS
    d = aggregate["demand"].to_numpy(float)
    s = aggregate["supply"].to_numpy(float)
    b = aggregate["backlog"].to_numpy(float)
    over = s > np.maximum(d, 0) + row_tol + EPS
    for i in np.flatnonzero(over):
        problems.append((aggregate["period"].iat[i], aggregate["family"].iat[i], "supply exceeds demand",
                         f"supply {s[i]} > demand {d[i]}"))
    bad_backlog = np.abs(b - np.maximum(0, d - s)) > 2 * row_tol + EPS
    for i in np.flatnonzero(bad_backlog):
        problems.append((aggregate["period"].iat[i], aggregate["family"].iat[i], "backlog != demand - supply",
                         f"backlog {b[i]} vs demand {d[i]} - supply {s[i]}"))
    per = aggregate.groupby("period", sort=False).agg(
        demand=("demand", "sum"), supply=("supply", "sum"), cap=("capacity_total", "first"), n=("family", "size"),
        min_demand=("demand", "min"),
    )
    for period, r in per.iterrows():
        tol = r.n * row_tol + EPS
        if r.supply > r.cap + tol:
            problems.append((period, None, "supply exceeds capacity", f"Σ supply {r.supply} > capacity {r.cap}"))
        if params.round_mode == "int" and r.min_demand >= 0:
            target = max(0.0, min(float(np.floor(r.cap + EPS)), r.demand))
            if abs(r.supply - target) > EPS:
                problems.append((period, None, "Σ supply != min(capacity, Σ demand)",
                                 f"Σ supply {r.supply} vs target {target}"))
    return pd.DataFrame(problems, columns=["period", "family", "rule", "detail"])


def detail_violations(aggregate: pd.DataFrame, detail: pd.DataFrame, params: PlanningParameters) -> pd.DataFrame:
    """Σ detail per (family, period) equals the aggregate row for demand, supply and backlog.

    Exact in int mode, within 1e-6 otherwise (the reference's own test tolerance) or, for
    large quantities, within a relative 1e-12 of the aggregate value: a sum of a few hundred
    float64 shares of 1e12 carries rounding error far above 1e-6 and far below any real
    imbalance. Families with a non-positive demand or share total are reported too (the
    reference loses them).
    """
    cols = ["family", "period", "metric", "aggregate", "detail"]
    if aggregate.empty:
        return pd.DataFrame(columns=cols)
    sums = detail.groupby(["family", "period"], sort=False)[["demand", "supply", "backlog"]].sum()
    agg = aggregate.set_index(["family", "period"])[["demand", "supply", "backlog"]]
    joined = agg.join(sums, rsuffix="_det", how="left").fillna(0.0)
    base = EPS if params.round_mode == "int" else 1e-6
    problems = []
    for metric in ("demand", "supply", "backlog"):
        diff = (joined[f"{metric}_det"] - joined[metric]).abs()
        tol = np.maximum(base, RELATIVE_TOLERANCE * joined[metric].abs())
        for (family, period), row in joined[diff > tol].iterrows():
            problems.append((family, period, metric, row[metric], row[f"{metric}_det"]))
    return pd.DataFrame(problems, columns=cols)


def mrp_violations(mrp: pd.DataFrame) -> pd.DataFrame:
    """on_hand_end = on_hand_start + scheduled + receipt - gross; receipts are lot multiples
    covering the net requirement; Σ releases = Σ receipts per item."""
    cols = ["item", "week", "rule", "detail"]
    if mrp.empty:
        return pd.DataFrame(columns=cols)
    problems = []
    start = mrp["on_hand_start"].to_numpy(float)
    end = mrp["on_hand_end"].to_numpy(float)
    sched = mrp["scheduled_receipts"].to_numpy(float)
    rec = mrp["planned_order_receipt"].to_numpy(float)
    gross = mrp["gross_req"].to_numpy(float)
    net = mrp["net_req"].to_numpy(float)
    lot = mrp["lot"].to_numpy(float)
    # values are rounded to 6 decimals in the output: allow a few units of 1e-6
    bad = np.abs(start + sched + rec - gross - end) > 5e-6
    for i in np.flatnonzero(bad)[:50]:
        problems.append((mrp["item"].iat[i], mrp["week"].iat[i], "balance",
                         f"{start[i]} + {sched[i]} + {rec[i]} - {gross[i]} != {end[i]}"))
    ratio = np.divide(rec, lot, out=np.zeros_like(rec), where=lot > 0)
    not_multiple = (rec > 0) & (np.abs(ratio - np.round(ratio)) > 1e-6)
    for i in np.flatnonzero(not_multiple)[:50]:
        problems.append((mrp["item"].iat[i], mrp["week"].iat[i], "lot multiple", f"receipt {rec[i]} lot {lot[i]}"))
    short = (net > 0) & (rec + 1e-6 < net)
    for i in np.flatnonzero(short)[:50]:
        problems.append((mrp["item"].iat[i], mrp["week"].iat[i], "receipt covers net", f"receipt {rec[i]} < net {net[i]}"))
    per_item = mrp.groupby("item", sort=False)[["planned_order_receipt", "planned_order_release"]].sum()
    off = (per_item["planned_order_receipt"] - per_item["planned_order_release"]).abs() > 1e-5
    for item, row in per_item[off].iterrows():
        problems.append((item, None, "releases = receipts",
                         f"Σ receipts {row.planned_order_receipt} vs Σ releases {row.planned_order_release}"))
    return pd.DataFrame(problems, columns=cols)


def leveling_violations(weekly: pd.DataFrame, leveled_load, unplaced_load: float) -> pd.DataFrame:
    """Leveling conserves load: Σ leveled load + spill left after the horizon = Σ original load;
    no week's leveled load exceeds its capacity plus the slack carried into it."""
    cols = ["week", "rule", "detail"]
    if weekly.empty:
        return pd.DataFrame(columns=cols)
    problems = []
    leveled = np.asarray(leveled_load, dtype=float)
    original = weekly["original_load"].to_numpy(float)
    total_in, total_out = float(original.sum()), float(leveled.sum() + unplaced_load)
    if abs(total_in - total_out) > 1e-6 * max(1.0, abs(total_in)) + 0.5 * len(weekly) * 0:
        problems.append((None, "load conserved", f"Σ original {total_in} != Σ leveled {leveled.sum()} + unplaced {unplaced_load}"))
    cap = weekly["capacity"].to_numpy(float) + weekly["carried_slack_in"].to_numpy(float)
    over = leveled > cap + 1e-6
    for i in np.flatnonzero(over):
        problems.append((weekly["week"].iat[i], "capacity respected", f"leveled {leveled[i]} > capacity+slack {cap[i]}"))
    return pd.DataFrame(problems, columns=cols)


def released_capacity_violations(weekly: pd.DataFrame, rows: pd.DataFrame, fg_items, params: PlanningParameters) -> pd.DataFrame:
    """Adjusted (rounded) FG releases stay within capacity + carried slack, up to half a
    rounding step per FG item released that week (spec §9 invariants)."""
    cols = ["week", "rule", "detail"]
    if weekly.empty:
        return pd.DataFrame(columns=cols)
    # column arrays and one mask: no copy of the (795k-row at 5,000 SKUs) capacity rows
    released = isin_keys(rows["item"], set(fg_items)) & (rows["planned_order_release_adj"].to_numpy() != 0)
    n_items = pd.Series(rows["week"].to_numpy()[released]).value_counts()
    step = rounding_step(params.round_mode)
    problems = []
    for week, cap, slack, adjusted in weekly[["week", "capacity", "carried_slack_in", "adjusted_load"]].itertuples(index=False):
        allowance = 0.5 * step * float(n_items.get(week, 0)) + 1e-6
        if adjusted > cap + slack + allowance:
            problems.append((week, "capacity respected up to rounding",
                             f"adjusted {adjusted} > capacity {cap} + slack {slack} + rounding {allowance}"))
    return pd.DataFrame(problems, columns=cols)


def report_violations(report: pd.DataFrame, kpis: pd.DataFrame, aggregate: pd.DataFrame) -> pd.DataFrame:
    """Report sanity: fill rates in [0, 1]; utilization = adjusted load / capacity (0 without
    capacity); plan KPI totals equal the aggregate plan's sums."""
    cols = ["where", "rule", "detail"]
    problems = []
    service = report[report["type"] == "service"]
    bad_fill = service[(service["fill_rate"] < -EPS) | (service["fill_rate"] > 1 + EPS)]
    for week, value in zip(bad_fill["week"], bad_fill["fill_rate"]):
        problems.append((week, "fill rate in [0, 1]", f"fill_rate {value}"))
    capacity = report[report["type"] == "capacity"]
    cap = capacity["capacity"].to_numpy(float)
    adjusted = capacity["adjusted_load"].to_numpy(float)
    expected = np.where(cap > 0, adjusted / np.where(cap > 0, cap, 1.0), 0.0)
    off = np.abs(capacity["utilization"].to_numpy(float) - expected) > 1e-6
    for week in capacity["week"].to_numpy()[off]:
        problems.append((week, "utilization = adjusted / capacity", ""))
    totals = {r.metric: r.value for r in kpis.itertuples() if r.bucket_type == "total"}
    for metric, column in (("demand_total", "demand"), ("supply_total", "supply"), ("backlog_total", "backlog")):
        if metric in totals and abs(totals[metric] - float(aggregate[column].sum())) > 1e-6:
            problems.append(("total", f"{metric} = Σ aggregate {column}", f"{totals[metric]} vs {aggregate[column].sum()}"))
    if "fill_rate" in totals and not (0 <= totals["fill_rate"] <= 1):
        problems.append(("total", "fill rate in [0, 1]", f"fill_rate {totals['fill_rate']}"))
    return pd.DataFrame(problems, columns=cols)
