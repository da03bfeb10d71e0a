"""Stage 3, netting, lot/MOQ sizing, lead-time offset and BOM explosion: the stage body and the
plain chain's check (the assets are built by :mod:`.chain`)."""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.planning.invariants import mrp_violations
from plan_pipeline.planning.keys import count_distinct_keys
from plan_pipeline.planning.mrp import plan_mrp

MRP_BALANCE = spec(
    "mrp_balances",
    "mrp_plan",
    "on_hand_end = on_hand_start + scheduled + receipt - gross; receipts are lot multiples covering "
    "net requirements; Σ releases = Σ receipts per item",
)


def mrp_stage(detail: pd.DataFrame, planning_inputs: VersionPlanInputs, check: dg.AssetCheckSpec):
    frame = plan_mrp(detail, planning_inputs.inputs, planning_inputs.params)
    yield dg.Output(frame, metadata={"items": count_distinct_keys(frame["item"]) if len(frame) else 0})
    yield check_result(check, mrp_violations(frame))
