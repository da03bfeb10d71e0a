"""The plan domain's definitions: assets (with their checks), ``plan_job``, the run ledger repair job
and the run ledger repair / crash recovery sensors; and the resources every domain's ops and assets use."""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.plan.assets.baseline_comparison import baseline_comparison
from plan_pipeline.orchestration.plan.assets.plan_review_report import plan_review_report
from plan_pipeline.orchestration.plan.assets.planning_inputs import planning_inputs
from plan_pipeline.orchestration.plan.assets.published_plan import published_plan
from plan_pipeline.orchestration.plan.assets.stages import STAGE_ASSETS
from plan_pipeline.orchestration.plan.io_managers import PlanInputsIOManager, PlanSeriesIOManager
from plan_pipeline.orchestration.plan.jobs import plan_job, run_ledger_repair_job
from plan_pipeline.orchestration.plan.sensors import orphaned_runs_sensor, run_ledger_repair_sensor
from plan_pipeline.orchestration.plan.targets import PLAN_TARGETS_KEY, PlanTargets
from plan_pipeline.orchestration.resources import PlanStoreResource

PLAN_ASSETS = [planning_inputs, *STAGE_ASSETS, published_plan, baseline_comparison, plan_review_report]

defs = dg.Definitions(
    assets=PLAN_ASSETS,
    jobs=[plan_job, run_ledger_repair_job],
    sensors=[run_ledger_repair_sensor, orphaned_runs_sensor],
)


def build_resources(db_path: str | None = None, *, store_url: str | None = None) -> dict:
    """The resources of every domain: the plan store (``store_url``, ``duckdb:///path`` or
    ``postgresql://...``, or the DuckDB file ``db_path``; neither = resolved when a step runs), the
    plan IO managers on it, and the plan targets of the WARN checks (defaults; a run may change
    them in the launchpad)."""
    store = PlanStoreResource(db_path=db_path, store_url=store_url)
    return {
        "plan_store": store,
        "plan_series_io_manager": PlanSeriesIOManager(plan_store=store),
        "plan_inputs_io_manager": PlanInputsIOManager(plan_store=store),
        PLAN_TARGETS_KEY: PlanTargets(),
    }
