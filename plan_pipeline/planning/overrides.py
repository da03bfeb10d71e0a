"""Planner overrides of the detail plan: keys, application, and the lock laws (pure).

A detail override targets one SKU x week row: ``det:week=<week>,sku=<sku>`` (the reference's
readable key), with ``,period=<period>`` added when the week is shared by two months and the
edit is meant for one fragment. Its payload sets ``demand``, ``supply`` and/or ``backlog``;
``supply_plan`` follows ``supply``, and an edit of demand or supply without an explicit
backlog recomputes ``backlog = max(0, demand - supply)``. A lock pins the row: later stages
(the anchor correction) must leave it as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

DETAIL_FIELDS = ("demand", "supply", "backlog")
_KEY_RE = re.compile(r"^det:week=(?P<week>[^,]+),sku=(?P<sku>[^,]+)(?:,period=(?P<period>[^,]+))?$")


def detail_key(week: str, sku: str, period: str | None = None) -> str:
    for name, value in (("week", week), ("sku", sku), ("period", period)):
        if value is not None and ("," in value or "=" in value or not value.strip()):
            raise ValueError(f"override {name} {value!r} must be non-empty and contain no ',' or '='")
    key = f"det:week={week},sku={sku}"
    return key + (f",period={period}" if period else "")


def parse_detail_key(key: str) -> tuple[str, str, str | None]:
    match = _KEY_RE.match(key)
    if not match:
        raise ValueError(f"not a detail override key: {key!r} (expected det:week=W,sku=S[,period=P])")
    return match["week"], match["sku"], match["period"]


@dataclass
class AppliedOverrides:
    frame: pd.DataFrame  # the detail plan with the edits applied
    edited: np.ndarray  # bool per row: some value was set by an override
    locked: np.ndarray  # bool per row: the row is locked
    problems: pd.DataFrame  # overrides that match no row, or a shared week without period


def _match(detail: pd.DataFrame, overrides: list[dict]):
    """(row index array, override index array) of every override -> detail row match, + problems."""
    weeks = detail["week"].astype(str).to_numpy()
    skus = detail["sku"].astype(str).to_numpy()
    periods = detail["period"].astype(str).to_numpy()
    index = pd.MultiIndex.from_arrays([weeks, skus])
    positions = pd.Series(np.arange(len(detail)), index=index)
    rows, owners, problems = [], [], []
    for i, override in enumerate(overrides):
        week, sku, period = parse_detail_key(override["key"])
        try:
            hit = positions.loc[[(week, sku)]].to_numpy()
        except KeyError:
            problems.append((override["key"], "matches no row of the detail plan"))
            continue
        if period is not None:
            hit = hit[periods[hit] == period]
            if len(hit) == 0:
                problems.append((override["key"], f"week {week} of {sku} has no fragment in period {period}"))
                continue
        elif len(hit) > 1 and override["payload"]:
            problems.append((override["key"], f"week {week} of {sku} spans periods "
                             f"{', '.join(periods[hit])}: give the period"))
            continue
        rows.extend(hit.tolist())
        owners.extend([i] * len(hit))
    return np.asarray(rows, dtype=np.int64), np.asarray(owners, dtype=np.int64), problems


def apply_detail_overrides(detail: pd.DataFrame, overrides: list[dict]) -> AppliedOverrides:
    """Apply ``[{key, payload, locked}]`` (oldest first) to a detail plan frame."""
    if overrides:
        frame = detail.reset_index(drop=True).copy()
    else:  # nothing to write: share the columns instead of copying 310k rows at 5,000 SKUs
        frame = detail.copy(deep=False)
        frame.index = pd.RangeIndex(len(frame))
    n = len(frame)
    edited = np.zeros(n, dtype=bool)
    locked = np.zeros(n, dtype=bool)
    problem_cols = ["key", "problem"]
    if not overrides or n == 0:
        problems = [(o["key"], "matches no row of the detail plan") for o in overrides] if n == 0 else []
        return AppliedOverrides(frame, edited, locked, pd.DataFrame(problems, columns=problem_cols))
    rows, owners, problems = _match(frame, overrides)
    values = {f: frame[f].to_numpy(dtype=np.float64, copy=True) for f in DETAIL_FIELDS}
    for row, owner in zip(rows.tolist(), owners.tolist()):
        override = overrides[owner]
        payload = {k: float(v) for k, v in override["payload"].items() if k in DETAIL_FIELDS and v is not None}
        if override.get("locked"):
            locked[row] = True
        if not payload:
            continue
        for field_name, value in payload.items():
            values[field_name][row] = value
        if "backlog" not in payload and ("demand" in payload or "supply" in payload):
            values["backlog"][row] = max(0.0, values["demand"][row] - values["supply"][row])
        edited[row] = True
    for field_name in DETAIL_FIELDS:
        frame[field_name] = values[field_name]
    if "supply_plan" in frame.columns:
        frame["supply_plan"] = values["supply"]
    return AppliedOverrides(frame, edited, locked, pd.DataFrame(problems, columns=problem_cols))


def lock_violations(plan: pd.DataFrame, overrides: list[dict], reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Locked rows must hold their overridden values in ``plan``; with ``reference`` (the detail
    plan a later stage started from) locked rows must also be unchanged from it."""
    cols = ["key", "field", "expected", "actual"]
    locked_overrides = [o for o in overrides if o.get("locked")]
    if not locked_overrides or plan.empty:
        return pd.DataFrame(columns=cols)
    rows, owners, _ = _match(plan.reset_index(drop=True), locked_overrides)
    problems = []
    for row, owner in zip(rows.tolist(), owners.tolist()):
        override = locked_overrides[owner]
        expected = {k: float(v) for k, v in override["payload"].items() if k in DETAIL_FIELDS and v is not None}
        if reference is not None:
            for field_name in DETAIL_FIELDS:
                expected.setdefault(field_name, float(reference[field_name].iat[row]))
        for field_name, value in expected.items():
            actual = float(plan[field_name].iat[row])
            if abs(actual - value) > 1e-9:
                problems.append((override["key"], field_name, value, actual))
    return pd.DataFrame(problems, columns=cols)
