"""Stage 4, capacity leveling of FG releases: the stage body and the checks (the assets
``capacity_plan`` + ``capacity_weekly_summary`` are built by :mod:`.chain`)."""
import dagster as dg

from plan_pipeline.orchestration.plan.checks import check_result, spec
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs
from plan_pipeline.planning.capacity import plan_capacity
from plan_pipeline.planning.frames import capacity_frames
from plan_pipeline.planning.invariants import leveling_violations, released_capacity_violations


def capacity_checks(summary_asset: str) -> tuple[dg.AssetCheckSpec, dg.AssetCheckSpec]:
    return (
        spec("leveling_conserves_load", summary_asset,
             "Σ leveled load + spill left after the horizon = Σ original FG release load; no week's "
             "leveled load exceeds its capacity plus carried slack"),
        spec("capacity_respected", summary_asset,
             "adjusted (rounded) FG releases stay within capacity + carried slack, up to half a rounding "
             "step per FG item released that week", blocking=False),
    )


LEVELING, CAPACITY = capacity_checks("capacity_weekly_summary")


def capacity_stage(detail, mrp, planning_inputs: VersionPlanInputs, rows_name: str, weekly_name: str, checks):
    plan = plan_capacity(detail, mrp, planning_inputs.inputs, planning_inputs.params)
    rows, weekly = capacity_frames(plan)
    yield dg.Output(rows, output_name=rows_name)
    yield dg.Output(weekly, output_name=weekly_name, metadata={
        "leveling": plan.mode,
        "unplaced_load": float(plan.unplaced_load),
        "fg_items": len(plan.fg_items),
    })
    leveling, capacity = checks
    yield check_result(leveling, leveling_violations(plan.weekly_summary, plan.leveled_load, plan.unplaced_load))
    yield check_result(capacity, released_capacity_violations(
        plan.weekly_summary, plan.rows, plan.fg_items, planning_inputs.params))
