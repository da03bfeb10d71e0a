"""The anchor branch: boundary-month correction of the detail plan and the adjusted re-plan.

It applies only to versions with an anchor policy *and* a cutover date; the adjusted MRP,
capacity plan and report only with ``apply_adjusted`` as well. For other versions these
assets are skipped cleanly: the step does no work and writes no rows, records a
materialization with ``applicable: false`` and the reason, and its checks report "not
applicable"; downstream branch assets see the missing input and do the same. Every
partition therefore ends materialized (a UI backfill over plain and anchored versions
completes green), and nothing fails. (The reference crashes when the branch runs without
``--apply-adjusted``; here the branch simply stops after the carryover.)

The anchor stage (``anchored_detail_plan``) is its own; the chain after it is the plain chain's,
built by the same factory (:func:`.chain.build_stage_chain`) with the anchored names and checks.
The branch is its own asset group, ``anchored_plan`` (see ``partitions.PLAN_GROUPS``).
"""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.assets.capacity_plan import capacity_checks
from plan_pipeline.orchestration.plan.assets.chain import Stage, StageChain, build_stage_chain, not_applicable
from plan_pipeline.orchestration.plan.assets.common import multi_stage_args, stage_out, step_order_tags
from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.partitions import ANCHORED_PLAN_GROUP
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.anchor import anchor_adjust
from plan_pipeline.planning.frames import anchor_frames
from plan_pipeline.planning.overrides import apply_detail_overrides, lock_violations


def branch_applies(params) -> bool:
    return params.has_anchor_branch


def adjusted_applies(params) -> bool:
    return params.has_anchor_branch and params.apply_adjusted


NO_BRANCH = "this version has no anchor policy and cutover date"
ANCHOR_LOCKS = spec("anchored_locks_respected", "anchored_detail_plan",
                    "the anchor correction leaves every locked detail row unchanged")
NO_ADJUSTED = "this version does not apply the adjusted detail plan (apply_adjusted is off or no anchor branch)"


@dg.multi_asset(**multi_stage_args(
    {
        "anchored_detail_plan": stage_out(
            "det_adjusted", "Detail plan with the cutover month corrected towards the aggregate by the anchor "
            "policy (plan_series level 'det_adjusted').", optional_level=True),
        "anchor_carryover": stage_out(
            "carryover", "Residuals carried into the neighbouring month by the anchor stage "
            "(plan_series level 'carryover').", optional_level=True),
    },
    "Stage 6 (anchor branch): correct the boundary month of the detail plan (DET_near / AGG_far / blend); "
    "locked detail rows are left as they are.",
    check_specs=[ANCHOR_LOCKS],
    op_tags=step_order_tags("anchored_detail_plan"),
    group=ANCHORED_PLAN_GROUP,
))
def anchored_detail_plan(context: dg.AssetExecutionContext, aggregate_plan: pd.DataFrame,
                         detail_plan: pd.DataFrame, planning_inputs: VersionPlanInputs,
                         plan_store: PlanStoreResource):
    params = planning_inputs.params
    if not branch_applies(params):
        yield from not_applicable(context, [ANCHOR_LOCKS], NO_BRANCH, ("anchored_detail_plan", "anchor_carryover"))
        return
    overrides = plan_store.get_store().detail_overrides(planning_inputs.version_id)
    locked = apply_detail_overrides(detail_plan, overrides).locked
    result = anchor_adjust(aggregate_plan, detail_plan, planning_inputs.inputs, params, locked=locked)
    rows, carryover = anchor_frames(result)
    yield dg.Output(rows, output_name="anchored_detail_plan", metadata={
        "adjusted_groups": len(result.adjusted_groups), "policy": str(params.anchor_policy),
        "cutover_date": str(params.cutover_date), "locked_rows": int(locked.sum())})
    yield dg.Output(carryover, output_name="anchor_carryover", metadata={"entries": len(carryover)})
    yield check_result(ANCHOR_LOCKS, lock_violations(result.rows, overrides, reference=detail_plan))


ANCHORED_RECONCILED = spec(
    "anchored_levels_reconcile", "anchored_level_reconciliation",
    "after the anchor stage every family x period of the adjusted detail rolls up to the aggregate "
    "within tolerance", blocking=False)
ADJUSTED_MRP_BALANCE = spec("adjusted_mrp_balances", "adjusted_mrp_plan",
                            "MRP balance, lot multiples and releases = receipts on the anchored detail plan")
ADJUSTED_CAPACITY_CHECKS = capacity_checks("adjusted_weekly_summary")
ADJUSTED_REPORT_CONSISTENT = spec(
    "adjusted_report_consistent", "adjusted_plan_report",
    "fill rates in [0, 1], utilization = adjusted load / capacity, KPI totals = aggregate plan sums",
    blocking=False,
)

ANCHORED_CHAIN = StageChain(
    detail="anchored_detail_plan",
    reconciliation=Stage(
        "anchored_level_reconciliation", "level_reconciliation_adjusted",
        "Aggregate vs rolled-up anchored detail deltas (plan_series level 'level_reconciliation_adjusted')."),
    mrp=Stage("adjusted_mrp_plan", "mrp_adjusted",
              "MRP re-planned on the anchored detail plan (plan_series level 'mrp_adjusted')."),
    capacity=Stage("adjusted_capacity_plan", "mrp_final_adjusted", "Capacity-adjusted MRP rows of the anchored "
                   "plan (plan_series level 'mrp_final_adjusted')."),
    weekly=Stage("adjusted_weekly_summary", "weekly_summary_adjusted", "Weekly capacity summary of the "
                 "anchored plan (plan_series level 'weekly_summary_adjusted')."),
    capacity_description="Stage 4 re-run on the anchored detail plan and its MRP.",
    report=Stage("adjusted_plan_report", "report_adjusted", "KPIs of the anchored plan (plan_kpis level 'report_adjusted')."),
    reconciliation_check=ANCHORED_RECONCILED,
    mrp_check=ADJUSTED_MRP_BALANCE,
    capacity_checks=ADJUSTED_CAPACITY_CHECKS,
    report_check=ADJUSTED_REPORT_CONSISTENT,
    optional=True,
    no_detail_reason=NO_BRANCH,
    not_applicable_reason=NO_ADJUSTED,
    mrp_applies=adjusted_applies,
    group=ANCHORED_PLAN_GROUP,
)
anchored_level_reconciliation, adjusted_mrp_plan, adjusted_capacity_plan, adjusted_plan_report = build_stage_chain(
    ANCHORED_CHAIN)

ANCHOR_ASSETS = [anchored_detail_plan, anchored_level_reconciliation, adjusted_mrp_plan, adjusted_capacity_plan,
                 adjusted_plan_report]
