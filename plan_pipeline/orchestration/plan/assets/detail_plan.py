"""``detail_plan``: stage 2, family -> SKU by mix share and month -> week by calendar weights,
then the planners' detail overrides (edits and locks) on top."""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.assets.common import stage_asset_args
from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.partitions import PLAN_BASIS_GROUP
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.invariants import detail_violations
from plan_pipeline.planning.keys import count_distinct_keys
from plan_pipeline.planning.overrides import apply_detail_overrides, lock_violations

DETAIL_CONSERVATION = spec(
    "detail_conserves_aggregate",
    "detail_plan",
    "Σ detail demand, supply and backlog per family x period equals the aggregate plan "
    "(family x periods holding planner edits are reported, not judged)",
)
DETAIL_LOCKS = spec(
    "detail_locks_respected",
    "detail_plan",
    "every locked detail row holds its overridden values",
)


@dg.asset(**stage_asset_args(
    "det",
    "SKU x week demand, supply and backlog disaggregated from the aggregate plan, with planner "
    "overrides applied (plan_series level 'det'; a shared calendar week keeps one row per month fragment).",
    check_specs=[DETAIL_CONSERVATION, DETAIL_LOCKS],
    group=PLAN_BASIS_GROUP,
))
def detail_plan(aggregate_plan: pd.DataFrame, planning_inputs: VersionPlanInputs, plan_store: PlanStoreResource):
    computed = plan_detail(aggregate_plan, planning_inputs.inputs, planning_inputs.params)
    overrides = plan_store.get_store().detail_overrides(planning_inputs.version_id)
    applied = apply_detail_overrides(computed, overrides)
    frame = applied.frame
    edited_groups = set(zip(frame["family"][applied.edited], frame["period"][applied.edited]))
    yield dg.Output(frame, metadata={
        "skus": count_distinct_keys(frame["sku"]) if len(frame) else 0,
        "weeks": int(frame["week"].nunique()) if len(frame) else 0,
        "overrides": len(overrides),
        "edited_rows": int(applied.edited.sum()),
        "locked_rows": int(applied.locked.sum()),
        "unmatched_overrides": dg.MetadataValue.json(applied.problems.to_dict("records")),
    })
    violations = detail_violations(aggregate_plan, frame, planning_inputs.params)
    if edited_groups and len(violations):
        keep = [(f, p) not in edited_groups for f, p in zip(violations["family"], violations["period"])]
        violations = violations[keep]
    yield check_result(DETAIL_CONSERVATION, violations, edited_groups=len(edited_groups))
    yield check_result(DETAIL_LOCKS, lock_violations(frame, overrides), locked_rows=int(applied.locked.sum()))
