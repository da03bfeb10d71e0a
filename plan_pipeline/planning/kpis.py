"""The plan scorecard: the seven KPIs of the *final* plan, per bucket (``docs/kpis.md``).

The final plan is the detail plan after the planners' edits (level ``det``), its MRP and the
leveled capacity plan (``mrp_final`` rows and ``weekly_summary``); for a version whose anchored
branch is applied (``apply_adjusted``), the anchored frames (``det_adjusted``, ``mrp_final_adjusted``,
``weekly_summary_adjusted``) are the final plan. The caller picks the frames; this module is pure.

Which frame feeds which KPI:

* ``fill_rate``, ``service_level``, ``backlog_days``: the detail rows (``demand``, ``supply``,
  ``backlog`` of each SKU x week, a shared week's month fragments being separate rows). An edit of
  one SKU-week's demand therefore moves them in exactly that SKU's, week's, month's, family's and
  the total bucket (the reference KPIs, sums of the aggregate plan, do not move at all).
* ``inventory_turns``: the finished goods' MRP rows (``gross_req``, projected on hand).
* ``capacity_util``: the weekly summary (leveled ``adjusted_load`` / ``capacity``). Capacity is one
  pool per week, so it has no family or SKU buckets (total, month and week only).
* ``on_time_rate``, ``cost_variance``: the finished goods' planned receipts before
  (``planned_order_receipt``) and after leveling (``planned_order_receipt_adj``), matched unit by
  unit in time order per SKU (:func:`_receipt_segments`); bucketed by the week the quantity was
  originally required in. Unit costs from ``period_cost`` (period, cost).

MRP and capacity rows carry a week, not a month: their month is the calendar's month of the week
(``calendar.period_of_week``; without a calendar the month of the ISO week's Thursday).

Undefined values are not stored (no row): a bucket whose denominator is zero where no convention
fixes the value (``inventory_turns`` without on-hand stock, ``cost_variance`` without cost data,
``capacity_util`` with load but no capacity, ``backlog_days`` with backlog but no demand). The
conventions: ``fill_rate``/``service_level``/``on_time_rate`` are 1.0 when there is nothing to
serve; ``backlog_days`` is 0 and ``capacity_util`` 0 when there is neither numerator nor denominator.
"""
from __future__ import annotations

import calendar as _calendar
import re

import numpy as np
import pandas as pd

from plan_pipeline.planning.calendar import CalendarLookup, order_weeks, period_of_week
from plan_pipeline.planning.detail import calendar_for
from plan_pipeline.planning.keys import factorize_keys
from plan_pipeline.planning.rounding import round6
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import (
    SCORECARD_BUCKETS,
    SCORECARD_CATEGORY,
    SCORECARD_KPIS,
    STORED_KPI_COLUMNS,
)

__all__ = ["KPI_BUCKETS", "WEEKS_PER_YEAR", "format_kpi", "scorecard_kpis", "scorecard_totals", "sku_families"]

#: Annualization of a weekly gross requirement (inventory turns).
WEEKS_PER_YEAR = 52.0
#: A quantity below this is zero (coverage of a SKU-week, receipt segments).
EPSILON = 1e-9
#: The buckets each KPI is stored in. Capacity is pooled per week: no family or SKU buckets.
KPI_BUCKETS: dict[str, tuple[str, ...]] = {
    k.name: (("total", "month", "week") if k.name == "capacity_util" else SCORECARD_BUCKETS) for k in SCORECARD_KPIS
}
_UNITS = {k.name: k.unit for k in SCORECARD_KPIS}
_MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


# ------------------------------------------------------------------------------------ bucketing
#: A bucket type's keys for a set of rows: each row's code (an index into ``labels``; -1 = none) and
#: the labels. Keys are factorized once per frame and rolled up with ``np.bincount``.
Keys = dict[str, tuple[np.ndarray, np.ndarray]]


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    codes, labels = pd.factorize(np.asarray(values, dtype=object))
    return codes.astype(np.int64), np.asarray([str(v) for v in labels], dtype=object)


def _total(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, np.int64), np.array(["total"], dtype=object)


