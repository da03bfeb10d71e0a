"""Stage 5 - aggregate vs. detail reconciliation log (spec §10) and its CSV exports (§12).

The detail plan is rolled up to (family, period) and compared with the aggregate plan per
metric (demand, supply, backlog); a metric is ok when ``|delta| <= tol_abs`` or
``|delta| / max(|agg|, |det|, 1) <= tol_rel``. Rows of the cutover month (and of the
cutover's ISO week, for ISO-week periods) are tagged ``boundary_period``.

Deviation (§19.12): a cutover given as a month without a day (``2025-03``) still tags that
month as the boundary (the reference tags nothing because its date parse fails).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.planning.calendar import build_calendar, effective_fallback_weeks, period_of_week
from plan_pipeline.planning.rounding import round6
from plan_pipeline.planning.types import PlanningInputs, PlanningParameters
from plan_pipeline.planning.vocabulary import parse_cutover

__all__ = [
    "METRICS",
    "cutover_tags",
    "deltas_frame",
    "reconcile_levels",
]

METRICS = ("demand", "supply", "backlog")
SCHEMA_VERSION = "recon-aggdet-1.0"


def cutover_tags(cutover_date: Any) -> tuple[str | None, str | None]:
    """(boundary month, ISO week code) of a cutover date.

    ``YYYY-MM-DD`` gives both; ``YYYY-MM`` gives the month only (fix of §19.12);
    anything else gives (None, None).
    """
    cutover = parse_cutover(cutover_date)
    return (None, None) if cutover is None else (cutover.month, cutover.week_code)


def text_array(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A text column as an object array of ``str``; missing values (None/NaN/"") as None."""
    n = len(frame)
    if col not in frame.columns:
        return np.full(n, None, dtype=object)
    s = frame[col]
    values = s.to_numpy(dtype=object, copy=True)
    miss = s.isna().to_numpy()
    if pd.api.types.infer_dtype(s, skipna=True) != "string":
        values = np.array([None if m else str(v) for v, m in zip(values, miss)], dtype=object)
    miss |= values == ""
    values[miss] = None
    return values


def factorize_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of the (a, b) pairs in first-appearance order, with the unique a and b values."""
    if len(a) == 0:
        return np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, object)
    ca, ua = pd.factorize(a, sort=False)
    cb, ub = pd.factorize(b, sort=False)
    combo = ca.astype(np.int64) * len(ub) + cb
    codes, uniq = pd.factorize(combo, sort=False)
    ua = np.asarray(ua, dtype=object)
    ub = np.asarray(ub, dtype=object)
    return codes.astype(np.int64), ua[uniq // len(ub)], ub[uniq % len(ub)]


def _det_keys(detail: pd.DataFrame, lookup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(family, period, valid mask) per detail row (§10 step 2)."""
    fam = text_array(detail, "family")
    if "item" in detail.columns:
        miss = pd.isna(fam)
        if miss.any():
            fam[miss] = text_array(detail, "item")[miss]
    # period: kept when present and not null (an empty string stays), else derived from the week
    if "period" in detail.columns:
        pcol = detail["period"]
        per = pcol.to_numpy(dtype=object, copy=True)
        missing = pcol.isna().to_numpy()
        if pd.api.types.infer_dtype(pcol, skipna=True) != "string":
            per = np.array([None if m else str(v) for v, m in zip(per, missing)], dtype=object)
    else:
        per = np.full(len(detail), None, dtype=object)
        missing = np.ones(len(detail), dtype=bool)
    if missing.any():
        weeks = text_array(detail, "week")
        cache: dict = {}
        for i in np.flatnonzero(missing):
            w = weeks[i] or ""
            if w not in cache:
                cache[w] = period_of_week(lookup, w)
            per[i] = cache[w]
    valid = ~pd.isna(fam)
    return fam, per, valid


def _metric_values(frame: pd.DataFrame, name: str, fallback: str | None = None) -> np.ndarray:
    n = len(frame)
    if name in frame.columns:
        v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        if fallback is not None and fallback in frame.columns:
            fb = pd.to_numeric(frame[fallback], errors="coerce").to_numpy(dtype=np.float64)
            v = np.where(np.isnan(v), fb, v)
        return np.nan_to_num(v, nan=0.0)
    if fallback is not None and fallback in frame.columns:
        return np.nan_to_num(pd.to_numeric(frame[fallback], errors="coerce").to_numpy(dtype=np.float64), nan=0.0)
    return np.zeros(n)


