"""Asset checks: the planning conservation laws, evaluated on what was stored."""

import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.assets.aggregate_plan import aggregate_plan
from plan_pipeline.orchestration.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.partitions import DUCKDB_POOL
from plan_pipeline.planning.invariants import aggregate_violations


def check_result(violations: pd.DataFrame, what: str, **extra) -> dg.AssetCheckResult:
    passed = violations.empty
    metadata = {"violations": dg.MetadataValue.int(len(violations)), **extra}
    if not passed:
        metadata["first_violations"] = dg.MetadataValue.md(violations.head(20).to_string(index=False))
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{what}: {'holds' if passed else f'{len(violations)} violation(s)'}",
        metadata=metadata,
    )


@dg.asset_check(
    asset=aggregate_plan,
    blocking=True,
    pool=DUCKDB_POOL,
    additional_ins={"planning_inputs": dg.AssetIn()},
    description="Per period: supply <= demand and <= capacity, backlog = demand - supply, and in int mode "
    "Σ supply = min(capacity, Σ demand).",
)
def aggregate_conserves_capacity(aggregate_plan: pd.DataFrame, planning_inputs: VersionPlanInputs) -> dg.AssetCheckResult:
    return check_result(
        aggregate_violations(aggregate_plan, planning_inputs.params),
        "aggregate capacity rationing",
        periods=dg.MetadataValue.int(int(aggregate_plan["period"].nunique())) if len(aggregate_plan) else 0,
    )


ALL_CHECKS = [aggregate_conserves_capacity]
