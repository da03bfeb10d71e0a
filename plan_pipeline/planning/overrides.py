"""Planner overrides of the aggregate and detail plans: keys, application, the lock laws (pure).

An override belongs to one grain (``level`` in ``plan_overrides``): ``agg`` (family x period of
the aggregate plan) or ``det`` (SKU x week of the detail plan). Both set ``demand``, ``supply``
and/or ``backlog``; a lock pins the cell.

An aggregate override targets one family x period: ``agg:period=<period>,family=<family>``.
Its ``demand`` replaces the family's demand of that period *before* the capacity rationing
(:func:`aggregate_demand_inputs`: the plan is recomputed with it, so supply and backlog
follow); its ``supply`` / ``backlog`` are pinned on the rationed result
(:func:`apply_aggregate_overrides`; ``backlog = max(0, demand - supply)`` unless the backlog is
given). The detail plan disaggregates the edited aggregate, so the SKU x week rows of that
family and period follow it. A pinned supply may exceed the period's capacity or the
demand: the aggregate checks report such periods instead of judging them. Nothing after the
aggregate stage changes aggregate cells, so an aggregate lock is recorded and shown but pins
nothing more today.

A detail override targets one SKU x week row: ``det:week=<week>,sku=<sku>`` (the reference's
readable key), with ``,period=<period>`` added when the week is shared by two months and the
edit is meant for one fragment. Its payload sets ``demand``, ``supply`` and/or ``backlog``;
``supply_plan`` follows ``supply``, and an edit of demand or supply without an explicit
backlog recomputes ``backlog = max(0, demand - supply)``. A lock pins the row: later stages
(the anchor correction) must leave it as it is.

Whatever records an override (the CLI, the store, an API) checks it here first:
:func:`detail_key` / :func:`check_detail_key` for the key, :func:`validate_override_payload`
for the values. A refused override raises :class:`OverrideError` (a ``ValueError``).
"""
from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.vocabulary import MAX_PLAN_QUANTITY

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import numpy as np
    import pandas as pd

DETAIL_FIELDS = ("demand", "supply", "backlog")
AGGREGATE_FIELDS = ("demand", "supply", "backlog")
#: The grains an override may target (``plan_overrides.level``) and the fields each one sets.
OVERRIDE_LEVELS: dict[str, tuple[str, ...]] = {"agg": AGGREGATE_FIELDS, "det": DETAIL_FIELDS}
#: The longest week, SKU or period an override key may name.
MAX_KEY_PART_LENGTH = 200
_KEY_RE = re.compile(r"^det:week=(?P<week>[^,]+),sku=(?P<sku>[^,]+)(?:,period=(?P<period>[^,]+))?$")
_AGG_KEY_RE = re.compile(r"^agg:period=(?P<period>[^,]+),family=(?P<family>[^,]+)$")


class OverrideError(ValueError):
    """An override key or value that cannot be recorded; the message says which rule it breaks."""


