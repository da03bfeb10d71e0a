"""``aggregate_plan``: stage 1, family x month supply rationed by pooled capacity.

Besides its conservation check (ERROR), the stage judges the plan against the targets of the
``plan_targets`` resource (WARN): the fill rate and the growth of the backlog are aggregate-plan
figures (the report's plan KPIs are computed from this frame)."""
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
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.invariants import aggregate_violations
from plan_pipeline.planning.report import fill_rate

AGGREGATE_CONSERVATION = spec(
    "aggregate_conserves_capacity",
    "aggregate_plan",
    "per period: supply <= demand and <= capacity, backlog = demand - supply, and in int mode "
    "Σ supply = min(capacity, Σ demand)",
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
def aggregate_plan(planning_inputs: VersionPlanInputs, plan_targets: PlanTargets):
    frame = plan_aggregate(planning_inputs.inputs, planning_inputs.params)
    demand, supply = float(frame["demand"].sum()), float(frame["supply"].sum())
    yield dg.Output(frame, metadata={
        **percent("fill_rate", fill_rate(demand, supply)),
        **units("demand_total", demand),
        **units("supply_total", supply),
        **units("backlog_total", float(frame["backlog"].sum())),
        "families": dg.MetadataValue.int(int(frame["family"].nunique()) if len(frame) else 0),
        "by_family": family_supply_summary(frame),
    })
    yield check_result(
        AGGREGATE_CONSERVATION,
        aggregate_violations(frame, planning_inputs.params),
        periods=int(frame["period"].nunique()) if len(frame) else 0,
    )
    yield fill_rate_result(FILL_RATE_TARGET, frame, plan_targets.fill_rate_target)
    yield backlog_growth_result(BACKLOG_NOT_GROWING, frame, plan_targets.backlog_growth_periods)
