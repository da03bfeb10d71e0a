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
def _text(values) -> np.ndarray:
    return pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)


def _rollup(keys: dict[str, np.ndarray], values: dict[str, np.ndarray], buckets) -> dict[str, pd.DataFrame]:
    """Per bucket type: the sums of ``values`` per bucket key (``total`` has the one key 'total')."""
    frame = pd.DataFrame(values)
    out = {}
    for bucket in buckets:
        if bucket == "total":
            sums = frame.sum().to_frame().T
            sums.index = pd.Index(["total"])
        else:
            sums = frame.groupby(keys[bucket], sort=False).sum()
        out[bucket] = sums
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
    """Week order and week -> month of the plan (one calendar lookup per call)."""

    def __init__(self, lookup: CalendarLookup, weeks) -> None:
        self.lookup = lookup
        self.order = {w: i for i, w in enumerate(order_weeks(lookup, [str(w) for w in weeks]))}
        self._months: dict[str, str] = {}

    def months(self, weeks: np.ndarray) -> np.ndarray:
        codes, uniques = pd.factorize(weeks)
        mapped = np.array([self._month(str(w)) for w in uniques], dtype=object)
        return mapped[codes] if len(codes) else np.zeros(0, dtype=object)

    def positions(self, weeks: np.ndarray) -> np.ndarray:
        return pd.Series(weeks, dtype=object).map(self.order).fillna(len(self.order)).to_numpy(np.int64)

    def _month(self, week: str) -> str:
        if week not in self._months:
            self._months[week] = period_of_week(self.lookup, week)
        return self._months[week]


# ------------------------------------------------------------------------------------ the KPIs
def _detail_kpis(detail: pd.DataFrame, weeks: _Weeks) -> list[pd.DataFrame]:
    keys = {"month": _text(detail["period"]), "week": _text(detail["week"]), "family": _text(detail["family"]),
            "sku": _text(detail["sku"])}
    demand = detail["demand"].to_numpy(np.float64)
    supply = detail["supply"].to_numpy(np.float64)
    backlog = detail["backlog"].to_numpy(np.float64)
    positive = demand > EPSILON
    covered = positive & (supply >= demand - EPSILON * np.maximum(1.0, np.abs(demand)))
    # days of a bucket: a week 7, a month its calendar days, a SKU/family/the total the horizon's
    period_weeks = pd.DataFrame({"p": keys["month"], "w": keys["week"]}).drop_duplicates().groupby("p")["w"].size()
    month_days = {p: _period_days(p, int(n)) for p, n in period_weeks.items()}
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


def _fg_rows(rows: pd.DataFrame, inputs: PlanningInputs) -> tuple[pd.DataFrame, dict[str, str]]:
    """The finished-good MRP rows, and SKU -> family."""
    families = sku_families(inputs.mix_share)
    fg = rows["item"].astype(str).isin(set(families)).to_numpy() if len(rows) else np.zeros(0, bool)
    return rows[fg], families


def _time_keys(skus: np.ndarray, week_codes: np.ndarray, families: dict[str, str], weeks: _Weeks) -> dict:
    return {"month": weeks.months(week_codes), "week": week_codes,
            "family": pd.Series(skus, dtype=object).map(families).to_numpy(dtype=object), "sku": skus}


def _inventory_kpis(fg: pd.DataFrame, families: dict[str, str], weeks: _Weeks) -> list[pd.DataFrame]:
    skus, week_codes = _text(fg["item"]), _text(fg["week"])
    on_hand = np.maximum(0.0, 0.5 * (fg["on_hand_start"].to_numpy(np.float64) + fg["on_hand_end"].to_numpy(np.float64)))
    sums = _rollup(_time_keys(skus, week_codes, families, weeks),
                   {"gross": fg["gross_req"].to_numpy(np.float64), "on_hand": on_hand}, SCORECARD_BUCKETS)

    def turns(frame):
        oh = frame["on_hand"].to_numpy()
        return WEEKS_PER_YEAR * _ratio(frame["gross"].to_numpy(), oh), oh > EPSILON

    return _rows("inventory_turns", sums, turns, weeks.order)


def _capacity_kpis(weekly: pd.DataFrame, weeks: _Weeks) -> list[pd.DataFrame]:
    week_codes = _text(weekly["week"])
    keys = {"month": weeks.months(week_codes), "week": week_codes}
    sums = _rollup(keys, {"load": weekly["adjusted_load"].to_numpy(np.float64),
                          "capacity": weekly["capacity"].to_numpy(np.float64)}, KPI_BUCKETS["capacity_util"])

    def util(frame):
        load, cap = frame["load"].to_numpy(), frame["capacity"].to_numpy()
        return _ratio(load, cap), (cap > 0) | (load <= EPSILON)

    return _rows("capacity_util", sums, util, weeks.order)