def _deltas(aggregate: pd.DataFrame, detail: pd.DataFrame, lookup, tol_abs: float, tol_rel: float,
            tags: tuple[str | None, str | None]) -> pd.DataFrame:
    # --- aggregate map (duplicate keys: last wins)
    a_fam = np.array([str(x) for x in aggregate["family"].tolist()], dtype=object)
    a_per = np.array([str(x) for x in aggregate["period"].tolist()], dtype=object)
    agg = pd.DataFrame({"family": a_fam, "period": a_per})
    for m in METRICS:
        agg[m] = _metric_values(aggregate, m)
    agg = agg.drop_duplicates(["family", "period"], keep="last")

    # --- detail roll-up (row-order sequential sums)
    fam, per, valid = _det_keys(detail, lookup) if len(detail) else (np.zeros(0, object), np.zeros(0, object), np.zeros(0, bool))
    det_vals = {
        "demand": _metric_values(detail, "demand"),
        "supply": _metric_values(detail, "supply", fallback="supply_plan"),
        "backlog": _metric_values(detail, "backlog"),
    }
    codes, u_fam, u_per = factorize_pairs(fam[valid], per[valid])
    det = pd.DataFrame({"family": u_fam, "period": u_per}, dtype=object)
    for m in METRICS:
        det[m] = np.bincount(codes, weights=det_vals[m][valid], minlength=len(u_fam)) if len(u_fam) else np.zeros(0)

    # --- union of keys, sorted as Python strings
    merged = agg.merge(det, on=["family", "period"], how="outer", suffixes=("_agg", "_det"))
    order = sorted(range(len(merged)), key=lambda i: (merged["family"].iat[i], merged["period"].iat[i]))
    merged = merged.iloc[order].reset_index(drop=True)
    out = pd.DataFrame({"family": merged["family"].astype(object), "period": merged["period"].astype(object)})
    ok_all = np.ones(len(merged), dtype=bool)
    violations = np.zeros(len(merged), dtype=np.int64)
    for m in METRICS:
        a = merged[f"{m}_agg"].to_numpy(dtype=np.float64)
        d = merged[f"{m}_det"].to_numpy(dtype=np.float64)
        a = np.nan_to_num(a, nan=0.0)
        d = np.nan_to_num(d, nan=0.0)
        delta = d - a
        rel = np.abs(delta) / np.maximum(np.maximum(np.abs(a), np.abs(d)), 1.0)
        ok = (np.abs(delta) <= tol_abs) | (rel <= tol_rel)
        out[f"agg_{m}"] = a
        out[f"det_{m}"] = d
        out[f"delta_{m}"] = delta
        out[f"rel_{m}"] = rel
        out[f"ok_{m}"] = ok
        ok_all &= ok
        violations += (~ok).astype(np.int64)
    out["ok"] = ok_all
    out["violations"] = violations
    month, iso = tags
    pers = out["period"].to_numpy(dtype=object)
    boundary = np.zeros(len(out), dtype=bool)
    if month is not None:
        boundary |= pers == month
    if iso is not None:
        boundary |= pers == iso
    out["boundary_period"] = boundary
    return out


