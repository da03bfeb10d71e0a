"""The PSI grid of the web view: one family's slice of the detail plan shaped for a table.

Rows are SKU x measure (demand, supply, backlog), columns the plan's week fragments (a week
shared by two months is two columns, one per month, like the detail plan's rows). Every cell
carries the plan value, the override key of its SKU-week row (``det:week=W,sku=S`` with
``,period=P`` only for a shared week: the key :func:`plan_pipeline.planning.overrides.detail_key`
builds), the override value of its field if one is recorded, and the row's lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.overrides import DETAIL_FIELDS, detail_key, parse_detail_key

if TYPE_CHECKING:
    import pandas

#: The measures of each SKU, top to bottom (all three are override fields).
GRID_MEASURES = DETAIL_FIELDS
#: The measures the grid offers a form for (backlog follows demand - supply at the re-plan).
EDITABLE_MEASURES = ("demand", "supply")


@dataclass(frozen=True)
class GridColumn:
    week: str
    period: str
    shared: bool  # the week has fragments in two months (the header names the month)


@dataclass(frozen=True)
class GridCell:
    value: float | None  # None: the SKU has no row in this column
    key: str
    override: float | None = None  # this field's override value, if one is recorded
    locked: bool = False

    @property
    def display(self) -> str:
        return "" if self.value is None else format_quantity(self.value)


@dataclass
class GridRow:
    sku: str
    measure: str
    cells: list[GridCell] = field(default_factory=list)


@dataclass
class PsiGrid:
    family: str
    columns: list[GridColumn]
    rows: list[GridRow]


def format_quantity(value: float) -> str:
    """Whole numbers without decimals, others with two (thousands separated)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def input_value(value: float | None) -> str:
    """A quantity as a form field shows it (no separators; exact for plan quantities)."""
    if value is None:
        return ""
    return f"{value:.0f}" if float(value).is_integer() else repr(float(value))


def _override_index(overrides: list[dict[str, Any]]) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    index = {}
    for override in overrides:
        week, sku, period = parse_detail_key(override["key"])
        index[(sku, week, period)] = override
    return index


def build_grid(family: str, rows: pandas.DataFrame, overrides: list[dict[str, Any]]) -> PsiGrid:
    """The grid of ``rows`` (``store.web_view.family_detail_rows``: one family's detail rows in
    plan order) with the ``overrides`` of its SKUs (``store.web_view.sku_overrides``)."""
    import numpy as np
    import pandas as pd

    if rows.empty:
        return PsiGrid(family, [], [])
    rows = rows.assign(week=rows["week"].astype(str), period=rows["period"].astype(str), sku=rows["sku"].astype(str))
    # columns: week fragments by month, then by the plan's order inside the month
    first = rows.reset_index(drop=True).assign(_seq=np.arange(len(rows)))
    order = first.groupby(["period", "week"], sort=False)["_seq"].min().reset_index()
    order = order.sort_values(["period", "_seq"], kind="stable")
    per_week = order.groupby("week")["period"].transform("size").to_numpy()
    columns = [GridColumn(w, p, bool(n > 1)) for w, p, n in zip(order["week"], order["period"], per_week)]
    # a SKU-week with two month fragments needs the period in its override key
    fragments = rows.groupby(["sku", "week"])["period"].transform("size").to_numpy()
    skus = sorted(rows["sku"].unique())
    # dense SKU x column arrays, filled column-wise
    sku_pos = pd.Series(np.arange(len(skus)), index=skus)[rows["sku"]].to_numpy()
    col_pos = pd.Series(np.arange(len(columns)), index=pd.MultiIndex.from_arrays(
        [[c.period for c in columns], [c.week for c in columns]]))[
        pd.MultiIndex.from_arrays([rows["period"], rows["week"]])].to_numpy()
    shape = (len(skus), len(columns))
    present = np.zeros(shape, dtype=bool)
    present[sku_pos, col_pos] = True
    shared = np.zeros(shape, dtype=bool)
    shared[sku_pos, col_pos] = fragments > 1
    values = {}
    for measure in GRID_MEASURES:
        grid = np.full(shape, np.nan)
        grid[sku_pos, col_pos] = rows[measure].to_numpy(dtype="float64")
        values[measure] = grid.tolist()
    present_l, shared_l = present.tolist(), shared.tolist()
    index = _override_index(overrides)
    grid_rows: list[GridRow] = []
    for i, sku in enumerate(skus):
        per_measure: dict[str, list[GridCell]] = {m: [] for m in GRID_MEASURES}
        for j, column in enumerate(columns):
            is_shared = shared_l[i][j] if present_l[i][j] else column.shared
            period = column.period if is_shared else None
            key = detail_key(column.week, sku, period)
            override = index.get((sku, column.week, period))
            if override is None and period is None:
                override = index.get((sku, column.week, column.period))
            payload = override["payload"] if override else {}
            locked = bool(override and override["locked"])
            for measure in GRID_MEASURES:
                value = values[measure][i][j] if present_l[i][j] else None
                per_measure[measure].append(GridCell(value, key, payload.get(measure), locked))
        grid_rows.extend(GridRow(sku, m, per_measure[m]) for m in GRID_MEASURES)
    return PsiGrid(family, columns, grid_rows)
