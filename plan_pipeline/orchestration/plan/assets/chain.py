"""One factory for the stage chain that follows a detail plan: level reconciliation, MRP,
capacity leveling and the report.

The plan has two such chains: the plain one on ``detail_plan`` and the anchored (adjusted) one on
``anchored_detail_plan``. Both are built here from a :class:`StageChain` (asset names, plan
levels, descriptions, checks), so they cannot drift apart. An *optional* chain (the anchored one)
may not apply to a version: a stage whose input is missing, or whose own condition does not
hold, is skipped cleanly (:func:`not_applicable`: no rows, an explicit "not applicable"
materialization and check results).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.assets.capacity_plan import capacity_stage
from plan_pipeline.orchestration.plan.assets.common import (
    multi_stage_args,
    stage_asset_args,
    stage_out,
    step_order_tags,
)
from plan_pipeline.orchestration.plan.assets.level_reconciliation import reconciliation_stage
from plan_pipeline.orchestration.plan.assets.mrp_plan import mrp_stage
from plan_pipeline.orchestration.plan.assets.plan_report import report_stage
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.partitions import PLAN_GROUP
from plan_pipeline.orchestration.plan.targets import PlanTargets


@dataclass(frozen=True)
class Stage:
    asset: str  # asset key (and op name, except for the capacity outputs)
    level: str  # the plan level it stages
    description: str


@dataclass(frozen=True)
class StageChain:
    """Everything that differs between the plain and the anchored chain."""

    detail: str  # the detail plan asset the chain starts from
    reconciliation: Stage
    mrp: Stage
    capacity: Stage  # the capacity multi-asset's rows output; also its op name
    weekly: Stage  # the capacity multi-asset's weekly summary output
    capacity_description: str  # the capacity op's description
    report: Stage
    reconciliation_check: dg.AssetCheckSpec
    mrp_check: dg.AssetCheckSpec
    capacity_checks: tuple[dg.AssetCheckSpec, ...]  # leveling, capacity, utilization (capacity_plan.capacity_checks)
    report_check: dg.AssetCheckSpec
    optional: bool = False  # stages may not apply to a version (they then stage no rows)
    no_detail_reason: str = ""  # why the reconciliation is skipped when the detail input is missing
    not_applicable_reason: str = ""  # why MRP, capacity and report are skipped
    mrp_applies: Callable[[Any], bool] = lambda params: True  # the re-plan's own condition on the parameters
    group: str = PLAN_GROUP  # the asset group of the chain's assets


def not_applicable(context, checks, why: str, outputs=()):
    """Skip cleanly: no rows, an explicit 'not applicable' materialization and check results."""
    context.log.info(f"not applicable, skipped: {why}")
    for name in outputs:
        yield dg.Output(None, output_name=name, metadata={"applicable": False, "reason": why,
                                                         "dagster/row_count": 0})
    for check in checks:
        yield dg.AssetCheckResult(
            check_name=check.name, asset_key=check.asset_key, passed=True,
            description=f"not applicable: {why}", metadata={"applicable": False},
        )


def build_stage_chain(chain: StageChain) -> list[dg.AssetsDefinition]:
    """The chain's reconciliation, MRP, capacity and report assets (in that order)."""
    frame_type = Any if chain.optional else pd.DataFrame  # an optional chain's frames may be None

    def frame(asset: str) -> dg.AssetIn:
        return dg.AssetIn(key=asset, dagster_type=frame_type)

    aggregate = dg.AssetIn(key="aggregate_plan", dagster_type=pd.DataFrame)
    inputs = dg.AssetIn(key="planning_inputs", dagster_type=VersionPlanInputs)
    missing = chain.optional  # only an optional chain ever sees a missing (None) frame
    rec, mrp, cap, weekly, rep = chain.reconciliation, chain.mrp, chain.capacity, chain.weekly, chain.report

    @dg.asset(**stage_asset_args(
        rec.level, rec.description, name=rec.asset, check_specs=[chain.reconciliation_check],
        optional_level=chain.optional, op_tags=step_order_tags(rec.asset), group=chain.group,
        ins={"aggregate_plan": aggregate, chain.detail: frame(chain.detail), "planning_inputs": inputs},
    ))
    def reconciliation_asset(context: dg.AssetExecutionContext, **ins):
        detail, planning_inputs = ins[chain.detail], ins["planning_inputs"]
        if missing and detail is None:
            yield from not_applicable(context, [chain.reconciliation_check], chain.no_detail_reason, ("result",))
            return
        yield from reconciliation_stage(ins["aggregate_plan"], detail, planning_inputs, planning_inputs.version_id,
                                        chain.reconciliation_check)

    @dg.asset(**stage_asset_args(
        mrp.level, mrp.description, name=mrp.asset, check_specs=[chain.mrp_check],
        optional_level=chain.optional, op_tags=step_order_tags(mrp.asset), group=chain.group,
        ins={chain.detail: frame(chain.detail), "planning_inputs": inputs},
    ))
    def mrp_asset(context: dg.AssetExecutionContext, **ins):
        detail, planning_inputs = ins[chain.detail], ins["planning_inputs"]
        if missing and (detail is None or not chain.mrp_applies(planning_inputs.params)):
            yield from not_applicable(context, [chain.mrp_check], chain.not_applicable_reason, ("result",))
            return
        yield from mrp_stage(detail, planning_inputs, chain.mrp_check)

    @dg.multi_asset(**multi_stage_args(
        {
            cap.asset: stage_out(cap.level, cap.description, optional_level=chain.optional),
            weekly.asset: stage_out(weekly.level, weekly.description, optional_level=chain.optional),
        },
        chain.capacity_description,
        name=cap.asset,
        check_specs=list(chain.capacity_checks),
        op_tags=step_order_tags(cap.asset),
        group=chain.group,
        ins={chain.detail: frame(chain.detail), mrp.asset: frame(mrp.asset), "planning_inputs": inputs},
    ))
    def capacity_asset(context: dg.AssetExecutionContext, plan_targets: PlanTargets, **ins):
        detail, mrp_rows = ins[chain.detail], ins[mrp.asset]
        if missing and (detail is None or mrp_rows is None):
            yield from not_applicable(context, list(chain.capacity_checks), chain.not_applicable_reason,
                                      (cap.asset, weekly.asset))
            return
        yield from capacity_stage(detail, mrp_rows, ins["planning_inputs"], cap.asset, weekly.asset,
                                  chain.capacity_checks, plan_targets)

    @dg.asset(**stage_asset_args(
        rep.level, rep.description, name=rep.asset, table="plan_kpis", check_specs=[chain.report_check],
        optional_level=chain.optional, op_tags=step_order_tags(rep.asset), group=chain.group,
        ins={cap.asset: frame(cap.asset), weekly.asset: frame(weekly.asset), "aggregate_plan": aggregate,
             "planning_inputs": inputs},
    ))
    def report_asset(context: dg.AssetExecutionContext, **ins):
        rows, weekly_rows = ins[cap.asset], ins[weekly.asset]
        if missing and (rows is None or weekly_rows is None):
            yield from not_applicable(context, [chain.report_check], chain.not_applicable_reason, ("result",))
            return
        yield from report_stage(rows, weekly_rows, ins["aggregate_plan"], ins["planning_inputs"], chain.report_check)

    return [reconciliation_asset, mrp_asset, capacity_asset, report_asset]