def reconcile_levels(
    aggregate: pd.DataFrame,
    detail: pd.DataFrame,
    inputs: PlanningInputs | None,
    params: PlanningParameters,
    version_label: str,
) -> dict:
    """The ``reconciliation_log.json`` document for ``aggregate`` vs ``detail``."""
    p = params.resolved()
    calendar = inputs.calendar if inputs is not None else None
    lookup = build_calendar(calendar, effective_fallback_weeks(p, calendar is not None))
    tags = cutover_tags(p.cutover_date)
    tol_abs, tol_rel = float(p.tol_abs), float(p.tol_rel)
    frame = _deltas(aggregate, detail, lookup, tol_abs, tol_rel, tags)
    n = len(frame)

    rounded = {}
    for m in METRICS:
        for pre in ("agg", "det", "delta", "rel"):
            rounded[f"{pre}_{m}"] = round6(frame[f"{pre}_{m}"].to_numpy(dtype=np.float64)).tolist()
    fams = frame["family"].tolist()
    pers = frame["period"].tolist()
    oks = {f"ok_{m}": frame[f"ok_{m}"].tolist() for m in METRICS}
    ok_list = frame["ok"].tolist()
    bnd = frame["boundary_period"].tolist()
    deltas = []
    for i in range(n):
        row: dict[str, Any] = {"family": fams[i], "period": pers[i]}
        for m in METRICS:
            row[f"agg_{m}"] = rounded[f"agg_{m}"][i]
            row[f"det_{m}"] = rounded[f"det_{m}"][i]
            row[f"delta_{m}"] = rounded[f"delta_{m}"][i]
            row[f"rel_{m}"] = rounded[f"rel_{m}"][i]
            row[f"ok_{m}"] = bool(oks[f"ok_{m}"][i])
        row["ok"] = bool(ok_list[i])
        if bnd[i]:
            row["boundary_period"] = True
        deltas.append(row)

    # magnitudes from the rounded deltas (as written), so float noise cannot reorder ``top``
    absd = {m: np.abs(np.asarray(rounded[f"delta_{m}"], dtype=np.float64)) for m in METRICS}
    bmask = frame["boundary_period"].to_numpy(dtype=bool)
    max_abs = {m: round6(float(absd[m].max())) if n else 0.0 for m in METRICS}
    b_idx = np.flatnonzero(bmask)
    b_max = {m: round6(float(absd[m][b_idx].max())) if len(b_idx) else 0.0 for m in METRICS}
    score = np.maximum(np.maximum(absd["demand"], absd["supply"]), absd["backlog"])[b_idx]
    top_idx = b_idx[np.argsort(-score, kind="stable")][:10] if len(b_idx) else np.zeros(0, dtype=np.int64)
    top = [
        {
            "family": fams[i],
            "period": pers[i],
            "delta_demand": rounded["delta_demand"][i],
            "delta_supply": rounded["delta_supply"][i],
            "delta_backlog": rounded["delta_backlog"][i],
            "ok": bool(ok_list[i]),
        }
        for i in top_idx
    ]
    ok_arr = frame["ok"].to_numpy(dtype=bool)
    return {
        "schema_version": SCHEMA_VERSION,
        "version_id": version_label,
        "cutover": {
            "cutover_date": p.cutover_date,
            "recon_window_days": p.recon_window_days,
            "anchor_policy": p.anchor_policy,
        },
        "inputs_summary": {
            "aggregate_rows": len(aggregate),
            "det_rows": len(detail),
            "families": len(set(fams)),
            "periods": len(set(pers)),
        },
        "tolerance": {"abs": tol_abs, "rel": tol_rel},
        "summary": {
            "rows": n,
            "tol_violations": int(frame["violations"].sum()) if n else 0,
            "max_abs_delta": max_abs,
            "boundary": {
                "period": tags[0],
                "violations": int((~ok_arr[b_idx]).sum()) if len(b_idx) else 0,
                "max_abs_delta": b_max,
                "top": top,
            },
        },
        "deltas": deltas,
    }


def deltas_frame(log: dict) -> pd.DataFrame:
    """The log's ``deltas`` as a DataFrame (``boundary_period`` False where absent)."""
    cols = ["family", "period"] + [
        f"{pre}_{m}" for m in METRICS for pre in ("agg", "det", "delta", "rel", "ok")
    ] + ["ok", "boundary_period"]
    rows = log.get("deltas", [])
    data = {c: [r.get(c, False if c == "boundary_period" else None) for r in rows] for c in cols}
    df = pd.DataFrame(data, columns=cols)
    for c in cols:
        if c in ("family", "period"):
            df[c] = df[c].astype(object)
        elif c.startswith("ok") or c == "boundary_period":
            df[c] = df[c].astype(bool)
        else:
            df[c] = df[c].astype("float64")
    return df


# --------------------------------------------------------------------------- CSV exports


