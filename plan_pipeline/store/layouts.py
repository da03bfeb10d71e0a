"""How each plan level's DataFrame maps onto the long ``plan_series`` table.

A layout names the DataFrame columns that become the row key (bucket, period,
item, family) and the measure columns of ``plan_series``; every other column
goes into ``extra_json``. The DataFrame's own column list and dtypes are kept in
``plan_levels`` (per version, level and run) so a read returns exactly the frame that was written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas only where a frame is inspected: the level names stay light (CLI --help)
    import pandas as pd


@dataclass(frozen=True)
class SeriesLayout:
    level: str
    bucket_type: str  # "month" | "week" | "auto" (derived from the key's shape)
    bucket_key: str  # DataFrame column
    item_key: str | None = None  # DataFrame column
    item_const: str | None = None  # constant item key when the frame has no item column
    period_key: str | None = None
    family_key: str | None = None
    zone: str | None = None
    window_index: str | None = None
    # (plan_series column, DataFrame column); a DataFrame column may feed several.
    measures: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    source: str | None = None
    # DataFrame columns that always equal another one (e.g. MRP ``sku`` = ``item``): not stored
    aliases: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # DataFrame columns of ``measures`` a frame may lack (stored as NULL, absent on read)
    optional: tuple[str, ...] = field(default_factory=tuple)

    def key_columns(self) -> list[str]:
        cols = [self.bucket_key, self.item_key, self.period_key, self.family_key]
        return [c for c in cols if c]


_DET: dict[str, Any] = dict(
    bucket_type="week",
    bucket_key="week",
    item_key="sku",
    period_key="period",
    family_key="family",
    measures=(("demand", "demand"), ("supply", "supply"), ("backlog", "backlog"), ("supply_plan", "supply_plan")),
    optional=("supply_plan",),
    source="detail",
)
# MRP levels keep every field in typed columns (no JSON): they are the largest levels.
_MRP_ITEM_FIELDS = (
    ("scheduled_receipts", "scheduled_receipts"),
    ("lot_size", "lot"),
    ("min_order_qty", "moq"),
    ("lead_time_weeks", "lt_weeks"),
)
_MRP: dict[str, Any] = dict(
    bucket_type="week",
    bucket_key="week",
    item_key="item",
    measures=(
        ("demand", "gross_req"),
        ("supply", "planned_order_receipt"),
        ("backlog", "net_req"),
        ("inventory_open", "on_hand_start"),
        ("inventory_close", "on_hand_end"),
        ("prod_qty", "planned_order_release"),
        *_MRP_ITEM_FIELDS,
    ),
    aliases=(("sku", "item"),),
    source="mrp",
)
_MRP_FINAL: dict[str, Any] = dict(
    bucket_type="week",
    bucket_key="week",
    item_key="item",
    measures=(
        ("demand", "gross_req"),
        ("supply", "planned_order_receipt_adj"),
        ("backlog", "net_req"),
        ("inventory_open", "on_hand_start"),
        ("inventory_close", "on_hand_end"),
        ("prod_qty", "planned_order_release_adj"),
        ("planned_receipt", "planned_order_receipt"),
        ("planned_release", "planned_order_release"),
        *_MRP_ITEM_FIELDS,
    ),
    aliases=(("sku", "item"),),
    source="capacity",
)
_WEEKLY: dict[str, Any] = dict(
    bucket_type="week",
    bucket_key="week",
    item_const="summary",
    zone="zone",
    window_index="boundary_index",
    measures=(
        ("demand", "original_load"),
        ("supply", "adjusted_load"),
        ("backlog", "spill_out"),
        ("capacity_used", "capacity"),
        ("spill_in", "spill_in"),
        ("spill_out", "spill_out"),
    ),
    source="capacity",
)
_RECON: dict[str, Any] = dict(
    bucket_type="auto",
    bucket_key="period",
    item_key="family",
    family_key="family",
    measures=(
        ("demand", "det_demand"),
        ("supply", "det_supply"),
        ("backlog", "det_backlog"),
        ("adjustment", "delta_demand"),
    ),
    source="level_reconciliation",
)

LAYOUTS: dict[str, SeriesLayout] = {
    "aggregate": SeriesLayout(
        level="aggregate",
        bucket_type="auto",
        bucket_key="period",
        item_key="family",
        period_key="period",
        family_key="family",
        measures=(
            ("demand", "demand"),
            ("supply", "supply"),
            ("backlog", "backlog"),
            ("capacity_used", "capacity_total"),
        ),
        source="aggregate",
    ),
    "det": SeriesLayout(level="det", **_DET),
    "det_adjusted": SeriesLayout(level="det_adjusted", **{**_DET, "source": "anchor"}),
    "mrp": SeriesLayout(level="mrp", **_MRP),
    "mrp_adjusted": SeriesLayout(level="mrp_adjusted", **_MRP),
    "mrp_final": SeriesLayout(level="mrp_final", **_MRP_FINAL),
    "mrp_final_adjusted": SeriesLayout(level="mrp_final_adjusted", **_MRP_FINAL),
    "weekly_summary": SeriesLayout(level="weekly_summary", **_WEEKLY),
    "weekly_summary_adjusted": SeriesLayout(level="weekly_summary_adjusted", **_WEEKLY),
    "level_reconciliation": SeriesLayout(level="level_reconciliation", **_RECON),
    "level_reconciliation_adjusted": SeriesLayout(level="level_reconciliation_adjusted", **_RECON),
    "carryover": SeriesLayout(
        level="carryover",
        bucket_type="auto",
        bucket_key="from_period",
        period_key="to_period",
        item_key="family",
        family_key="family",
        measures=(("demand", "delta_demand"), ("supply", "delta_supply"), ("backlog", "delta_backlog")),
        source="anchor",
    ),
}


def layout_for(level: str) -> SeriesLayout:
    try:
        return LAYOUTS[level]
    except KeyError:
        raise KeyError(f"unknown plan level {level!r}; known levels: {', '.join(sorted(LAYOUTS))}") from None


def dtype_tag(series: pd.Series) -> str:
    import pandas as pd

    kind = series.dtype.kind
    if str(series.dtype) == "boolean" or kind == "b":
        return "bool"
    if kind in "iu" or str(series.dtype) in ("Int64", "Int32"):
        return "int"
    if kind == "f":
        return "float"
    if kind == "O" and _first_present_is_bool(series) and pd.api.types.infer_dtype(series, skipna=True) == "boolean":
        return "bool"
    return "str"


def _first_present_is_bool(series: pd.Series) -> bool:
    """The first non-missing value of an object column is a bool: ``infer_dtype`` can only say
    "boolean" then, so a text column (the item and week keys of every level) is told apart at
    its first value instead of by a scan of every row (1.6 s per 50,000-SKU plan)."""
    import numpy as np
    import pandas as pd

    for value in series.to_numpy(dtype=object, copy=False):
        if not (pd.api.types.is_scalar(value) and pd.isna(value)):  # a list is a value, not missing
            return isinstance(value, bool | np.bool_)
    return False