def _rollup(keys: Keys, values: dict[str, np.ndarray], buckets) -> dict[str, pd.DataFrame]:
    """Per bucket type: the sums of ``values`` per bucket key (buckets without rows left out)."""
    out = {}
    for bucket in buckets:
        codes, labels = keys[bucket]
        valid = codes >= 0
        codes = codes[valid]
        n = len(labels)
        rows = np.bincount(codes, minlength=n) if n else np.zeros(0, np.int64)
        sums = {name: np.bincount(codes, weights=np.asarray(v, np.float64)[valid], minlength=n) if n else np.zeros(0)
                for name, v in values.items()}
        out[bucket] = pd.DataFrame(sums, index=pd.Index(labels, dtype=object))[rows > 0]
    return out


def _rows(metric: str, sums: dict[str, pd.DataFrame], compute, week_order: dict[str, int]) -> list[pd.DataFrame]:
    """The KPI rows of ``metric``: ``compute(sums) -> (value, defined)`` per bucket key."""
    parts = []
    for bucket, frame in sums.items():
        if not len(frame):
            continue
        value, defined = compute(frame)
        keys = frame.index.astype(str).to_numpy(dtype=object)
        part = pd.DataFrame({"bucket_key": keys, "value": np.asarray(value, dtype=np.float64)})[np.asarray(defined)]
        if bucket == "week":
            order = part["bucket_key"].map(week_order).fillna(len(week_order))
            part = part.assign(_o=order.to_numpy()).sort_values(["_o", "bucket_key"], kind="stable")
        else:
            part = part.sort_values("bucket_key", kind="stable")
        parts.append(pd.DataFrame({
            "category": SCORECARD_CATEGORY, "metric": metric, "bucket_type": bucket,
            "bucket_key": part["bucket_key"].to_numpy(dtype=object),
            "value": round6(part["value"].to_numpy(dtype=np.float64)), "unit": _UNITS[metric],
        }))
    return parts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


# ------------------------------------------------------------------------------------ calendar
def _period_days(period: str, weeks_in_period: int) -> float:
    """Days of a month ``YYYY-MM``; a calendar period of another name: 7 per week of it."""
    match = _MONTH_RE.fullmatch(period)
    if match:
        return float(_calendar.monthrange(int(match[1]), int(match[2]))[1])
    return 7.0 * max(1, weeks_in_period)


class _Weeks:
    """The plan's weeks in planning order (``labels``, a week's position is its code) and each
    week's month (``month_codes`` into ``month_labels``)."""

    def __init__(self, lookup: CalendarLookup, weeks) -> None:
        self.labels = np.asarray(order_weeks(lookup, [str(w) for w in weeks]), dtype=object)
        self.order = {w: i for i, w in enumerate(self.labels)}
        self._index = pd.Index(self.labels, dtype=object)
        self.month_codes, self.month_labels = _factorize([period_of_week(lookup, w) for w in self.labels])

    def positions(self, weeks) -> np.ndarray:
        """Each week's position (-1: not a week of the plan)."""
        return self._index.get_indexer(np.asarray(weeks, dtype=object)).astype(np.int64)

    def keys(self, pos: np.ndarray) -> Keys:
        """The month and week keys of rows at week positions ``pos``."""
        month = np.where(pos >= 0, self.month_codes[np.maximum(pos, 0)] if len(self.labels) else -1, -1)
        return {"month": (month, self.month_labels), "week": (pos, self.labels)}


