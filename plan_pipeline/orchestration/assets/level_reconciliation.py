"""``level_reconciliation``: stage 5, the aggregate plan against the rolled-up detail plan."""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.assets.common import stage_asset_args, step_order_tags
from plan_pipeline.orchestration.checks import check_result, spec
from plan_pipeline.orchestration.io_managers import VersionPlanInputs
from plan_pipeline.planning.frames import reconciliation_frame
from plan_pipeline.planning.level_reconciliation import reconcile_levels

RECONCILED = spec(
    "levels_reconcile",
    "level_reconciliation",
    "every family x period of the detail plan rolls up to the aggregate within tolerance",
    blocking=False,
)


def reconciliation_stage(aggregate, detail, planning_inputs: VersionPlanInputs, label: str, check):
    log = reconcile_levels(aggregate, detail, planning_inputs.inputs, planning_inputs.params, label)
    frame = reconciliation_frame(log)
    summary = log["summary"]
    yield dg.Output(frame, metadata={
        "tol_violations": int(summary["tol_violations"]),
        "boundary_violations": int(summary["boundary"]["violations"]),
        "boundary_period": str(summary["boundary"]["period"]),
    })
    bad = frame[~frame["ok"]][["family", "period", "delta_demand", "delta_supply", "delta_backlog"]]
    yield check_result(check, bad)


@dg.asset(**stage_asset_args(
    "level_reconciliation",
    "Aggregate vs rolled-up detail deltas per family x period, tolerance and boundary-month "
    "violations (plan_series level 'level_reconciliation').",
    check_specs=[RECONCILED],
    op_tags=step_order_tags("level_reconciliation"),
))
def level_reconciliation(aggregate_plan: pd.DataFrame, detail_plan: pd.DataFrame, planning_inputs: VersionPlanInputs):
    yield from reconciliation_stage(aggregate_plan, detail_plan, planning_inputs, planning_inputs.version_id,
                                    RECONCILED)
