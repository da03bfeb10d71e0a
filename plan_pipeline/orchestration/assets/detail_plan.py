"""``detail_plan``: stage 2, family -> SKU by mix share and month -> week by calendar weights."""
import dagster as dg
import pandas as pd

from plan_pipeline.orchestration.assets.common import stage_asset_args
from plan_pipeline.orchestration.checks import check_result, spec
from plan_pipeline.orchestration.io_managers import VersionPlanInputs
from plan_pipeline.planning.detail import plan_detail
from plan_pipeline.planning.invariants import detail_violations

DETAIL_CONSERVATION = spec(
    "detail_conserves_aggregate",
    "detail_plan",
    "Σ detail demand, supply and backlog per family x period equals the aggregate plan",
)


@dg.asset(**stage_asset_args(
    "det",
    "SKU x week demand, supply and backlog disaggregated from the aggregate plan "
    "(plan_series level 'det'; a shared calendar week keeps one row per month fragment).",
    check_specs=[DETAIL_CONSERVATION],
))
def detail_plan(aggregate_plan: pd.DataFrame, planning_inputs: VersionPlanInputs):
    frame = plan_detail(aggregate_plan, planning_inputs.inputs, planning_inputs.params)
    yield dg.Output(frame, metadata={"skus": int(frame["sku"].nunique()) if len(frame) else 0,
                                     "weeks": int(frame["week"].nunique()) if len(frame) else 0})
    yield check_result(DETAIL_CONSERVATION, detail_violations(aggregate_plan, frame, planning_inputs.params))
