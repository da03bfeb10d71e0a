"""Stage 3 — MRP-lite: netting, lot/MOQ sizing, lead-time offset, BOM explosion (spec §8).

Vectorised over items; the time-phased netting loops over the horizon weeks. The BOM is
exploded in file order on the *gross* requirement of the parent in the same week (the
reference's behaviour, kept because the oracle encodes it).

Deliberate deviation from the reference (§19 item 9): with ``lt_unit == "day"`` the lead
time in weeks is ``ceil(lt / week_days)`` also for fractional ``lt`` (the reference floors
``(lt + D - 1) / D``, so 0.5 day became 0 weeks). Integer lead times are unchanged.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from plan_pipeline.planning.calendar import CalendarLookup, map_due_to_week, order_weeks
from plan_pipeline.planning.detail import calendar_for
from plan_pipeline.planning.rounding import round_half_even, sequential_group_sum
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import MRP_COLUMNS, MRP_KEY_COLUMNS

_FLOAT_COLUMNS = [
    "gross_req", "scheduled_receipts", "on_hand_start", "net_req", "planned_order_receipt",
    "planned_order_release",
]
_BLOCK_FLOATS = [*_FLOAT_COLUMNS, "lot", "moq", "on_hand_end"]
LOT_TOLERANCE = 1e-9


def lead_time_weeks(lt: np.ndarray, lt_unit: str, week_days: int) -> np.ndarray:
    """Lead time in whole weeks (int64): ``week`` => banker's round; ``day`` => ceil(lt / D)."""
    lt = np.asarray(lt, dtype=np.float64)
    if lt_unit == "week":
        return np.rint(np.maximum(0.0, lt)).astype(np.int64)
    days = float(max(1, int(week_days)))
    return np.maximum(0.0, np.ceil(lt / days)).astype(np.int64)


def lot_moq(net: np.ndarray, lot: np.ndarray, moq: np.ndarray) -> np.ndarray:
    """MOQ first, then up to a lot multiple (an excess below 1e-9 is not rounded up)."""
    return lot * np.floor((np.maximum(net, moq) + lot - LOT_TOLERANCE) / lot)


def _text(series: pd.Series) -> np.ndarray:
    """A key column as an object array of ``str`` (``None`` becomes ``""``)."""
    if pd.api.types.infer_dtype(series, skipna=False) == "string":  # a C scan: all str, no None/NaN
        return series.to_numpy(dtype=object)
    return np.asarray(["" if v is None else str(v) for v in series.tolist()], dtype=object)


def _valid_bom(bom: pd.DataFrame) -> list[tuple[str, str, float]]:
    out = []
    for p, c, q in zip(bom["parent"].tolist(), bom["child"].tolist(), bom["qty"].tolist()):
        p = "" if p is None else str(p)
        c = "" if c is None else str(c)
        q = float(q)
        if not p or not c or not (q > 0):
            continue
        out.append((p, c, q))
    return out


def _open_po_cells(open_po: pd.DataFrame, lookup: CalendarLookup, horizon: dict[str, int]):
    """(items, week indices, qty) of the kept open-PO rows in file order."""
    items, weeks, qtys = [], [], []
    cache: dict[str, str | None] = {}
    for item, due, qty in zip(open_po["item"].tolist(), open_po["due"].tolist(), open_po["qty"].tolist()):
        item = "" if item is None else str(item)
        if not item:
            continue
        due = "" if due is None else str(due)
        if due not in cache:
            cache[due] = map_due_to_week(lookup, due)
        week = cache[due]
        if week is None or week not in horizon:
            continue
        items.append(item)
        weeks.append(horizon[week])
        qtys.append(float(qty))
    return items, weeks, qtys


