"""The report stage: report.csv's capacity and service rows plus the stored plan KPIs (the stage
body and the plain chain's check; the assets are built by :mod:`.chain`)."""
import dagster as dg

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.planner_metadata import kpi_totals, monthly_kpi_table, percent
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
    meta = kpi_totals(kpis)
    capacity = report[report["type"] == "capacity"]
    if len(capacity):
        util = capacity["utilization"].to_numpy(float)
        meta.update(percent("max_utilization", float(util.max())))
        meta["max_utilization_week"] = dg.MetadataValue.text(str(capacity["week"].iloc[int(util.argmax())]))
        meta["weeks_over_100_percent"] = dg.MetadataValue.int(int((util > 1.0).sum()))
    service = report[report["type"] == "service"]
    if len(service):
        meta.update(percent("min_weekly_fg_fill_rate", float(service["fill_rate"].min())))
    meta["by_month"] = monthly_kpi_table(kpis)
    yield dg.Output(long, metadata=meta)
    yield check_result(check, report_violations(report, kpis, aggregate))