def _check_key_part(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OverrideError(f"override {name} {value!r} must be text")
    if not value.strip():
        raise OverrideError(f"override {name} {value!r} must not be empty")
    if "," in value or "=" in value:
        raise OverrideError(f"override {name} {value!r} must not contain ',' or '=' (they separate the key's parts)")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise OverrideError(f"override {name} {value!r} must not contain control characters")
    if value != value.strip():
        raise OverrideError(f"override {name} {value!r} must not start or end with spaces")
    if len(value) > MAX_KEY_PART_LENGTH:
        raise OverrideError(f"override {name} is {len(value)} characters long; at most {MAX_KEY_PART_LENGTH} are allowed")
    return value


def detail_key(week: str, sku: str, period: str | None = None) -> str:
    """``det:week=W,sku=S[,period=P]``; raises OverrideError for a part the key cannot hold."""
    for name, value in (("week", week), ("sku", sku), ("period", period)):
        if value is not None or name != "period":
            _check_key_part(name, value)
    key = f"det:week={week},sku={sku}"
    return key + (f",period={period}" if period is not None else "")


def parse_detail_key(key: str) -> tuple[str, str, str | None]:
    match = _KEY_RE.match(key)
    if not match:
        raise ValueError(f"not a detail override key: {key!r} (expected det:week=W,sku=S[,period=P])")
    return match["week"], match["sku"], match["period"]


def check_detail_key(key: str) -> str:
    """Return ``key`` when it is a detail key :func:`detail_key` could have built, else raise OverrideError."""
    if not isinstance(key, str):
        raise OverrideError(f"override key {key!r} must be text")
    try:
        parts = parse_detail_key(key)
    except ValueError as exc:
        raise OverrideError(str(exc)) from None
    detail_key(*parts)
    return key


def aggregate_key(period: str, family: str) -> str:
    """``agg:period=P,family=F``; raises OverrideError for a part the key cannot hold."""
    _check_key_part("period", period)
    _check_key_part("family", family)
    return f"agg:period={period},family={family}"


def parse_aggregate_key(key: str) -> tuple[str, str]:
    """``(period, family)`` of an aggregate key."""
    match = _AGG_KEY_RE.match(key)
    if not match:
        raise ValueError(f"not an aggregate override key: {key!r} (expected agg:period=P,family=F)")
    return match["period"], match["family"]


def check_override_key(level: str, key: str) -> str:
    """Return ``key`` when it is a key of ``level`` (``agg`` or ``det``) the key builders could
    have made, else raise OverrideError."""
    if level not in OVERRIDE_LEVELS:
        raise OverrideError(f"override level {level!r} is not one of {', '.join(OVERRIDE_LEVELS)}")
    if level == "det":
        return check_detail_key(key)
    if not isinstance(key, str):
        raise OverrideError(f"override key {key!r} must be text")
    try:
        aggregate_key(*parse_aggregate_key(key))
    except ValueError as exc:
        raise OverrideError(str(exc)) from None
    return key


def validate_override_payload(payload: Mapping[str, Any], level: str = "det") -> dict[str, float | None]:
    """Check an override's values; return them as floats (``None`` kept: it removes a field).

    Every field must be one of the level's fields (``demand``, ``supply``, ``backlog``); every
    value a real, finite number from 0 to ``MAX_PLAN_QUANTITY``. All problems are reported in
    one OverrideError.
    """
    if not isinstance(payload, Mapping):
        raise OverrideError(f"override values must be a mapping of field -> number, got {type(payload).__name__}")
    fields = OVERRIDE_LEVELS.get(level, DETAIL_FIELDS)
    problems: list[str] = []
    clean: dict[str, float | None] = {}
    for name, value in payload.items():
        if name not in fields:
            problems.append(f"{name!r} is not an override field (one of {', '.join(fields)})")
        elif value is None:
            clean[name] = None
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            problems.append(f"{name} {value!r} is not a number")
        elif not math.isfinite(value):
            problems.append(f"{name} {value!r} is not a finite number")
        elif float(value) < 0:
            problems.append(f"{name} {value!r} must not be negative")
        elif float(value) > MAX_PLAN_QUANTITY:
            problems.append(f"{name} {value!r} is larger than the largest plan quantity {MAX_PLAN_QUANTITY:g}")
        else:
            clean[name] = float(value) + 0.0  # -0.0 becomes 0.0
    if problems:
        raise OverrideError("override refused: " + "; ".join(problems))
    return clean


@dataclass
class AppliedOverrides:
    frame: pd.DataFrame  # the detail plan with the edits applied
    edited: np.ndarray  # bool per row: some value was set by an override
    locked: np.ndarray  # bool per row: the row is locked
    problems: pd.DataFrame  # overrides that match no row, or a shared week without period


def _match(detail: pd.DataFrame, overrides: list[dict]):
    """(row index array, override index array) of every override -> detail row match, + problems."""
    import numpy as np
    import pandas as pd

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
    import numpy as np
    import pandas as pd

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
    import pandas as pd

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


def _aggregate_positions(frame: pd.DataFrame, overrides: list[dict]):
    """Per override (in order): the row positions of its (family, period) in ``frame``."""
    import numpy as np

    families = frame["family"].astype(str).to_numpy()
    periods = frame["period"].astype(str).to_numpy()
    groups: dict[tuple[str, str], list[int]] = {}
    wanted = set()
    parsed = []
    for override in overrides:
        period, family = parse_aggregate_key(override["key"])
        parsed.append((family, period))
        wanted.add((family, period))
    for i in np.flatnonzero(np.isin(families, [f for f, _ in wanted]) & np.isin(periods, [p for _, p in wanted])):
        cell = (families[i], periods[i])
        if cell in wanted:
            groups.setdefault(cell, []).append(int(i))
    return [np.asarray(groups.get(cell, []), dtype=np.int64) for cell in parsed]


def aggregate_demand_inputs(demand_family: pd.DataFrame, overrides: list[dict]) -> tuple[pd.DataFrame, list[tuple]]:
    """The aggregate stage's family demand with the ``demand`` of aggregate overrides applied.

    An edited (family, period) keeps its input rows (their order, so the rationing and the
    rounding see the same row order) with the edited total on its first row and 0 on the others.
    Returns ``(frame, problems)``; without a demand edit the input frame itself (unchanged)."""
    edits = [o for o in overrides if o["payload"].get("demand") is not None]
    if not edits or demand_family.empty:
        return demand_family, [(o["key"], "matches no row of the family demand") for o in edits]
    import numpy as np

    frame = demand_family.copy()
    values = frame["demand"].to_numpy(dtype=np.float64, copy=True)
    problems = []
    for override, rows in zip(edits, _aggregate_positions(frame, edits)):
        if len(rows) == 0:
            problems.append((override["key"], "matches no row of the family demand"))
            continue
        values[rows] = 0.0
        values[rows[0]] = float(override["payload"]["demand"])
    frame["demand"] = values
    return frame, problems


def apply_aggregate_overrides(aggregate: pd.DataFrame, overrides: list[dict]) -> AppliedOverrides:
    """Pin the ``supply`` / ``backlog`` of aggregate overrides (oldest first) on a rationed aggregate
    plan; ``backlog = max(0, demand - supply)`` unless the backlog is edited. ``edited`` marks the
    rows with a pinned value (their periods are not judged by the rationing checks), ``locked``
    the locked rows. A demand edit is applied to the stage's input (:func:`aggregate_demand_inputs`)."""
    import numpy as np
    import pandas as pd

    n = len(aggregate)
    edited = np.zeros(n, dtype=bool)
    locked = np.zeros(n, dtype=bool)
    problem_cols = ["key", "problem"]
    if not overrides:
        frame = aggregate.copy(deep=False)
        frame.index = pd.RangeIndex(n)
        return AppliedOverrides(frame, edited, locked, pd.DataFrame(columns=problem_cols))
    frame = aggregate.reset_index(drop=True).copy()
    values = {f: frame[f].to_numpy(dtype=np.float64, copy=True) for f in AGGREGATE_FIELDS}
    problems = []
    for override, rows in zip(overrides, _aggregate_positions(frame, overrides)):
        if len(rows) == 0:
            problems.append((override["key"], "matches no row of the aggregate plan"))
            continue
        if override.get("locked"):
            locked[rows] = True
        pinned = {k: float(v) for k, v in override["payload"].items()
                  if k in ("supply", "backlog") and v is not None}
        if not pinned:
            continue
        for field_name, value in pinned.items():
            values[field_name][rows] = value
        if "backlog" not in pinned:
            values["backlog"][rows] = np.maximum(0.0, values["demand"][rows] - values["supply"][rows])
        edited[rows] = True
    for field_name in ("supply", "backlog"):
        frame[field_name] = values[field_name]
    return AppliedOverrides(frame, edited, locked, pd.DataFrame(problems, columns=problem_cols))
