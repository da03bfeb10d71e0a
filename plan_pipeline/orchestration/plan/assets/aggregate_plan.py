"""``aggregate_plan``: stage 1, family x month supply rationed by pooled capacity."""
import dagster as dg

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import PLAN_LEVEL, VersionPlanInputs
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_BASIS_GROUP, plan_version_partitions
from plan_pipeline.planning.aggregate import plan_aggregate
from plan_pipeline.planning.invariants import aggregate_violations

AGGREGATE_CONSERVATION = spec(
    "aggregate_conserves_capacity",
    "aggregate_plan",
    "per period: supply <= demand and <= capacity, backlog = demand - supply, and in int mode "
    "Σ supply = min(capacity, Σ demand)",
)


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_BASIS_GROUP,
    pool=DUCKDB_POOL,
    io_manager_key="plan_series_io_manager",
    metadata={PLAN_LEVEL: "aggregate"},
    kinds={"duckdb", "pandas"},
    check_specs=[AGGREGATE_CONSERVATION],
    description="Family x period supply and backlog: demand against pooled capacity, proportional "
    "rationing on shortage (plan_series level 'aggregate').",
)
def aggregate_plan(planning_inputs: VersionPlanInputs):
    frame = plan_aggregate(planning_inputs.inputs, planning_inputs.params)
    yield dg.Output(frame)
    yield check_result(
        AGGREGATE_CONSERVATION,
        aggregate_violations(frame, planning_inputs.params),
        periods=int(frame["period"].nunique()) if len(frame) else 0,
    )
