"""The Dagster code location of plan-pipeline (``dagster dev -w workspace.yaml`` loads this).

Importing this module opens no database: the store path is resolved inside steps.
"""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.assets.aggregate_plan import aggregate_plan
from plan_pipeline.orchestration.assets.anchor_branch import ANCHOR_ASSETS
from plan_pipeline.orchestration.assets.capacity_plan import capacity_plan
from plan_pipeline.orchestration.assets.detail_plan import detail_plan
from plan_pipeline.orchestration.assets.level_reconciliation import level_reconciliation
from plan_pipeline.orchestration.assets.mrp_plan import mrp_plan
from plan_pipeline.orchestration.assets.plan_report import plan_report
from plan_pipeline.orchestration.assets.planning_inputs import planning_inputs
from plan_pipeline.orchestration.backfill import BACKFILL_JOBS, BACKFILL_SCHEDULES
from plan_pipeline.orchestration.operations import OPERATIONS_JOBS, OPERATIONS_SCHEDULES, OPERATIONS_SENSORS
from plan_pipeline.orchestration.io_managers import PlanInputsIOManager, PlanSeriesIOManager
from plan_pipeline.orchestration.jobs import plan_job, plan_jobs_sync_job
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.orchestration.sensors import plan_jobs_ledger_sensor

PLAN_ASSETS = [
    planning_inputs,
    aggregate_plan,
    detail_plan,
    mrp_plan,
    capacity_plan,
    level_reconciliation,
    plan_report,
    *ANCHOR_ASSETS,
]


def build_resources(db_path: str | None = None) -> dict:
    store = PlanStoreResource(db_path=db_path)
    return {
        "plan_store": store,
        "plan_series_io_manager": PlanSeriesIOManager(plan_store=store),
        "plan_inputs_io_manager": PlanInputsIOManager(plan_store=store),
    }


def build_definitions(db_path: str | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=PLAN_ASSETS,
        jobs=[plan_job, plan_jobs_sync_job, *BACKFILL_JOBS, *OPERATIONS_JOBS],
        schedules=[*BACKFILL_SCHEDULES, *OPERATIONS_SCHEDULES],
        sensors=[plan_jobs_ledger_sensor, *OPERATIONS_SENSORS],
        resources=build_resources(db_path),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