def _receipt_segments(sku: np.ndarray, pos: np.ndarray, original: np.ndarray, leveled: np.ndarray) -> pd.DataFrame:
    """Match each SKU's original and leveled planned receipts unit by unit in time order.

    Per SKU, unit ``k`` of the original receipts is required in the first week whose cumulative
    original receipt reaches ``k``; unit ``k`` of the leveled receipts lands in the first week whose
    cumulative leveled receipt reaches ``k``. Units ``0 < k <= min(Σ original, Σ leveled)`` are the
    same quantities before and after leveling; units beyond Σ leveled never land. Returns the
    segments of equal (required week, landing week): columns ``sku``, ``required``, ``landed``
    (week positions) and ``qty``.
    """
    frame = pd.DataFrame({"sku": sku, "pos": pos, "o": np.maximum(0.0, original), "a": np.maximum(0.0, leveled)})
    frame = frame.groupby(["sku", "pos"], sort=True).sum().reset_index()
    grouped = frame.groupby("sku", sort=False)
    frame["cum_o"] = grouped["o"].cumsum()
    frame["cum_a"] = grouped["a"].cumsum()
    matched = np.minimum(grouped["cum_o"].transform("max"), grouped["cum_a"].transform("max")).to_numpy()
    codes = frame["sku"].to_numpy(dtype=object)
    # breakpoints of both cumulative curves (cut at the matched quantity), and 0
    points = pd.DataFrame({
        "sku": np.concatenate([codes, codes, pd.unique(codes)]),
        "b": np.concatenate([np.minimum(frame["cum_o"].to_numpy(), matched),
                             np.minimum(frame["cum_a"].to_numpy(), matched), np.zeros(len(pd.unique(codes)))]),
    }).drop_duplicates().sort_values(["sku", "b"], kind="stable")
    length = points.groupby("sku", sort=False)["b"].diff().to_numpy()
    keep = np.nan_to_num(length, nan=0.0) > EPSILON
    seg_sku = points["sku"].to_numpy(dtype=object)[keep]
    seg_len = length[keep]
    mid = points["b"].to_numpy()[keep] - seg_len / 2.0

    def first_reaching(cum_column: str) -> np.ndarray:
        """Per segment: the first week (position) whose cumulative quantity of the SKU reaches its midpoint."""
        both = pd.DataFrame({
            "sku": np.concatenate([seg_sku, codes]),
            "v": np.concatenate([mid, frame[cum_column].to_numpy()]),
            "week": np.concatenate([np.full(len(mid), np.nan), frame["pos"].to_numpy(np.float64)]),
            "seg": np.concatenate([np.arange(len(mid)), np.full(len(codes), -1)]),
        }).sort_values(["sku", "v", "seg"], kind="stable")  # a midpoint never equals a breakpoint
        both["week"] = both.groupby("sku", sort=False)["week"].bfill()
        segs = both[both["seg"] >= 0]
        out = np.empty(len(mid), dtype=np.float64)
        out[segs["seg"].to_numpy(np.int64)] = segs["week"].to_numpy()
        return out

    return pd.DataFrame({"sku": seg_sku, "required": first_reaching("cum_o").astype(np.int64),
                         "landed": first_reaching("cum_a").astype(np.int64), "qty": seg_len})


def _unit_costs(inputs: PlanningInputs) -> dict[str, float]:
    table = inputs.period_cost
    if table is None or not len(table):
        return {}
    costs = table.dropna(subset=["cost"]).drop_duplicates("period", keep="last")
    return dict(zip(costs["period"].astype(str), costs["cost"].astype(np.float64)))


def _receipt_kpis(fg: pd.DataFrame, families: dict[str, str], weeks: _Weeks, inputs: PlanningInputs):
    skus, week_codes = _text(fg["item"]), _text(fg["week"])
    pos = weeks.positions(week_codes)
    original = fg["planned_order_receipt"].to_numpy(np.float64)
    leveled = fg["planned_order_receipt_adj"].to_numpy(np.float64)
    segments = _receipt_segments(skus, pos, original, leveled)
    ordered = sorted(weeks.order, key=weeks.order.__getitem__)
    week_at = np.array(ordered + [""], dtype=object)  # position -> week ('' = not in the plan's weeks)
    seg_weeks = week_at[np.minimum(segments["required"].to_numpy(), len(ordered))]
    costs = _unit_costs(inputs)
    cost_at = pd.Series(weeks.months(week_at), dtype=object).map(costs).to_numpy(np.float64)
    seg_skus = segments["sku"].to_numpy(dtype=object)
    qty = segments["qty"].to_numpy()
    cost_required = cost_at[np.minimum(segments["required"].to_numpy(), len(ordered))]
    cost_landed = cost_at[np.minimum(segments["landed"].to_numpy(), len(ordered))]
    costed = ~(np.isnan(cost_required) | np.isnan(cost_landed))
    on_time = segments["landed"].to_numpy() <= segments["required"].to_numpy()
    # one frame of parts: the original receipts (denominator of on_time_rate) and the segments
    all_skus = np.concatenate([skus, seg_skus])
    all_weeks = np.concatenate([week_codes, seg_weeks])
    zeros_fg, zeros_seg = np.zeros(len(skus)), np.zeros(len(qty))
    sums = _rollup(_time_keys(all_skus, all_weeks, families, weeks), {
        "required": np.concatenate([np.maximum(0.0, original), zeros_seg]),
        "on_time": np.concatenate([zeros_fg, np.where(on_time, qty, 0.0)]),
        "cost_landed": np.concatenate([zeros_fg, np.where(costed, qty * np.nan_to_num(cost_landed), 0.0)]),
        "cost_required": np.concatenate([zeros_fg, np.where(costed, qty * np.nan_to_num(cost_required), 0.0)]),
        "costed": np.concatenate([zeros_fg, np.where(costed, qty, 0.0)]),
    }, SCORECARD_BUCKETS)

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
    all_weeks = pd.unique(pd.concat([detail["week"], rows["week"], weekly["week"]], ignore_index=True).astype(str))
    weeks = _Weeks(lookup, all_weeks)
    fg, families = _fg_rows(rows, inputs)
    parts: dict[str, list[pd.DataFrame]] = {k.name: [] for k in SCORECARD_KPIS}
    if len(detail):
        for part in _detail_kpis(detail, weeks):
            parts[str(part["metric"].iloc[0])].append(part)
    if len(fg):
        parts["inventory_turns"] = _inventory_kpis(fg, families, weeks)
        parts["cost_variance"], parts["on_time_rate"] = _receipt_kpis(fg, families, weeks, inputs)
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