def _item_params(item: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    params: dict[str, tuple[float, float, float]] = {}
    for name, lt, lot, moq in zip(item["item"].tolist(), item["lt"].tolist(), item["lot"].tolist(), item["moq"].tolist()):
        params[str(name)] = (float(lt), max(1.0, float(lot)), max(0.0, float(moq)))
    return params


def _empty_mrp() -> pd.DataFrame:
    data = {c: pd.Series(dtype="object") for c in MRP_KEY_COLUMNS}
    for c in _FLOAT_COLUMNS + ["lot", "moq", "on_hand_end"]:
        data[c] = pd.Series(dtype="float64")
    data["lt_weeks"] = pd.Series(dtype="int64")
    return pd.DataFrame(data)[MRP_COLUMNS]


def plan_mrp(detail: pd.DataFrame, inputs: PlanningInputs, params: PlanningParameters) -> pd.DataFrame:
    """Item × week MRP rows (items sorted, weeks in horizon order). ``attrs["summary"]`` holds
    the counts of the document's inputs summary (items, open_po, bom_links, weeks, …)."""
    lookup = calendar_for(inputs, params)
    det_week = _text(detail["week"])
    weeks = order_weeks(lookup, pd.unique(det_week).tolist())
    horizon = {w: i for i, w in enumerate(weeks)}
    nw = len(weeks)
    bom_rows = _valid_bom(inputs.bom)

    # Item universe: DET SKUs, BOM parents/children, inventory items.
    det_sku = _text(detail["sku"])
    inv_items = _text(inputs.inventory["item"])
    universe = pd.unique(np.concatenate([
        det_sku,
        np.asarray([p for p, _, _ in bom_rows] + [c for _, c, _ in bom_rows], dtype=object),
        inv_items[inv_items != ""],
    ]))
    names = {name: k for k, name in enumerate(universe.tolist())}
    n_items = len(names)
    item_index = pd.Index(universe)

    # Gross requirement by (item, week): DET demand summed in row order.
    gross = np.zeros((n_items, max(nw, 1)), dtype=np.float64)
    has_gross = np.zeros(n_items, dtype=bool)
    if len(detail):
        d_item = item_index.get_indexer(det_sku).astype(np.int64)
        d_week = pd.Index(weeks).get_indexer(det_week).astype(np.int64)
        cell = d_item * nw + d_week
        gross = sequential_group_sum(detail["demand"].to_numpy(dtype=np.float64), cell, n_items * nw).reshape(n_items, nw)
        has_gross[d_item] = True

    # BOM explosion in file order: child += parent gross (same week) while parent gross > 0.
    # Consecutive rows whose parents were not touched earlier in the batch are applied at once.
    i = 0
    while i < len(bom_rows) and nw:
        touched: set[str] = set()
        j = i
        while j < len(bom_rows) and bom_rows[j][0] not in touched:
            touched.add(bom_rows[j][1])
            j += 1
        batch = bom_rows[i:j]
        par = np.fromiter((names[p] for p, _, _ in batch), dtype=np.int64, count=len(batch))
        chi = np.fromiter((names[c] for _, c, _ in batch), dtype=np.int64, count=len(batch))
        qty = np.fromiter((q for _, _, q in batch), dtype=np.float64, count=len(batch))
        g = gross[par]
        positive = g > 0
        add = np.where(positive, g * qty[:, None], 0.0)
        np.add.at(gross, chi, add)
        has_gross[chi[positive.any(axis=1)]] = True
        i = j

    # Open POs kept in the horizon (counted even for items outside the item set).
    po_items, po_weeks, po_qty = _open_po_cells(inputs.open_po, lookup, horizon)
    sched = np.zeros((n_items, max(nw, 1)), dtype=np.float64)
    po_keys: dict[tuple[str, int], int] = {}
    for it, wk in zip(po_items, po_weeks):
        po_keys.setdefault((it, wk), len(po_keys))
    if po_items:
        key = np.fromiter((po_keys[(it, wk)] for it, wk in zip(po_items, po_weeks)), dtype=np.int64, count=len(po_items))
        sums = sequential_group_sum(np.asarray(po_qty), key, len(po_keys))
        for (it, wk), k in po_keys.items():
            if it in names:
                sched[names[it], wk] = sums[k]

    # On hand: inventory summed per item in file order.
    on_hand = np.zeros(n_items, dtype=np.float64)
    in_inventory = np.zeros(n_items, dtype=bool)
    inv_keep = inv_items != ""
    if inv_keep.any():
        idx = item_index.get_indexer(inv_items[inv_keep]).astype(np.int64)
        qty = inputs.inventory["qty"].to_numpy(dtype=np.float64)[inv_keep]
        on_hand = sequential_group_sum(qty, idx, n_items)
        in_inventory[idx] = True

    # Items in the plan: any gross entry or inventory; sorted by code.
    selected = sorted(name for name, k in names.items() if has_gross[k] or in_inventory[k])
    sel = np.fromiter((names[s] for s in selected), dtype=np.int64, count=len(selected))
    summary = {
        "items": len(inputs.item),
        "open_po": len(po_keys),
        "bom_links": len(bom_rows),
        "weeks": nw,
        "lt_unit": params.lt_unit,
        "calendar_mode": lookup.mode,
    }
    if nw == 0 or len(sel) == 0:
        out = _empty_mrp()
        out.attrs["summary"] = summary
        return out

    item_params = _item_params(inputs.item)
    defaults = (0.0, 1.0, 0.0)
    triples = [item_params.get(s, defaults) for s in selected]
    lt = np.fromiter((t[0] for t in triples), dtype=np.float64, count=len(triples))
    lot = np.fromiter((t[1] for t in triples), dtype=np.float64, count=len(triples))
    moq = np.fromiter((t[2] for t in triples), dtype=np.float64, count=len(triples))
    lt_weeks = lead_time_weeks(lt, params.lt_unit, params.week_days)

    n = len(sel)
    # The time loop runs over week-major (nw, n) arrays: each week is one contiguous row, not a
    # strided column (at 20,000 SKUs the strided version spent 0.8 s in cache misses).
    # Memory: every (items x weeks) array is 126 MB at 50,000 SKUs x 104 weeks (150,000 items), so
    # each is dropped as soon as it has been used (the whole-item matrices right after the
    # selection, each result once it is in the frame's block).
    GT = np.ascontiguousarray(gross[sel, :nw].T)
    ST = np.ascontiguousarray(sched[sel, :nw].T)
    del gross, sched
    start = np.empty((nw, n))
    net = np.empty((nw, n))
    receipt = np.empty((nw, n))
    end = np.empty((nw, n))
    release = np.zeros((nw, n))
    oh = on_hand[sel].copy()
    rows_idx = np.arange(n)
    for t in range(nw):
        g = GT[t]
        start[t] = oh
        avail = oh + ST[t]
        need = np.maximum(0.0, g - avail)
        short = need > 0
        por = np.where(short, lot_moq(need, lot, moq), 0.0)
        oh = np.where(short, avail + por - g, avail - g)
        net[t] = need
        receipt[t] = por
        end[t] = oh
        if short.any():
            r = rows_idx[short]
            release[np.maximum(0, t - lt_weeks[r]), r] += por[short]

    # The float columns are written straight into one 2-D block (pandas' own layout), so the
    # 795k-row frame at 5,000 SKUs is built without pandas consolidating 13 separate arrays.
    n_rows = n * nw
    block = np.empty((len(_BLOCK_FLOATS), n_rows), dtype=np.float64)
    week_major = [GT, ST, start, net, receipt, release]  # block rows 0-5, in _BLOCK_FLOATS order
    del GT, ST, start, net, receipt, release, g  # (g: a view of GT's last week)
    for k in range(len(week_major)):
        values = week_major.pop(0)  # the block row holds it from now on
        block[k] = round_half_even(values.T.ravel(), 6)  # item-major rows: item x week
        del values
    block[6] = np.repeat(round_half_even(lot, 6), nw)
    block[7] = np.repeat(round_half_even(moq, 6), nw)
    block[8] = round_half_even(end.T.ravel(), 6)
    del end
    out = pd.DataFrame(block.T, columns=_BLOCK_FLOATS, copy=False)
    item_col = np.repeat(np.asarray(selected, dtype=object), nw)
    out.insert(0, "item", item_col)
    out.insert(1, "sku", item_col)  # the same array: ``sku`` is ``item`` (stored once)
    out.insert(2, "week", np.tile(np.asarray(weeks, dtype=object), n))
    out.insert(9, "lt_weeks", np.repeat(lt_weeks, nw).astype(np.int64))
    out.attrs["summary"] = summary
    return out


