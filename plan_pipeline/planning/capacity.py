"""Stage 4 - capacity leveling of finished-good releases (CRP-lite, spec §9).

Finished goods (FG) are the SKUs listed in ``mix_share``. Their MRP planned order releases
are the load on one pooled weekly capacity (period capacity split over the period's weeks).
The load is leveled week by week, then every FG release is scaled by its week's
``leveled / original`` factor and the adjusted releases are shifted by the item's lead time
to give adjusted receipts.

Leveling algorithms (the week loop is sequential by nature but scalar per week; everything
per SKU x week is vectorised):

* ``forward`` (no cutover, or a policy other than the three below): one pass over all weeks;
  unused capacity (slack) is carried forward without bound, load above capacity spills into
  the next week.
* ``DET_near`` (cutover month ``M`` known): forward over the pre weeks (period < M); inside
  the at weeks (period == M) a week's spill is not re-queued in the month but summed and
  handed to the first post week; forward over the post weeks.
* ``AGG_far`` / ``blend``: the reference gate never admits them (§19.2); here they run.
  ``pre1 = forward(pre)``; the at segment starts from pre1's slack/spill and sums its spill
  ``x``; ``AGG_far`` pulls all of ``x`` to the start of the pre weeks (``pre2 = forward(pre,
  spill=x)``), ``blend`` pulls ``x * (1 - share_next)`` and pushes ``x * share_next`` into the
  first post week. **Load conservation (deviation from the reference's widened gate):** the
  part of the pulled spill that the pre weeks could not absorb, ``pre2.end_spill -
  pre1.end_spill`` (pre1's own end spill was already consumed by the at segment), is carried
  into the start of the post segment instead of being dropped.

Horizon end: load left after the last week is not placed; it is reported as the spill_out of
the last weekly row and as :attr:`CapacityPlan.unplaced_load`. For every algorithm
``sum(leveled_load) + unplaced_load == sum(original load)`` (up to float rounding).
If the segmented algorithms end with an at segment (no post weeks), the spill carried out of
that segment is what leaves the horizon, so it is reported on the last row (the reference
drops it there).

Unlike the reference (§19.7), detail and MRP rows are passed by name, so their order
cannot be swapped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.planning.calendar import (
    build_calendar,
    effective_fallback_weeks,
    order_weeks,
    period_of_week,
    week_distribution,
)
from plan_pipeline.planning.keys import text_keys
from plan_pipeline.planning.rounding import round6, round_quantity_array
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import (
    BOUNDARY_COLUMNS,
    MRP_COLUMNS,
    WEEKLY_COLUMNS,
    parse_cutover,
    policy_kind,
)

__all__ = [
    "BOUNDARY_COLUMNS",
    "MRP_COLUMNS",
    "WEEKLY_COLUMNS",
    "CapacityPlan",
    "boundary_month",
    "leveling_mode",
    "plan_capacity",
]


@dataclass
class CapacityPlan:
    """Result of :func:`plan_capacity`.

    ``rows``: the MRP rows plus ``planned_order_release_adj`` / ``planned_order_receipt_adj``.
    ``weekly_summary``: one row per horizon week (pre, at, post order when segmented) with the
    §9 columns and, when a cutover month is known, the boundary columns (missing values where
    the reference omits the key).
    ``leveled_load``: the unrounded leveled load per week (same order as weekly_summary).
    ``unplaced_load``: load left after the horizon (= last row's spill_out).
    """

    rows: pd.DataFrame
    weekly_summary: pd.DataFrame
    boundary_summary: dict | None
    reconcile_params: dict
    inputs_summary: dict
    round_mode: str
    mode: str
    fg_items: list[str]
    leveled_load: np.ndarray
    unplaced_load: float
    share_next: float | None = None
    has_window: bool = False
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def boundary_month(cutover_date: Any) -> str | None:
    """The boundary month ``YYYY-MM`` of a cutover (``None`` without one)."""
    cutover = parse_cutover(cutover_date)
    return None if cutover is None else cutover.month


def leveling_mode(policy: Any, month: str | None) -> str:
    """Leveling algorithm for a policy: forward (no boundary month or no policy), det_near, agg_far or blend."""
    return (policy_kind(policy) if month is not None else None) or "forward"


def _period_of(lookup, code: str) -> str:
    p = period_of_week(lookup, code)
    if p:
        return p
    if "-W" in code:
        return code.split("-W", 1)[0]
    return code[:7]


def _weekly_capacity(inputs: PlanningInputs, lookup, week_pos: dict[str, int], n: int) -> np.ndarray:
    cap = np.zeros(n, dtype=np.float64)
    table = inputs.capacity
    if table is None or len(table) == 0:
        return cap
    codes, periods = pd.factorize(table["period"].astype(str), sort=False)
    totals = np.bincount(codes, weights=table["capacity"].to_numpy(dtype=np.float64), minlength=len(periods))
    for period, total in zip(periods, totals):
        entries = week_distribution(lookup, period)
        if not entries:
            continue
        ratios = [max(0.0, e.ratio) for e in entries]
        s = 0.0
        for r in ratios:
            s += r
        k = len(entries)
        for e, r in zip(entries, ratios):
            part = float(total) * (r / s if s > 0 else 1.0 / k)
            pos = week_pos.get(e.week_code)
            if pos is not None:
                cap[pos] += part
    return cap


class _Level:
    """Per-week leveling results (indexed by horizon position)."""

    def __init__(self, n: int):
        self.cslack = np.zeros(n)
        self.spill_in = np.zeros(n)
        self.adj = np.zeros(n)
        self.spill_out = np.zeros(n)
        self.slack_out = np.zeros(n)


def _segment(cap, load, idxs, slack: float, spill: float, carry: bool, out: _Level):
    """The §9.2 loop over ``idxs``. ``carry=False``: a week's spill is summed, not re-queued."""
    seg_spill = 0.0
    for i in idxs:
        c = float(cap[i])
        ld = float(load[i])
        need = ld + spill
        eff = c + slack
        if need <= eff:
            adj = need
            slack = eff - need
            so = 0.0
        else:
            adj = eff
            so = need - eff
            slack = 0.0
        out.cslack[i] = round(eff - c, 6)
        out.spill_in[i] = round(need - ld, 6)
        out.adj[i] = adj
        out.spill_out[i] = so
        out.slack_out[i] = slack
        if carry:
            spill = so
        else:
            seg_spill += so
            spill = 0.0
    if carry or not len(idxs):
        return slack, spill
    return slack, seg_spill


def _blend_share_next(params: PlanningParameters, at_idx, spill_out) -> float:
    if params.blend_split_next is not None:
        return min(1.0, max(0.0, float(params.blend_split_next)))
    n_at = len(at_idx)
    if n_at == 0:
        return 0.5
    if params.recon_window_days:
        win = int(math.ceil(params.recon_window_days / 7))
    else:
        win = max(1, n_at // 2)
    quad = params.blend_weight_mode == "quad"
    s_prev = 0.0
    s_next = 0.0
    for i, pos in enumerate(at_idx):
        sp = float(spill_out[pos])
        if sp <= 0:
            continue
        bp = max(0, win - i)
        bn = max(0, win - (n_at - 1 - i))
        if quad:
            bp, bn = bp * bp, bn * bn
        s_prev += sp * bp
        s_next += sp * bn
    denom = s_prev + s_next
    share = s_next / denom if denom > 0 else 0.5
    return min(0.95, max(0.05, share))


# --------------------------------------------------------------------------- stage


def plan_capacity(
    detail: pd.DataFrame,
    mrp: pd.DataFrame,
    inputs: PlanningInputs,
    params: PlanningParameters,
) -> CapacityPlan:
    """Stage 4: level FG release load on weekly capacity and derive adjusted releases/receipts."""
    p = params.resolved()
    mode_round = p.round_mode
    lookup = build_calendar(inputs.calendar, effective_fallback_weeks(p, inputs.calendar is not None))

    det_weeks = pd.unique(detail["week"].astype(object)) if len(detail) else np.array([], dtype=object)
    mrp_weeks = pd.unique(mrp["week"].astype(object)) if len(mrp) else np.array([], dtype=object)
    weeks = order_weeks(lookup, [str(w) for w in det_weeks] + [str(w) for w in mrp_weeks])
    n = len(weeks)
    week_pos = {w: i for i, w in enumerate(weeks)}

    fg_items = list(dict.fromkeys(str(s) for s in inputs.mix_share["sku"])) if len(inputs.mix_share) else []
    fg_set = set(fg_items)

    cap = _weekly_capacity(inputs, lookup, week_pos, n)

    # Items and weeks are hashed once each (factorize) and converted to text per distinct value: at
    # 50,000 SKUs x 104 weeks the MRP frame has 15.75 M rows, and every per-row pass or temporary
    # array counts (each array is 126 MB; they are dropped as soon as they have been used).
    item_codes, item_uniques = text_keys(mrp["item"])
    week_codes, week_uniques = text_keys(mrp["week"])
    widx = pd.Index(weeks, dtype=object).get_indexer(pd.Index(week_uniques, dtype=object))[week_codes]
    del week_codes
    release = mrp["planned_order_release"].to_numpy(dtype=np.float64)
    is_fg = pd.Index(item_uniques, dtype=object).isin(fg_set)[item_codes]
    # Sequential (row-order) sums, like the reference's dict accumulation.
    load = np.bincount(widx[is_fg], weights=release[is_fg], minlength=n) if n else np.zeros(0)

    month = boundary_month(p.cutover_date)
    mode = leveling_mode(p.anchor_policy, month)
    periods = [_period_of(lookup, w) for w in weeks]
    if month is not None:
        pre = [i for i in range(n) if periods[i] < month]
        at = [i for i in range(n) if periods[i] == month]
        post = [i for i in range(n) if periods[i] > month]
    else:
        pre, at, post = list(range(n)), [], []

    lv = _Level(n)
    share_next = None
    extra: dict = {}
    if mode == "forward":
        order = list(range(n))
        _, unplaced = _segment(cap, load, order, 0.0, 0.0, True, lv)
    elif mode == "det_near":
        order = pre + at + post
        s1, p1 = _segment(cap, load, pre, 0.0, 0.0, True, lv)
        s2, x = _segment(cap, load, at, s1, p1, False, lv)
        _, unplaced = _segment(cap, load, post, s2, x, True, lv)
    else:
        order = pre + at + post
        scratch = _Level(n)
        s1, p1 = _segment(cap, load, pre, 0.0, 0.0, True, scratch)
        if at:
            s2, x = _segment(cap, load, at, s1, p1, False, lv)
            consumed = p1  # pre1's end spill entered the first at week
        else:
            s2, x, consumed = s1, 0.0, 0.0
        if mode == "agg_far":
            x_prev, x_next = x, 0.0
        else:
            share_next = _blend_share_next(p, at, lv.spill_out)
            x_prev, x_next = x * (1.0 - share_next), x * share_next
        _, p2 = _segment(cap, load, pre, 0.0, x_prev, True, lv)
        # Conservation fix: what the pre weeks could not absorb is pushed to the post start.
        residual = p2 - consumed
        extra["pre_residual_to_post"] = residual
        _, unplaced = _segment(cap, load, post, s2, x_next + residual, True, lv)
    if order and mode != "forward" and not post:
        # The horizon ends inside the at block: what leaves the horizon shows on the last row.
        lv.spill_out[order[-1]] = unplaced
    unplaced = float(unplaced) if order else 0.0

    # ---- scale FG releases and derive receipts (vectorised over rows)
    load_w = load[widx] if len(widx) else np.zeros(0)
    adj_w = lv.adj[widx] if len(widx) else np.zeros(0)
    factor = np.where(load_w > 0, np.divide(adj_w, load_w, out=np.ones_like(adj_w), where=load_w > 0), 1.0)
    del load_w, adj_w
    rel_adj_fg = round_quantity_array(release * factor, mode_round)
    del factor
    fg_total = np.bincount(widx[is_fg], weights=rel_adj_fg[is_fg], minlength=n) if n else np.zeros(0)
    fg_rows_per_week = np.bincount(widx[is_fg], minlength=n) if n else np.zeros(0, np.int64)

    lt = np.maximum(0, mrp["lt_weeks"].to_numpy(dtype=np.float64)).astype(np.int64) if len(mrp) else np.zeros(0, np.int64)
    target = np.minimum(n - 1, widx + lt) if n else widx
    del lt
    key_target = item_codes * max(n, 1) + target
    del target
    receipts = np.bincount(key_target[is_fg], weights=rel_adj_fg[is_fg], minlength=len(item_uniques) * max(n, 1))
    del key_target
    key_self = item_codes * max(n, 1) + widx
    del item_codes, widx
    receipt_adj_fg = round_quantity_array(receipts[key_self], mode_round) if len(mrp) else np.zeros(0)
    del receipts, key_self

    release_adj = np.where(is_fg, rel_adj_fg, round6(release)) if len(mrp) else np.zeros(0)
    del rel_adj_fg
    receipt_adj = np.where(is_fg, receipt_adj_fg, 0.0) if len(mrp) else np.zeros(0)
    del receipt_adj_fg, is_fg
    # The MRP columns are shared with ``mrp`` (a shallow copy), only the two new columns are new memory.
    rows = mrp.copy(deep=False)
    rows.index = pd.RangeIndex(len(rows))
    rows["planned_order_release_adj"] = release_adj.astype(np.float64)
    rows["planned_order_receipt_adj"] = receipt_adj.astype(np.float64)

    # ---- weekly summary
    ordr = np.asarray(order, dtype=np.int64)
    adjusted_src = np.where(fg_rows_per_week > 0, fg_total, lv.adj) if n else np.zeros(0)
    ws = pd.DataFrame(
        {
            "week": pd.Series([weeks[i] for i in order], dtype=object),
            "capacity": cap[ordr] if n else np.zeros(0),
            "original_load": round_quantity_array(load[ordr], mode_round) if n else np.zeros(0),
            "carried_slack_in": lv.cslack[ordr] if n else np.zeros(0),
            "spill_in": lv.spill_in[ordr] if n else np.zeros(0),
            "adjusted_load": round_quantity_array(adjusted_src[ordr], mode_round) if n else np.zeros(0),
            "spill_out": lv.spill_out[ordr] if n else np.zeros(0),
            "slack_carry_out": lv.slack_out[ordr] if n else np.zeros(0),
        }
    )
    boundary_summary = None
    has_window = bool(p.recon_window_days)
    if month is not None:
        at_set = {i: k for k, i in enumerate(sorted(at, key=lambda i: i), start=1)}
        n_at = len(at)
        # Per week, in output order; None where the week is not a boundary week (or no window).
        bp: list[Any] = []
        bi: list[Any] = []
        bs: list[Any] = []
        wpre: list[Any] = []
        wpost: list[Any] = []
        zone: list[str | None] = []
        wwin = max(1, math.ceil((p.recon_window_days or 0) / 7))
        for i in order:
            if i in at_set:
                idx = at_set[i]
                bp.append(True)
                bi.append(idx)
                bs.append(n_at)
                if has_window:
                    wpre.append(idx <= wwin)
                    wpost.append((n_at - idx + 1) <= wwin)
                else:
                    wpre.append(None)
                    wpost.append(None)
            else:
                bp.append(None)
                bi.append(None)
                bs.append(None)
                wpre.append(None)
                wpost.append(None)
            per = periods[i]
            zone.append(("pre" if per < month else "at" if per == month else "post") if per else None)
        ws["boundary_period"] = pd.array(bp, dtype="boolean")
        ws["boundary_index"] = pd.array(bi, dtype="Int64")
        ws["boundary_size"] = pd.array(bs, dtype="Int64")
        ws["in_window_pre"] = pd.array(wpre, dtype="boolean")
        ws["in_window_post"] = pd.array(wpost, dtype="boolean")
        ws["zone"] = pd.Series(zone, dtype=object)
        boundary_summary = {
            "period": month,
            "anchor_policy": p.anchor_policy,
            "window_days": p.recon_window_days,
            "weeks": n_at,
            "pre_weeks": sum(1 for z in zone if z == "pre"),
            "post_weeks": sum(1 for z in zone if z == "post"),
        }

    inputs_summary = {
        "allocate_rows": len(detail),
        "mrp_rows": len(mrp),
        "weeks": n,
        "fg_skus": len(fg_items),
        "calendar_mode": lookup.mode,
        "calendar_periods": len(lookup.periods),
    }
    reconcile_params = {
        "cutover_date": p.cutover_date,
        "recon_window_days": p.recon_window_days,
        "anchor_policy": p.anchor_policy,
    }
    return CapacityPlan(
        rows=rows,
        weekly_summary=ws,
        boundary_summary=boundary_summary,
        reconcile_params=reconcile_params,
        inputs_summary=inputs_summary,
        round_mode=mode_round,
        mode=mode,
        fg_items=fg_items,
        leveled_load=lv.adj[ordr].copy() if n else np.zeros(0),
        unplaced_load=float(unplaced),
        share_next=share_next,
        has_window=has_window,
        extra=extra,
    )


# --------------------------------------------------------------------------- document


