"""Materialization metadata for people: what a planner reads in the Dagster UI.

* Fractions are shown as percent: :func:`percent` gives ``<name>_percent`` (a float the UI can
  plot, 92.46) and ``<name>`` (the text "92.5 %").
* Quantities carry their unit in the name (``..._units``, ``..._weeks``).
* Plan frames are previewed as Dagster tables (:func:`table_preview`, first ``PREVIEW_ROWS``
  rows) with a ``dagster/column_schema`` (:func:`column_schema`) whose column descriptions come
  from one home, :data:`plan_pipeline.planning.vocabulary.COLUMN_DESCRIPTIONS`.
* Per-family (and per-month, per-resource) summary tables where a stage has the data.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from plan_pipeline.planning.keys import isin_keys
from plan_pipeline.planning.report import fill_rate
from plan_pipeline.planning.vocabulary import COLUMN_DESCRIPTIONS

COLUMN_SCHEMA = "dagster/column_schema"
PREVIEW_ROWS = 20


def percent_text(fraction: float) -> str:
    """0.9246 -> '92.5 %'."""
    return f"{100.0 * fraction:.1f} %"


def percent(name: str, fraction: float) -> dict[str, dg.MetadataValue]:
    """A fraction as ``<name>_percent`` (float, 2 decimals, plottable) and ``<name>`` (text '92.5 %')."""
    return {
        f"{name}_percent": dg.MetadataValue.float(round(100.0 * float(fraction), 2)),
        name: dg.MetadataValue.text(percent_text(float(fraction))),
    }


def units(name: str, value: float, unit: str = "units") -> dict[str, dg.MetadataValue]:
    """A quantity with its unit in the name: ``<name>_units``."""
    return {f"{name}_{unit}": dg.MetadataValue.float(float(value))}


def _column_type(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def column_schema(frame: pd.DataFrame, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    """The frame's columns with their types and descriptions (``COLUMN_DESCRIPTIONS`` unless given)."""
    descriptions = COLUMN_DESCRIPTIONS if descriptions is None else descriptions
    return dg.TableSchema(columns=[
        dg.TableColumn(name=str(name), type=_column_type(dtype), description=descriptions.get(str(name)))
        for name, dtype in frame.dtypes.items()
    ])


def _cell(value: Any) -> Any:
    """A table cell: Python scalars, ``None`` for missing values, floats to 6 significant decimals."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    return str(value)


def table(frame: pd.DataFrame, schema: dg.TableSchema | None = None) -> dg.MetadataValue:
    """Every row of ``frame`` as a Dagster table (keep it small: summaries and previews)."""
    schema = schema or column_schema(frame)
    names = [str(c) for c in frame.columns]
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    records = [dg.TableRecord(dict(zip(names, (_cell(v) for v in row)))) for row in zip(*columns)]
    return dg.MetadataValue.table(records=records, schema=schema)


def table_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dict[str, dg.MetadataValue]:
    """``preview`` (the first ``rows`` rows as a table) and the frame's ``dagster/column_schema``."""
    schema = column_schema(frame)
    return {"preview": table(frame.head(rows), schema), COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema)}


# ---------------------------------------------------------------------------------------- summaries
def _fill_rates(demand: np.ndarray, supply: np.ndarray) -> list[float]:
    return [round(100.0 * fill_rate(float(d), float(s)), 2) for d, s in zip(demand, supply)]


SUMMARY_DESCRIPTIONS = {
    **COLUMN_DESCRIPTIONS,
    "demand_units": "Demand over the horizon (units)",
    "supply_units": "Planned supply over the horizon (units)",
    "backlog_units": "Unmet demand over the horizon (units)",
    "fill_rate_percent": "Supply / demand, capped at 100 % (percent)",
    "original_load_units": "Finished-good release load before leveling (units)",
    "leveled_load_units": "Finished-good release load after leveling (units)",
    "load_share_percent": "Share of the total load before leveling (percent)",
    "workcenter": "Workcenter (resource) of the capacity input",
    "capacity_units": "Capacity over the horizon (units)",
    "capacity_share_percent": "Share of the pooled capacity (percent)",
}


def _summary(frame: pd.DataFrame) -> dg.MetadataValue:
    return table(frame, column_schema(frame, SUMMARY_DESCRIPTIONS))


def family_supply_summary(aggregate: pd.DataFrame) -> dg.MetadataValue:
    """Per family over the horizon: demand, supply, backlog (units) and fill rate (percent)."""
    sums = aggregate.groupby("family", sort=True)[["demand", "supply", "backlog"]].sum()
    frame = pd.DataFrame({
        "family": sums.index.astype(str),
        "demand_units": sums["demand"].to_numpy(float),
        "supply_units": sums["supply"].to_numpy(float),
        "backlog_units": sums["backlog"].to_numpy(float),
        "fill_rate_percent": _fill_rates(sums["demand"].to_numpy(), sums["supply"].to_numpy()),
    })
    return _summary(frame)


