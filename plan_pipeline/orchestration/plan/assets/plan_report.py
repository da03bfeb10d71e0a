"""The report stage: report.csv's capacity and service rows plus the stored plan KPIs (the stage
body and the plain chain's check; the assets are built by :mod:`.chain`)."""
import dagster as dg

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.planning.frames import capacity_plan_from_frames, report_kpi_frame
from plan_pipeline.planning.invariants import report_violations
from plan_pipeline.planning.report import plan_kpis
from plan_pipeline.planning.report import plan_report as build_report

REPORT_CONSISTENT = spec(
    "report_consistent", "plan_report",
    "fill rates in [0, 1], utilization = adjusted load / capacity, KPI totals = aggregate plan sums",
    blocking=False,
)


def report_stage(rows, weekly, aggregate, planning_inputs: VersionPlanInputs, check: dg.AssetCheckSpec):
    plan = capacity_plan_from_frames(rows, weekly)
    report = build_report(plan, planning_inputs.inputs)
    kpis = plan_kpis(aggregate)
    long = report_kpi_frame(report, kpis)
    totals = {r.metric: float(r.value) for r in kpis.itertuples() if r.bucket_type == "total"}
    capacity = report[report["type"] == "capacity"]
    meta = {f"kpi/{k}": dg.MetadataValue.float(v) for k, v in totals.items()}
    if len(capacity):
        meta["max_utilization"] = dg.MetadataValue.float(float(capacity["utilization"].max()))
    yield dg.Output(long, metadata=meta)
    yield check_result(check, report_violations(report, kpis, aggregate))
