"""``aggregate_plan``: stage 1, family x month supply rationed by pooled capacity, with the
planners' aggregate overrides (``agg`` level: an edited demand before the rationing, a pinned
supply or backlog after it; ``planning/overrides.py``).

Besides its conservation check (ERROR), the stage judges the plan against the targets of the
``plan_targets`` resource (WARN): the fill rate and the growth of the backlog are aggregate-plan
figures (the report's plan KPIs are computed from this frame)."""
import dataclasses

import dagster as dg

from plan_pipeline.orchestration.plan.assets.common import stage_asset_args
from plan_pipeline.orchestration.plan.checks import (
    backlog_growth_result,
    check_result,
    fill_rate_result,
    spec,
    warn_spec,
)
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.partitions import PLAN_BASIS_GROUP
from plan_pipeline.orchestration.plan.planner_metadata import family_supply_summary, percent, units
from plan_pipeline.orchestration.plan.targets import PlanTargets
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.invariants import aggregate_violations
from plan_pipeline.planning.overrides import aggregate_demand_inputs, apply_aggregate_overrides
from plan_pipeline.planning.report import fill_rate

AGGREGATE_CONSERVATION = spec(
    "aggregate_conserves_capacity",
    "aggregate_plan",
    "per period: supply <= demand and <= capacity, backlog = demand - supply, and in int mode "
    "Σ supply = min(capacity, Σ demand) (periods holding a planner's pinned supply or backlog are "
    "reported, not judged)",
)
FILL_RATE_TARGET = warn_spec(
    "fill_rate_meets_target", "aggregate_plan",
    "WARN when the plan's fill rate (total supply / total demand) is below plan_targets.fill_rate_target "
    "(default 95 %); lists the periods below the target",
)
BACKLOG_NOT_GROWING = warn_spec(
    "backlog_not_growing", "aggregate_plan",
    "WARN when the plan's total backlog rises in plan_targets.backlog_growth_periods consecutive periods "
    "(default 3); shows the backlog per period",
)


@dg.asset(**stage_asset_args(
    "aggregate",
    "Family x period supply and backlog: demand against pooled capacity, proportional "
    "rationing on shortage (plan_series level 'aggregate').",
    check_specs=[AGGREGATE_CONSERVATION, FILL_RATE_TARGET, BACKLOG_NOT_GROWING],
    group=PLAN_BASIS_GROUP,
))
def aggregate_plan(planning_inputs: VersionPlanInputs, plan_targets: PlanTargets, plan_store: PlanStoreResource):
    overrides = plan_store.get_store().level_overrides(planning_inputs.version_id, "agg")
    inputs = planning_inputs.inputs
    demand, demand_problems = aggregate_demand_inputs(inputs.demand_family, overrides)
    if demand is not inputs.demand_family:
        inputs = dataclasses.replace(inputs, demand_family=demand)
    applied = apply_aggregate_overrides(plan_aggregate(inputs, planning_inputs.params), overrides)
    frame = applied.frame
    pinned_periods = set(frame["period"][applied.edited])
    demand, supply = float(frame["demand"].sum()), float(frame["supply"].sum())
    yield dg.Output(frame, metadata={
        **percent("fill_rate", fill_rate(demand, supply)),
        **units("demand_total", demand),
        **units("supply_total", supply),
        **units("backlog_total", float(frame["backlog"].sum())),
        "families": dg.MetadataValue.int(int(frame["family"].nunique()) if len(frame) else 0),
        "by_family": family_supply_summary(frame),
        "overrides": len(overrides),
        "edited_rows": int(applied.edited.sum()),
        "locked_rows": int(applied.locked.sum()),
        "unmatched_overrides": dg.MetadataValue.json(
            [{"key": k, "problem": p} for k, p in demand_problems] + applied.problems.to_dict("records")),
    })
    violations = aggregate_violations(frame, planning_inputs.params)
    if pinned_periods and len(violations):
        violations = violations[[p not in pinned_periods for p in violations["period"]]]
    yield check_result(
        AGGREGATE_CONSERVATION,
        violations,
        periods=int(frame["period"].nunique()) if len(frame) else 0,
        pinned_periods=len(pinned_periods),
    )
    yield fill_rate_result(FILL_RATE_TARGET, frame, plan_targets.fill_rate_target)
    yield backlog_growth_result(BACKLOG_NOT_GROWING, frame, plan_targets.backlog_growth_periods)