def period_supply_summary(aggregate: pd.DataFrame) -> pd.DataFrame:
    """Per period (all families): demand, supply, backlog (units) and fill rate (percent)."""
    sums = aggregate.groupby("period", sort=True)[["demand", "supply", "backlog"]].sum()
    return pd.DataFrame({
        "period": sums.index.astype(str),
        "demand_units": sums["demand"].to_numpy(float),
        "supply_units": sums["supply"].to_numpy(float),
        "backlog_units": sums["backlog"].to_numpy(float),
        "fill_rate_percent": _fill_rates(sums["demand"].to_numpy(), sums["supply"].to_numpy()),
    })


def family_load_summary(rows: pd.DataFrame, mix_share: pd.DataFrame, fg_items: Sequence[str]) -> dg.MetadataValue:
    """Per family: finished-good release load before and after leveling (units) and its share (percent)."""
    families = dict(zip(mix_share["sku"].astype(str), mix_share["family"].astype(str))) if len(mix_share) else {}
    fg = isin_keys(rows["item"], set(fg_items), as_text=True)
    family = pd.Series(rows["item"].to_numpy()[fg], dtype=object).astype(str).to_numpy()
    loads = pd.DataFrame({
        "family": pd.Series(family).map(families).fillna("(no family)").to_numpy(),
        "original": rows["planned_order_release"].to_numpy(float)[fg],
        "leveled": rows["planned_order_release_adj"].to_numpy(float)[fg],
    }).groupby("family", sort=True).sum()
    total = float(loads["original"].sum())
    frame = pd.DataFrame({
        "family": loads.index.astype(str),
        "original_load_units": loads["original"].to_numpy(float),
        "leveled_load_units": loads["leveled"].to_numpy(float),
        "load_share_percent": np.round(100.0 * loads["original"].to_numpy(float) / total, 2) if total else 0.0,
    })
    return _summary(frame)


def resource_capacity_summary(capacity: pd.DataFrame) -> dg.MetadataValue:
    """Per workcenter: capacity over the horizon (units) and its share of the pooled capacity (percent)."""
    sums = capacity.groupby("workcenter", sort=True)["capacity"].sum()
    total = float(sums.sum())
    frame = pd.DataFrame({
        "workcenter": sums.index.astype(str),
        "capacity_units": sums.to_numpy(float),
        "capacity_share_percent": np.round(100.0 * sums.to_numpy(float) / total, 2) if total else 0.0,
    })
    return _summary(frame)


def monthly_kpi_table(kpis: pd.DataFrame) -> dg.MetadataValue:
    """The plan KPIs per month: fill rate (percent) and backlog (units)."""
    months = kpis[kpis["bucket_type"] == "month"]
    wide = months.pivot(index="bucket_key", columns="metric", values="value").sort_index()
    frame = pd.DataFrame({
        "period": wide.index.astype(str),
        "fill_rate_percent": np.round(100.0 * wide["fill_rate"].to_numpy(float), 2) if len(wide) else [],
        "backlog_units": wide["backlog_total"].to_numpy(float) if len(wide) else [],
    })
    return _summary(frame)


def kpi_totals(kpis: pd.DataFrame, prefix: str = "kpi/") -> dict[str, dg.MetadataValue]:
    """The horizon-total plan KPIs: ratios as percent, quantities with their unit in the name."""
    meta: dict[str, dg.MetadataValue] = {}
    totals = kpis[kpis["bucket_type"] == "total"]
    if "category" in totals.columns:
        totals = totals[totals["category"] == "plan"]
    for metric, value, unit in zip(totals["metric"], totals["value"], totals["unit"]):
        name = f"{prefix}{metric}"
        meta.update(percent(name, float(value)) if unit == "ratio" else units(name, float(value), str(unit)))
    return meta


PUBLISHED_LEVEL_DESCRIPTIONS = {
    "level": "Plan level (plan_series / plan_kpis)",
    "asset": "The stage asset that writes the level",
    "rows": "Rows published at the level",
    "state": "published, or not applicable to this version (no rows)",
}


def published_levels_table(levels: Mapping[str, int], not_applicable: Sequence[str],
                           level_assets: Mapping[str, dg.AssetKey]) -> dict[str, dg.MetadataValue]:
    """``published_levels``: one row per plan level of the published plan, and its column schema."""
    names = sorted(set(levels) | set(not_applicable))
    frame = pd.DataFrame({
        "level": names,
        "asset": [level_assets[n].to_user_string() if n in level_assets else "" for n in names],
        "rows": [int(levels.get(n, 0)) for n in names],
        "state": ["not applicable" if n in not_applicable and n not in levels else "published" for n in names],
    })
    schema = column_schema(frame, PUBLISHED_LEVEL_DESCRIPTIONS)
    return {"published_levels": table(frame, schema), COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema)}