# ------------------------------------------------------------------------------------ the KPIs
def _detail_kpis(detail: pd.DataFrame, weeks: _Weeks) -> list[pd.DataFrame]:
    months = _factorize(detail["period"])
    pos = weeks.positions(detail["week"])
    keys: Keys = {"total": _total(len(detail)), "month": months, "week": weeks.keys(pos)["week"],
                  "family": _factorize(detail["family"]), "sku": _factorize(detail["sku"])}
    demand = detail["demand"].to_numpy(np.float64)
    supply = detail["supply"].to_numpy(np.float64)
    backlog = detail["backlog"].to_numpy(np.float64)
    positive = demand > EPSILON
    covered = positive & (supply >= demand - EPSILON * np.maximum(1.0, np.abs(demand)))
    # days of a bucket: a week 7, a month its calendar days, a SKU/family/the total the horizon's
    pairs = np.unique(months[0] * (len(weeks.labels) + 1) + (pos + 1))
    weeks_per_month = np.bincount(pairs // (len(weeks.labels) + 1), minlength=len(months[1]))
    month_days = {str(p): _period_days(str(p), int(n)) for p, n in zip(months[1], weeks_per_month)}
    horizon_days = float(sum(month_days.values()))
    sums = _rollup(keys, {"demand": demand, "supply": supply, "backlog": backlog,
                          "cells": positive.astype(np.float64), "covered": covered.astype(np.float64)},
                   SCORECARD_BUCKETS)

    def fill(frame):
        d, s = frame["demand"].to_numpy(), frame["supply"].to_numpy()
        return np.where(d > 0, np.clip(_ratio(s, d), 0.0, 1.0), 1.0), np.ones(len(frame), bool)

    def service(frame):
        c, ok = frame["cells"].to_numpy(), frame["covered"].to_numpy()
        return np.where(c > 0, _ratio(ok, c), 1.0), np.ones(len(frame), bool)

    def backlog_days(bucket):
        def compute(frame):
            d, b = frame["demand"].to_numpy(), frame["backlog"].to_numpy()
            if bucket == "week":
                days = np.full(len(frame), 7.0)
            elif bucket == "month":
                days = frame.index.map(month_days).to_numpy(np.float64)
            else:
                days = np.full(len(frame), horizon_days)
            value = np.where(d > 0, _ratio(b * days, d), 0.0)
            return value, (d > 0) | (b <= EPSILON)
        return compute

    parts = _rows("fill_rate", sums, fill, weeks.order) + _rows("service_level", sums, service, weeks.order)
    for bucket, frame in sums.items():
        parts += _rows("backlog_days", {bucket: frame}, backlog_days(bucket), weeks.order)
    return parts


def sku_families(mix_share: pd.DataFrame) -> dict[str, str]:
    """Finished good (SKU) -> its family: the first family ``mix_share`` names for it."""
    if not len(mix_share):
        return {}
    first = mix_share.drop_duplicates("sku", keep="first")
    return dict(zip(first["sku"].astype(str), first["family"].astype(str)))


def _distinct_text(column: pd.Series) -> np.ndarray:
    """``pd.unique(column.astype(str))``, converting each distinct value once instead of every row."""
    return pd.unique(np.asarray([str(v) for v in pd.unique(column.to_numpy(dtype=object))], dtype=object))


#: The capacity-plan columns the finished-goods KPIs read (``_FinishedGoods.column``).
_FG_COLUMNS = ["item", "week", "gross_req", "on_hand_start", "on_hand_end", "planned_order_receipt",
               "planned_order_receipt_adj"]


class _FinishedGoods:
    """The finished goods' MRP rows (items listed in ``mix_share``) with their SKU and week codes."""

    def __init__(self, rows: pd.DataFrame, inputs: PlanningInputs, weeks: _Weeks) -> None:
        families = sku_families(inputs.mix_share)
        if len(rows):
            items, item_text = factorize_keys(rows["item"].to_numpy(dtype=object), use_na_sentinel=False)
            is_fg = np.asarray([str(v) in families for v in item_text], dtype=bool)
            fg = is_fg[items]
            del items
        else:
            fg = np.zeros(0, bool)
        # only the columns the KPIs read are copied (a third of a 15.75 M-row frame at 50,000 SKUs)
        self.rows = rows.loc[fg, [c for c in _FG_COLUMNS if c in rows.columns]]
        self.sku, self.sku_labels = _factorize(self.rows["item"].astype(str))
        self.pos = weeks.positions(self.rows["week"].astype(str))
        family_codes, self.family_labels = _factorize([families[s] for s in self.sku_labels])
        self.family_of_sku = family_codes
        self.weeks = weeks

    def keys(self, sku: np.ndarray, pos: np.ndarray) -> Keys:
        """Bucket keys of rows with SKU codes ``sku`` at week positions ``pos``."""
        family = self.family_of_sku[sku] if len(sku) else np.zeros(0, np.int64)
        return {"total": _total(len(sku)), **self.weeks.keys(pos), "family": (family, self.family_labels),
                "sku": (sku, self.sku_labels)}

    def cells(self, sku: np.ndarray, pos: np.ndarray, values: dict[str, np.ndarray]):
        """The sums of ``values`` per SKU x week cell: (cell SKU codes, cell week positions, sums)."""
        width = len(self.weeks.labels) + 1
        cell = sku.astype(np.int64) * width + (pos + 1)
        used, codes = np.unique(cell, return_inverse=True)
        sums = {name: np.bincount(codes.reshape(-1), weights=v, minlength=len(used)) for name, v in values.items()}
        return used // width, used % width - 1, sums

    def column(self, name: str) -> np.ndarray:
        return self.rows[name].to_numpy(np.float64)


def _inventory_kpis(fg: _FinishedGoods) -> list[pd.DataFrame]:
    on_hand = np.maximum(0.0, 0.5 * (fg.column("on_hand_start") + fg.column("on_hand_end")))
    sums = _rollup(fg.keys(fg.sku, fg.pos), {"gross": fg.column("gross_req"), "on_hand": on_hand}, SCORECARD_BUCKETS)

    def turns(frame):
        oh = frame["on_hand"].to_numpy()
        return WEEKS_PER_YEAR * _ratio(frame["gross"].to_numpy(), oh), oh > EPSILON

    return _rows("inventory_turns", sums, turns, fg.weeks.order)


def _capacity_kpis(weekly: pd.DataFrame, weeks: _Weeks) -> list[pd.DataFrame]:
    keys: Keys = {"total": _total(len(weekly)), **weeks.keys(weeks.positions(weekly["week"].astype(str)))}
    sums = _rollup(keys, {"load": weekly["adjusted_load"].to_numpy(np.float64),
                          "capacity": weekly["capacity"].to_numpy(np.float64)}, KPI_BUCKETS["capacity_util"])

    def util(frame):
        load, cap = frame["load"].to_numpy(), frame["capacity"].to_numpy()
        return _ratio(load, cap), (cap > 0) | (load <= EPSILON)

    return _rows("capacity_util", sums, util, weeks.order)


def _next_marked(marked: np.ndarray) -> np.ndarray:
    """For each position: the first position at or after it where ``marked`` is true (len: none)."""
    n = len(marked)
    return np.minimum.accumulate(np.where(marked, np.arange(n), n)[::-1])[::-1]


def _receipt_segments(sku: np.ndarray, pos: np.ndarray, original: np.ndarray, leveled: np.ndarray) -> pd.DataFrame:
    """Match each SKU's original and leveled planned receipts unit by unit in time order.

    Per SKU (integer codes ``sku``, week positions ``pos``), unit ``k`` of the original receipts is
    required in the first week whose cumulative original receipt reaches ``k``; unit ``k`` of the
    leveled receipts lands in the first week whose cumulative leveled receipt reaches ``k``. Units
    ``0 < k <= min(Σ original, Σ leveled)`` are the same quantities before and after leveling;
    units beyond Σ leveled never land. Returns the segments of equal (required week, landing week):
    columns ``sku``, ``required``, ``landed`` (week positions) and ``qty``.

    The breakpoints of both cumulative curves (cut at the matched quantity) are sorted per SKU; a
    segment ends at a breakpoint, and its required (landing) week is the week of the first original
    (leveled) breakpoint at or after its end: no breakpoint lies inside a segment.
    """
    order = np.lexsort((pos, sku))
    sku, pos = sku[order], pos[order]
    o = np.maximum(0.0, original[order])
    a = np.maximum(0.0, leveled[order])
    cum_o = pd.Series(o).groupby(sku).cumsum().to_numpy()
    cum_a = pd.Series(a).groupby(sku).cumsum().to_numpy()
    n_sku = int(sku.max()) + 1 if len(sku) else 0
    matched = np.minimum(np.bincount(sku, weights=o, minlength=n_sku), np.bincount(sku, weights=a, minlength=n_sku))
    n = len(sku)
    b = np.concatenate([np.minimum(cum_o, matched[sku]), np.minimum(cum_a, matched[sku])])
    # stable: on equal values the original curve's breakpoints first, each curve's in week order
    sort = np.lexsort((b, np.concatenate([sku, sku])))
    b, b_sku, b_pos = b[sort], np.concatenate([sku, sku])[sort], np.concatenate([pos, pos])[sort]
    from_original = sort < n
    first = np.diff(b_sku, prepend=-1) != 0
    length = np.where(first, b, b - np.roll(b, 1))  # a SKU's first segment starts at 0
    keep = np.flatnonzero(length > EPSILON)  # each one the first breakpoint of its value
    last = max(len(b) - 1, 0)
    required = b_pos[np.minimum(_next_marked(from_original)[keep], last)]
    landed = b_pos[np.minimum(_next_marked(~from_original)[keep], last)]
    return pd.DataFrame({"sku": b_sku[keep], "required": required, "landed": landed, "qty": length[keep]})


def _unit_costs(inputs: PlanningInputs) -> dict[str, float]:
    table = inputs.period_cost
    if table is None or not len(table):
        return {}
    costs = table.dropna(subset=["cost"]).drop_duplicates("period", keep="last")
    return dict(zip(costs["period"].astype(str), costs["cost"].astype(np.float64)))


#: Finished-goods rows per block of SKUs in :func:`_receipt_kpis` (a SKU is never split): the
#: receipt matching sorts and concatenates a dozen arrays as long as its rows, ~1 GB at once for
#: the 5.25 M finished-goods rows of 50,000 SKUs x 104 weeks, ~100 MB per block of this size.
RECEIPT_BLOCK_ROWS = 500_000
#: The sums per SKU x week cell the on-time rate and the cost variance are computed from.
_RECEIPT_SUMS = ("required", "on_time", "cost_landed", "cost_required", "costed")


def _sku_blocks(sku: np.ndarray, rows_per_block: int) -> list[np.ndarray]:
    """Row indices of blocks of whole SKUs, SKU codes ascending, each block's rows in row order,
    about ``rows_per_block`` rows each (a SKU with more rows is a block of its own)."""
    if not len(sku):
        return []
    order = np.argsort(sku, kind="stable")
    ends = np.cumsum(np.bincount(sku))  # one past each SKU's last row in ``order``
    cuts, start = [], 0
    while start < len(sku):
        # the last SKU end within start + rows_per_block (at least one SKU)
        i = int(np.searchsorted(ends, start + rows_per_block, side="right")) - 1
        if i < 0 or ends[i] <= start:  # the next SKU alone has more rows than a block
            i = int(np.searchsorted(ends, start, side="right"))
        stop = int(ends[i])
        cuts.append(order[start:stop])
        start = stop
    return cuts


def _receipt_cells(fg: _FinishedGoods, rows: np.ndarray, week_cost: np.ndarray):
    """The on-time and cost sums per SKU x week cell of the finished-goods rows ``rows`` (whole
    SKUs): the original receipts (denominator of on_time_rate), then the matched segments at their
    required week."""
    sku, pos = fg.sku[rows], fg.pos[rows]
    original = fg.column("planned_order_receipt")[rows]
    segments = _receipt_segments(sku, pos, original, fg.column("planned_order_receipt_adj")[rows])
    required, landed = segments["required"].to_numpy(), segments["landed"].to_numpy()
    qty = segments["qty"].to_numpy()
    cost_required, cost_landed = week_cost[required], week_cost[landed]
    costed = ~(np.isnan(cost_required) | np.isnan(cost_landed))
    on_time = landed <= required
    zeros_fg, zeros_seg = np.zeros(len(original)), np.zeros(len(qty))
    values = dict(zip(_RECEIPT_SUMS, (
        np.concatenate([np.maximum(0.0, original), zeros_seg]),
        np.concatenate([zeros_fg, np.where(on_time, qty, 0.0)]),
        np.concatenate([zeros_fg, np.where(costed, qty * np.nan_to_num(cost_landed), 0.0)]),
        np.concatenate([zeros_fg, np.where(costed, qty * np.nan_to_num(cost_required), 0.0)]),
        np.concatenate([zeros_fg, np.where(costed, qty, 0.0)]),
    ), strict=True))
    return fg.cells(np.concatenate([sku, segments["sku"].to_numpy()]), np.concatenate([pos, required]), values)


def _receipt_kpis(fg: _FinishedGoods, inputs: PlanningInputs):
    weeks = fg.weeks
    costs = _unit_costs(inputs)
    month_cost = np.array([costs.get(str(m), np.nan) for m in weeks.month_labels], dtype=np.float64)
    week_cost = np.append(month_cost[weeks.month_codes] if len(weeks.labels) else np.zeros(0), np.nan)  # -1: none
    # Block by block of whole SKUs: a SKU's receipts are matched among its own rows and its cells
    # hold its own rows only, so the blocks' cells, in SKU order, are the cells of all rows at
    # once (same sums: each cell adds the same values in the same order).
    blocks = [_receipt_cells(fg, rows, week_cost) for rows in _sku_blocks(fg.sku, RECEIPT_BLOCK_ROWS)]
    sku = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.int64)
    pos = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int64)
    values = {name: np.concatenate([b[2][name] for b in blocks]) if blocks else np.zeros(0)
              for name in _RECEIPT_SUMS}
    del blocks
    sums = _rollup(fg.keys(sku, pos), values, SCORECARD_BUCKETS)

    def on_time_rate(frame):
        req = frame["required"].to_numpy()
        return np.where(req > EPSILON, np.clip(_ratio(frame["on_time"].to_numpy(), req), 0.0, 1.0), 1.0), \
            np.ones(len(frame), bool)

    def cost_variance(frame):
        base = frame["cost_required"].to_numpy()
        defined = (frame["costed"].to_numpy() > EPSILON) & (base > 0)
        return np.where(defined, _ratio(frame["cost_landed"].to_numpy(), base) - 1.0, 0.0), defined

    return (_rows("cost_variance", sums, cost_variance, weeks.order),
            _rows("on_time_rate", sums, on_time_rate, weeks.order))


