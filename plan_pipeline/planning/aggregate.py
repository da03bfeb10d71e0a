"""Stage 1 — aggregate: family × period rough-cut S&OP (spec §6).

Per period the family demands are compared with the pooled capacity of every workcenter;
on a shortage every family gets the same fill ratio. In ``int`` mode the integer supply
target ``min(rounded capacity, Σ rounded demand)`` is apportioned with
:func:`~plan_pipeline.planning.rounding.distribute_int_grouped`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.rounding import (
    distribute_int_grouped,
    round_quantity_array,
    sequential_group_sum,
)
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import AGGREGATE_COLUMNS

SCHEMA_VERSION = "agg-1.0"
_QUANTITY_COLUMNS = ["demand", "supply", "backlog", "capacity_total"]


def _codes(values: np.ndarray, universe: list[str]) -> np.ndarray:
    index = {k: i for i, k in enumerate(universe)}
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def _str_array(series: pd.Series) -> np.ndarray:
    return np.asarray([str(v) for v in series.tolist()], dtype=object)


def plan_aggregate(inputs: PlanningInputs, params: PlanningParameters) -> pd.DataFrame:
    """Family × period supply/backlog. Rows: period ascending, then family ascending."""
    mode = params.round_mode
    dem = inputs.demand_family
    fam = _str_array(dem["family"])
    per = _str_array(dem["period"])
    qty = dem["demand"].to_numpy(dtype=np.float64)

    families = sorted(set(fam.tolist()))
    periods = sorted(set(per.tolist()))
    nf, nper = len(families), len(periods)
    if len(fam) == 0:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("family", "period") else "float64")
                             for c in AGGREGATE_COLUMNS})
    fcode = _codes(fam, families)
    pcode = _codes(per, periods)

    # Demand per (family, period) and per period, both accumulated in file row order.
    key = pcode * nf + fcode
    uniq_keys = np.unique(key)  # sorted => (period, family) order
    key_idx = np.searchsorted(uniq_keys, key)
    demand = sequential_group_sum(qty, key_idx, len(uniq_keys))
    total = sequential_group_sum(qty, pcode, nper)

    # Pooled capacity per period (rows of periods without demand are irrelevant).
    cap_df = inputs.capacity
    cap_per = _str_array(cap_df["period"])
    pindex = {p: i for i, p in enumerate(periods)}
    cap_code = np.fromiter((pindex.get(p, -1) for p in cap_per), dtype=np.int64, count=len(cap_per))
    keep = cap_code >= 0
    capacity = sequential_group_sum(cap_df["capacity"].to_numpy(dtype=np.float64)[keep], cap_code[keep], nper)

    row_p = uniq_keys // nf
    row_f = uniq_keys % nf
    tot = total[row_p]
    cap = capacity[row_p]
    with np.errstate(divide="ignore", invalid="ignore"):
        rationed = demand * cap / tot
    supply = np.where(tot <= 0, 0.0, np.where(cap >= tot, demand, rationed))

    if mode == "int":
        cap_total = np.rint(cap)
        d_int = np.rint(demand)
        sum_d = np.bincount(row_p, weights=d_int, minlength=nper)
        target = np.maximum(0.0, np.minimum(np.rint(capacity), sum_d))
        s_int = distribute_int_grouped(np.maximum(0.0, supply), target, row_p, caps=d_int)
        out_d, out_s = d_int, s_int
        out_b = np.maximum(0.0, d_int - s_int)
    else:
        cap_total = round_quantity_array(cap, mode)
        out_d = round_quantity_array(demand, mode)
        out_s = round_quantity_array(supply, mode)
        out_b = round_quantity_array(np.maximum(0.0, out_d - out_s), mode)

    fam_arr = np.asarray(families, dtype=object)
    per_arr = np.asarray(periods, dtype=object)
    return pd.DataFrame(
        {
            "family": fam_arr[row_f],
            "period": per_arr[row_p],
            "demand": out_d.astype(np.float64),
            "supply": out_s.astype(np.float64),
            "backlog": out_b.astype(np.float64),
            "capacity_total": cap_total.astype(np.float64),
        }
    )


