"""Conservation laws and plan invariants, as pure functions returning violation tables.

Each function returns a DataFrame with one row per violation (empty when the law
holds); the Dagster asset checks report them. Tolerances follow the round mode: a
rounded quantity may differ from the exact law by at most half a rounding step per
row that was rounded.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.types import PlanningParameters

EPS = 1e-9


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