def format_kpi(unit: str, value: float) -> str:
    """A KPI value for people: a ratio as percent ('92.5 %'), other units after the number ('27.5 days')."""
    return f"{100.0 * value:.1f} %" if unit == "ratio" else f"{value:,.1f} {unit}"


def scorecard_totals(kpis: pd.DataFrame) -> list[tuple[str, float, str]]:
    """(KPI, value, unit) of the total bucket, in ``SCORECARD_KPIS`` order (undefined KPIs left out)."""
    totals = kpis[kpis["bucket_type"] == "total"].set_index("metric")["value"]
    return [(k.name, float(totals[k.name]), k.unit) for k in SCORECARD_KPIS if k.name in totals.index]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else object) for c in STORED_KPI_COLUMNS})


def scorecard_kpis(detail: pd.DataFrame, rows: pd.DataFrame, weekly: pd.DataFrame, inputs: PlanningInputs,
                   params: PlanningParameters) -> pd.DataFrame:
    """The seven scorecard KPIs of the final plan (``STORED_KPI_COLUMNS``, category ``scorecard``).

    ``detail``: the final detail plan (``DETAIL_COLUMNS``); ``rows``: its capacity-leveled MRP rows
    (``MRP_COLUMNS`` + ``ADJ_COLUMNS``); ``weekly``: the weekly capacity summary. Rows are ordered by
    KPI (``SCORECARD_KPIS`` order), bucket type (``SCORECARD_BUCKETS`` order), then bucket key (weeks
    in plan order, other keys sorted).
    """
    lookup = calendar_for(inputs, params)
    # the weeks as text in order of first appearance (each column's distinct values first: at 50,000
    # SKUs x 104 weeks the three columns together are 21 M rows)
    all_weeks = pd.unique(np.concatenate([_distinct_text(frame["week"]) for frame in (detail, rows, weekly)]))
    weeks = _Weeks(lookup, all_weeks)
    parts: dict[str, list[pd.DataFrame]] = {k.name: [] for k in SCORECARD_KPIS}
    if len(detail):
        for part in _detail_kpis(detail, weeks):
            parts[str(part["metric"].iloc[0])].append(part)
    fg = _FinishedGoods(rows, inputs, weeks)
    if len(fg.rows):
        parts["inventory_turns"] = _inventory_kpis(fg)
        parts["cost_variance"], parts["on_time_rate"] = _receipt_kpis(fg, inputs)
    if len(weekly):
        parts["capacity_util"] = _capacity_kpis(weekly, weeks)
    frames = [p for k in SCORECARD_KPIS for p in parts[k.name] if len(p)]
    if not frames:
        return _empty()
    out = pd.concat(frames, ignore_index=True)
    bucket_rank = {b: i for i, b in enumerate(SCORECARD_BUCKETS)}
    metric_rank = {k.name: i for i, k in enumerate(SCORECARD_KPIS)}
    out = out.assign(_m=out["metric"].map(metric_rank), _b=out["bucket_type"].map(bucket_rank), _i=np.arange(len(out)))
    out = out.sort_values(["_m", "_b", "_i"], kind="stable")[STORED_KPI_COLUMNS].reset_index(drop=True)
    out["value"] = out["value"].astype("float64")
    return out
