"""``plan_scorecard``: the seven KPIs of the final plan (``docs/kpis.md``), staged in ``plan_kpis``
at level ``scorecard`` (category ``scorecard``) and published with the rest of the plan.

The final plan is the anchored one where the version applies its anchored branch (the adjusted
capacity plan exists), else the plain chain's: the detail plan after the planners' edits, its
capacity-leveled MRP rows and weekly summary. The KPIs themselves are computed by the pure
:func:`plan_pipeline.planning.kpis.scorecard_kpis`.

What a planner sees in the UI: the seven horizon totals as numeric metadata
(``scorecard/<kpi>``, plotted across versions in the asset's Plots tab) with a readable
``scorecard/<kpi>_display`` text, the KPIs per family, and the ten SKUs with the lowest fill rate.
"""
from typing import Any

import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.assets.anchor_branch import ANCHORED_CHAIN
from plan_pipeline.orchestration.plan.assets.common import stage_asset_args, step_order_tags
from plan_pipeline.orchestration.plan.io_managers import (
    DEFERRED_UNLESS_TAG,
    DeferredPlanFrame,
    VersionPlanInputs,
    resolve_frame,
)
from plan_pipeline.orchestration.plan.planner_metadata import column_schema, table
from plan_pipeline.planning.kpis import format_kpi, scorecard_kpis, scorecard_totals, sku_families
from plan_pipeline.planning.vocabulary import SCORECARD_KPIS, SCORECARD_LEVEL

#: Metadata key prefix of the scorecard totals.
SCORECARD_PREFIX = "scorecard/"
#: How many SKUs the "lowest fill rate" table lists.
WORST_SKUS = 10

_DESCRIPTIONS = {
    "family": "Product family",
    "sku": "Stock keeping unit (a finished good)",
    **{k.name: f"{k.label} ({k.unit}): {k.meaning}" for k in SCORECARD_KPIS},
}


def scorecard_metadata(kpis: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """``scorecard/<kpi>`` (float, the stored value) and ``scorecard/<kpi>_display`` (text) of each KPI
    the plan defines in total (an undefined KPI, e.g. turns without stock, has neither)."""
    meta: dict[str, dg.MetadataValue] = {}
    for name, value, unit in scorecard_totals(kpis):
        meta[f"{SCORECARD_PREFIX}{name}"] = dg.MetadataValue.float(value)
        meta[f"{SCORECARD_PREFIX}{name}_display"] = dg.MetadataValue.text(format_kpi(unit, value))
    return meta


def _wide(kpis: pd.DataFrame, bucket_type: str, key: str) -> pd.DataFrame:
    """The KPIs of one bucket type as one row per bucket (KPIs the bucket type lacks are left out)."""
    rows = kpis[kpis["bucket_type"] == bucket_type]
    wide = rows.pivot(index="bucket_key", columns="metric", values="value")
    columns = [k.name for k in SCORECARD_KPIS if k.name in wide.columns]
    wide = wide[columns].sort_index()
    wide.index = wide.index.astype(str)
    return wide.rename_axis(key).reset_index()


def family_table(kpis: pd.DataFrame) -> dg.MetadataValue:
    """The scorecard per family."""
    frame = _wide(kpis, "family", "family")
    return table(frame, column_schema(frame, _DESCRIPTIONS))


def worst_skus_table(kpis: pd.DataFrame, families: dict[str, str], count: int = WORST_SKUS) -> dg.MetadataValue:
    """The ``count`` SKUs with the lowest fill rate (ties by SKU), with their family and scorecard."""
    frame = _wide(kpis, "sku", "sku")
    if "fill_rate" in frame.columns:
        frame = frame.sort_values(["fill_rate", "sku"], kind="stable")
    frame = frame.head(count)
    frame.insert(1, "family", frame["sku"].map(families).fillna("").astype(str))
    return table(frame.reset_index(drop=True), column_schema(frame, _DESCRIPTIONS))


def final_plan(plain: tuple[Any, Any, Any], anchored: tuple[Any, Any, Any]) -> tuple[tuple[Any, Any, Any], str]:
    """(detail, capacity rows, weekly summary) of the final plan and which chain it is."""
    if all(frame is not None for frame in anchored):
        return anchored, "anchored"
    return plain, "plain"


@dg.asset(**stage_asset_args(
    SCORECARD_LEVEL,
    "The seven plan KPIs of the final plan (fill rate, service level, backlog days, inventory turns, capacity "
    "utilization, cost variance, on-time rate) in total and per month, week, family and SKU (plan_kpis level "
    "'scorecard'; docs/kpis.md). The final plan is the anchored one where the version applies it.",
    name="plan_scorecard",
    table="plan_kpis",
    # the adjusted MRP plan has rows exactly where the version applies its adjusted chain, whose
    # capacity plan is then the final plan (final_plan): the run cache stops keeping the plain
    # chain's frames for this step once adjusted_mrp_plan is staged with rows
    op_tags={**step_order_tags("plan_scorecard"), DEFERRED_UNLESS_TAG: ANCHORED_CHAIN.mrp.asset},
    ins={
        # the plain chain is read only where the version has no anchored plan (DeferredPlanFrame):
        # its frames are then not held through the anchored chain
        "detail_plan": dg.AssetIn(key="detail_plan", dagster_type=DeferredPlanFrame),
        "capacity_plan": dg.AssetIn(key="capacity_plan", dagster_type=DeferredPlanFrame),
        "capacity_weekly_summary": dg.AssetIn(key="capacity_weekly_summary", dagster_type=DeferredPlanFrame),
        "anchored_detail_plan": dg.AssetIn(key="anchored_detail_plan", dagster_type=Any),
        "adjusted_capacity_plan": dg.AssetIn(key="adjusted_capacity_plan", dagster_type=Any),
        "adjusted_weekly_summary": dg.AssetIn(key="adjusted_weekly_summary", dagster_type=Any),
        "planning_inputs": dg.AssetIn(key="planning_inputs", dagster_type=VersionPlanInputs),
    },
))
def plan_scorecard(context: dg.AssetExecutionContext, **ins):
    chosen, chain = final_plan(
        (ins["detail_plan"], ins["capacity_plan"], ins["capacity_weekly_summary"]),
        (ins["anchored_detail_plan"], ins["adjusted_capacity_plan"], ins["adjusted_weekly_summary"]),
    )
    detail, rows, weekly = (resolve_frame(frame) for frame in chosen)
    planning_inputs: VersionPlanInputs = ins["planning_inputs"]
    kpis = scorecard_kpis(detail, rows, weekly, planning_inputs.inputs, planning_inputs.params)
    families = sku_families(planning_inputs.inputs.mix_share)
    context.log.info(f"scorecard of the {chain} plan: {len(kpis)} KPI rows")
    yield dg.Output(kpis, metadata={
        **scorecard_metadata(kpis),
        "final_plan": dg.MetadataValue.text(chain),
        "by_family": family_table(kpis),
        "lowest_fill_rate_skus": worst_skus_table(kpis, families),
    })
