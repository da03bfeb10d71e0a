"""Stage 5, the aggregate plan against the rolled-up detail plan: the stage body and the plain
chain's check (the assets are built by :mod:`.chain`)."""
import dagster as dg

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
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
