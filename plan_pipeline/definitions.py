"""The Dagster code location of plan-pipeline (``dagster dev -w workspace.yaml`` loads this).

Importing this module opens no database: the store path is resolved inside steps.
"""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.assets.plan_stages import STAGE_ASSETS
from plan_pipeline.orchestration.assets.planning_inputs import planning_inputs
from plan_pipeline.orchestration.assets.published_plan import published_plan
from plan_pipeline.orchestration.backfill import BACKFILL_JOBS, BACKFILL_SCHEDULES
from plan_pipeline.orchestration.operations import OPERATIONS_JOBS, OPERATIONS_SCHEDULES, OPERATIONS_SENSORS
from plan_pipeline.orchestration.io_managers import PlanInputsIOManager, PlanSeriesIOManager
from plan_pipeline.orchestration.jobs import plan_job, plan_jobs_sync_job
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.orchestration.sensors import orphaned_runs_sensor, plan_jobs_ledger_sensor

PLAN_ASSETS = [planning_inputs, *STAGE_ASSETS, published_plan]


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
        sensors=[plan_jobs_ledger_sensor, orphaned_runs_sensor, *OPERATIONS_SENSORS],
        resources=build_resources(db_path),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
