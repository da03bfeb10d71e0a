"""Data contracts shared by every planning stage.

All quantities are ``float64``; string keys are ``object`` (Python str) columns.
Row order matters: it is the natural order of each stage's output.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict, fields
from typing import Any

import pandas as pd

ROUND_MODES = ("none", "int", "dec1", "dec2")

#: The largest magnitude any planned quantity may have (demand, capacity, stock, order and
#: override quantities, lot sizes, costs). One trillion units keeps every sum the planner forms
#: (a family's demand over a 104-week horizon, a year of capacity) far inside float64's exact
#: integer range (2**53, about 9.0e15) and inside int64, so rounding to whole units stays exact
#: and no total overflows. Inputs, overrides and parameters beyond it are refused with a rule.
MAX_PLAN_QUANTITY = 1e12
LT_UNITS = ("day", "week")
BLEND_WEIGHT_MODES = ("tri", "lin", "quad")
CARRYOVER_MODES = ("none", "prev", "next", "auto", "both")
ANCHOR_POLICIES = ("DET_near", "AGG_far", "blend")
PRESETS = {
    "det_near": {"anchor_policy": "DET_near", "recon_window_days": 7},
    "agg_far": {"anchor_policy": "AGG_far", "recon_window_days": 7},
    "blend": {"anchor_policy": "blend", "recon_window_days": 14, "blend_weight_mode": "tri"},
}

# Column layout of each input table after parsing (file order kept, ``row_no`` = CSV line number).
INPUT_COLUMNS: dict[str, list[str]] = {
    "demand_family": ["family", "period", "demand"],
    "capacity": ["workcenter", "period", "capacity"],
    "mix_share": ["family", "sku", "share"],
    "item": ["item", "lt", "lot", "moq"],
    "inventory": ["item", "loc", "qty"],
    "open_po": ["item", "due", "qty"],
    "bom": ["parent", "child", "qty"],
    "period_cost": ["period", "cost"],
    "period_score": ["period", "score"],
}


def empty_frame(name: str) -> pd.DataFrame:
    cols = INPUT_COLUMNS[name]
    return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})


@dataclass
class PlanningInputs:
    """One input set, parsed. Every table keeps file row order.

    Text columns are ``object`` dtype holding ``str``; quantity columns are float64.
    ``calendar`` is the parsed ``planning_calendar.json`` document or ``None``.
    Optional tables that were absent are empty frames with the right columns.
    """

    demand_family: pd.DataFrame
    capacity: pd.DataFrame
    mix_share: pd.DataFrame
    item: pd.DataFrame = field(default_factory=lambda: empty_frame("item"))
    inventory: pd.DataFrame = field(default_factory=lambda: empty_frame("inventory"))
    open_po: pd.DataFrame = field(default_factory=lambda: empty_frame("open_po"))
    bom: pd.DataFrame = field(default_factory=lambda: empty_frame("bom"))
    period_cost: pd.DataFrame = field(default_factory=lambda: empty_frame("period_cost"))
    period_score: pd.DataFrame = field(default_factory=lambda: empty_frame("period_score"))
    calendar: dict | None = None

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


@dataclass(frozen=True)
class PlanningParameters:
    """Every planning parameter of the reference driver, as a version parameter.

    Defaults are the reference driver's. ``preset`` is resolved by :meth:`resolved`:
    it fills only the fields left at ``None``.
    """

    round_mode: str = "int"
    lt_unit: str = "day"
    week_days: int = 7
    fallback_weeks: int = 4
    cutover_date: str | None = None
    recon_window_days: int | None = None
    anchor_policy: str | None = None
    preset: str | None = None
    blend_split_next: float | None = None
    blend_weight_mode: str = "tri"
    apply_adjusted: bool = False
    max_adjust_ratio: float | None = None
    carryover: str = "none"
    carryover_split: float | None = None
    tol_abs: float = 1e-6
    tol_rel: float = 1e-6

    def resolved(self) -> "PlanningParameters":
        if not self.preset:
            return self
        fill = PRESETS[self.preset]
        changes = {k: v for k, v in fill.items() if getattr(self, k) in (None,)}
        data = asdict(self)
        data.update(changes)
        return PlanningParameters(**data)

    @property
    def has_anchor_branch(self) -> bool:
        """The anchor branch runs only with both an anchor policy and a cutover date."""
        p = self.resolved()
        return bool(p.anchor_policy) and bool(p.cutover_date)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlanningParameters":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown planning parameter(s): {', '.join(unknown)}")
        return cls(**data)
