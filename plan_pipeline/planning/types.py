"""Data contracts shared by every planning stage.

All quantities are ``float64``; string keys are ``object`` (Python str) columns.
Row order matters: it is the natural order of each stage's output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# The shared vocabulary and the parameter model live in ``vocabulary`` and ``parameters``;
# they are re-exported here for the many call sites that import the data contracts from one place.
from plan_pipeline.planning.parameters import PlanningParameters  # noqa: F401
from plan_pipeline.planning.vocabulary import MAX_PLAN_QUANTITY, PRESETS  # noqa: F401

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

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
    import pandas as pd

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
