"""Stage 2 — allocate: family→SKU by mix share and period→week by calendar weights (spec §7).

Every aggregate row is expanded to its family's SKUs (mix order; a family without mix rows
gets the pseudo-SKU named like the family) and then to the weeks of its period (calendar
order, or equal fallback weeks). ``int`` mode apportions integers with
:func:`~plan_pipeline.planning.rounding.distribute_int_grouped`; other modes split floats
and put the rounding residual on the last week.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.calendar import (
    CalendarLookup,
    build_calendar,
    effective_fallback_weeks,
    week_distribution,
)
from plan_pipeline.planning.rounding import (
    decimals_of,
    distribute_int_grouped,
    round_half_even,
    sequential_group_sum,
)
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import DETAIL_COLUMNS, DETAIL_KEY_COLUMNS

_QUANTITY_COLUMNS = ["demand", "supply", "supply_plan", "backlog"]


def calendar_for(inputs: PlanningInputs, params: PlanningParameters) -> CalendarLookup:
    """The calendar lookup a stage sees under the reference driver (fallback weeks per §5.1)."""
    has_calendar = inputs.calendar is not None
    return build_calendar(inputs.calendar, effective_fallback_weeks(params, has_calendar))


def load_mix(mix_share: pd.DataFrame) -> tuple[list[str], dict[str, tuple[list[str], list[float]]]]:
    """Mix rows grouped by family (first-appearance order), shares clamped at 0 and normalised."""
    order: list[str] = []
    groups: dict[str, tuple[list[str], list[float]]] = {}
    fams = [str(v) for v in mix_share["family"].tolist()]
    skus = [str(v) for v in mix_share["sku"].tolist()]
    shares = mix_share["share"].to_numpy(dtype=np.float64).tolist()
    for f, s, sh in zip(fams, skus, shares):
        if f not in groups:
            groups[f] = ([], [])
            order.append(f)
        groups[f][0].append(s)
        groups[f][1].append(max(0.0, sh) if sh == sh else 0.0)
    for f in order:
        sk, sh = groups[f]
        total = 0.0
        for x in sh:
            total += x
        if total > 0:
            groups[f] = (sk, [x / total for x in sh])
    return order, groups


def _period_ratios(lookup: CalendarLookup, period: str) -> tuple[list[str], list[float]]:
    entries = week_distribution(lookup, period)
    pos = [max(0.0, e.ratio) for e in entries]
    total = 0.0
    for x in pos:
        total += x
    n = len(entries)
    ratios = [x / total for x in pos] if total > 0 else [1.0 / n] * n
    return [e.week_code for e in entries], ratios


def _empty_detail() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c in DETAIL_KEY_COLUMNS else "float64")
                         for c in DETAIL_COLUMNS})


def plan_detail(aggregate: pd.DataFrame, inputs: PlanningInputs, params: PlanningParameters) -> pd.DataFrame:
    """SKU × week rows for every aggregate row (aggregate order × mix order × week order)."""
    mode = params.round_mode
    n_agg = len(aggregate)
    if n_agg == 0:
        return _empty_detail()
    lookup = calendar_for(inputs, params)
    _, mix = load_mix(inputs.mix_share)

    agg_fam = [str(v) for v in aggregate["family"].tolist()]
    agg_per = [str(v) for v in aggregate["period"].tolist()]

    # Concatenated (family -> SKU list) table; families absent from the mix get a pseudo-SKU.
    fam_index: dict[str, int] = {}
    fam_start: list[int] = []
    fam_len: list[int] = []
    sku_flat: list[str] = []
    share_flat: list[float] = []
    for f in agg_fam:
        if f in fam_index:
            continue
        fam_index[f] = len(fam_start)
        sk, sh = mix.get(f, ([f], [1.0]))
        if mode == "int":
            total = 0.0
            for x in sh:
                total += x
            if total <= 0:
                sh = [1.0 / len(sh)] * len(sh)
        fam_start.append(len(sku_flat))
        fam_len.append(len(sk))
        sku_flat.extend(sk)
        share_flat.extend(sh)

    # Concatenated (period -> weeks) table.
    per_index: dict[str, int] = {}
    per_start: list[int] = []
    per_len: list[int] = []
    week_flat: list[str] = []
    ratio_flat: list[float] = []
    for p in agg_per:
        if p in per_index:
            continue
        per_index[p] = len(per_start)
        codes, ratios = _period_ratios(lookup, p)
        per_start.append(len(week_flat))
        per_len.append(len(codes))
        week_flat.extend(codes)
        ratio_flat.extend(ratios)

    fcode = np.fromiter((fam_index[f] for f in agg_fam), dtype=np.int64, count=n_agg)
    pcode = np.fromiter((per_index[p] for p in agg_per), dtype=np.int64, count=n_agg)
    fam_start_a = np.asarray(fam_start, dtype=np.int64)
    fam_len_a = np.asarray(fam_len, dtype=np.int64)
    per_start_a = np.asarray(per_start, dtype=np.int64)
    per_len_a = np.asarray(per_len, dtype=np.int64)
    share_a = np.asarray(share_flat, dtype=np.float64)
    ratio_a = np.asarray(ratio_flat, dtype=np.float64)

    # Level 1: aggregate row -> SKU pairs.
    counts1 = fam_len_a[fcode]
    rep1 = np.repeat(np.arange(n_agg), counts1)
    off1 = np.arange(len(rep1)) - np.repeat(np.cumsum(counts1) - counts1, counts1)
    sku_pos = fam_start_a[fcode[rep1]] + off1
    share = share_a[sku_pos]

    # Level 2: pair -> weeks.
    n_pairs = len(rep1)
    pair_per = pcode[rep1]
    counts2 = per_len_a[pair_per]
    rep2 = np.repeat(np.arange(n_pairs), counts2)
    off2 = np.arange(len(rep2)) - np.repeat(np.cumsum(counts2) - counts2, counts2)
    week_pos = per_start_a[pair_per[rep2]] + off2
    ratio = ratio_a[week_pos]

    demand = aggregate["demand"].to_numpy(dtype=np.float64)
    supply = aggregate["supply"].to_numpy(dtype=np.float64)
    backlog = aggregate["backlog"].to_numpy(dtype=np.float64)

    if mode == "int":
        td = np.rint(demand)
        ts = np.rint(supply)
        d_sku = distribute_int_grouped(td[rep1] * share, td, rep1)
        s_sku = distribute_int_grouped(ts[rep1] * share, ts, rep1, caps=d_sku)
        dw = distribute_int_grouped(d_sku[rep2] * ratio, d_sku, rep2)
        sw = distribute_int_grouped(s_sku[rep2] * ratio, s_sku, rep2, caps=dw)
        bw = dw - sw
    else:
        ndig = decimals_of(mode) if mode != "none" else None
        last = np.cumsum(counts2) - 1  # last week row of every pair

        def split(values: np.ndarray) -> np.ndarray:
            per_pair = values[rep1] * share
            parts = per_pair[rep2] * ratio
            if ndig is not None:
                parts = round_half_even(parts, ndig)
            total = sequential_group_sum(parts, rep2, n_pairs)
            parts = parts.copy()
            parts[last] = parts[last] + (per_pair - total)
            return parts

        dw = split(demand)
        sw = split(supply)
        bw = split(backlog)

    fam_arr = np.asarray(agg_fam, dtype=object)
    per_arr = np.asarray(agg_per, dtype=object)
    sku_arr = np.asarray(sku_flat, dtype=object)
    week_arr = np.asarray(week_flat, dtype=object)
    agg_of_row = rep1[rep2]
    return pd.DataFrame(
        {
            "family": fam_arr[agg_of_row],
            "period": per_arr[agg_of_row],
            "sku": sku_arr[sku_pos[rep2]],
            "week": week_arr[week_pos],
            "demand": dw.astype(np.float64),
            "supply": sw.astype(np.float64),
            "supply_plan": sw.astype(np.float64),
            "backlog": bw.astype(np.float64),
        }
    )


