"""``aggregate_plan``: stage 1, family x month supply rationed by pooled capacity."""

import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.io_managers import PLAN_LEVEL, VersionPlanInputs
from plan_pipeline.orchestration.partitions import DUCKDB_POOL, PLAN_GROUP, plan_version_partitions
from plan_pipeline.planning.aggregate import plan_aggregate


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_GROUP,
    pool=DUCKDB_POOL,
    io_manager_key="plan_series_io_manager",
    metadata={PLAN_LEVEL: "aggregate"},
    kinds={"duckdb", "pandas"},
    description="Family x period supply and backlog: demand against pooled capacity, proportional "
    "rationing on shortage (plan_series level 'aggregate').",
)
def aggregate_plan(planning_inputs: VersionPlanInputs) -> pd.DataFrame:
    return plan_aggregate(planning_inputs.inputs, planning_inputs.params)
