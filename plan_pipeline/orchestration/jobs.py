"""Jobs: the plan job over every plan asset, and the plan_jobs ledger sync."""

import dagster as dg

from plan_pipeline.orchestration.partitions import DUCKDB_POOL, PLAN_GROUP
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.orchestration.run_ledger import SYNC_JOB_NAME, sync_plan_jobs
from plan_pipeline.orchestration.run_recovery import recover_orphaned_runs

plan_job = dg.define_asset_job(
    "plan_job",
    selection=dg.AssetSelection.groups(PLAN_GROUP),
    description="Materialize every plan stage of one plan version (partition).",
    tags={"plan/pipeline": "plan"},
)


class LedgerSyncConfig(dg.Config):
    run_ids: list[str] = []
    limit: int = 500


@dg.op(pool=DUCKDB_POOL, description="Copy run status of plan-version runs from the instance into plan_jobs.")
def sync_plan_jobs_op(context: dg.OpExecutionContext, config: LedgerSyncConfig, plan_store: PlanStoreResource) -> int:
    store = plan_store.get_store()
    for item in recover_orphaned_runs(context.instance, store):
        context.log.warning(item.line())
    written = sync_plan_jobs(context.instance, store, run_ids=config.run_ids or None, limit=config.limit)
    context.log.info(f"plan_jobs: {written} row(s) upserted")
    return written


@dg.job(name=SYNC_JOB_NAME, description="Record finished plan runs (status, times, errors) in plan_jobs.")
def plan_jobs_sync_job():
    sync_plan_jobs_op()
