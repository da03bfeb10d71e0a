"""Stage 4, capacity leveling of FG releases: the stage body and the checks (the assets
``capacity_plan`` + ``capacity_weekly_summary`` are built by :mod:`.chain`)."""
import dagster as dg
import numpy as np

from plan_pipeline.orchestration.plan.checks import check_result, spec, utilization_result, warn_spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.orchestration.plan.planner_metadata import (
    family_load_summary,
    percent,
    resource_capacity_summary,
    units,
)
from plan_pipeline.orchestration.plan.targets import PlanTargets
from plan_pipeline.planning.capacity import plan_capacity
from plan_pipeline.planning.frames import capacity_frames
from plan_pipeline.planning.invariants import leveling_violations, released_capacity_violations


def capacity_checks(summary_asset: str) -> tuple[dg.AssetCheckSpec, dg.AssetCheckSpec, dg.AssetCheckSpec]:
    """(leveling, capacity, utilization): two conservation checks (ERROR) and the WARN check of weeks
    over the utilization target after leveling."""
    return (
        spec("leveling_conserves_load", summary_asset,
             "Σ leveled load + spill left after the horizon = Σ original FG release load; no week's "
             "leveled load exceeds its capacity plus carried slack"),
        spec("capacity_respected", summary_asset,
             "adjusted (rounded) FG releases stay within capacity + carried slack, up to half a rounding "
             "step per FG item released that week", blocking=False),
        warn_spec("leveled_utilization_within_capacity", summary_asset,
                  "WARN for weeks whose utilization after leveling (adjusted load / the week's own capacity) "
                  "is above plan_targets.max_utilization (default 100 %), with the reason: slack carried from "
                  "earlier weeks or rounding of the leveled releases (which the checks above allow)"),
    )


CAPACITY_CHECKS = capacity_checks("capacity_weekly_summary")
LEVELING, CAPACITY, UTILIZATION = CAPACITY_CHECKS


def capacity_stage(detail, mrp, planning_inputs: VersionPlanInputs, rows_name: str, weekly_name: str, checks,
                   targets: PlanTargets):
    plan = plan_capacity(detail, mrp, planning_inputs.inputs, planning_inputs.params)
    rows, weekly = capacity_frames(plan)
    capacity = float(weekly["capacity"].sum())
    leveled = float(weekly["adjusted_load"].sum())
    yield dg.Output(rows, output_name=rows_name, metadata={
        "fg_items": dg.MetadataValue.int(len(plan.fg_items)),
        "load_by_family": family_load_summary(rows, planning_inputs.inputs.mix_share, plan.fg_items),
    })
    yield dg.Output(weekly, output_name=weekly_name, metadata={
        "leveling": plan.mode,
        "horizon_weeks": dg.MetadataValue.int(len(weekly)),
        **units("capacity_total", capacity),
        **units("original_load_total", float(weekly["original_load"].sum())),
        **units("leveled_load_total", leveled),
        **percent("horizon_utilization", leveled / capacity if capacity > 0 else 0.0),
        "weeks_over_capacity": dg.MetadataValue.int(int(np.sum(weekly["adjusted_load"] > weekly["capacity"]))),
        **units("unplaced_load", float(plan.unplaced_load)),
        "fg_items": len(plan.fg_items),
        "capacity_by_resource": resource_capacity_summary(planning_inputs.inputs.capacity),
    })
    leveling, capacity_check, utilization = checks
    yield check_result(leveling, leveling_violations(plan.weekly_summary, plan.leveled_load, plan.unplaced_load))
    yield check_result(capacity_check, released_capacity_violations(
        plan.weekly_summary, plan.rows, plan.fg_items, planning_inputs.params))
    yield utilization_result(utilization, weekly, rows, plan.fg_items, targets.max_utilization,
                             float(plan.unplaced_load))
