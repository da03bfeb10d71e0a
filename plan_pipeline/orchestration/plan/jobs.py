"""Jobs: ``plan_job`` over every plan asset, and the run ledger sync (table ``plan_jobs``)."""

import dagster as dg

from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_GROUPS
from plan_pipeline.orchestration.plan.run_ledger import LEDGER_SYNC_JOB_NAME, sync_run_ledger
from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs
from plan_pipeline.orchestration.resources import PlanStoreResource

PLAN_JOB_NAME = "plan_job"

plan_job = dg.define_asset_job(
    PLAN_JOB_NAME,
    selection=dg.AssetSelection.groups(*PLAN_GROUPS),
    description="Materialize every plan stage of one plan version (partition).",
    tags={"plan/pipeline": "plan"},
)


class LedgerSyncConfig(dg.Config):
    run_ids: list[str] = []  # noqa: RUF012 - a config field's default; pydantic copies it per instance
    limit: int = 500


@dg.op(pool=DUCKDB_POOL, description="Copy run status of plan-version runs from the instance into the run ledger "
       "(table plan_jobs).")
def sync_run_ledger_op(context: dg.OpExecutionContext, config: LedgerSyncConfig, plan_store: PlanStoreResource) -> int:
    store = plan_store.get_store()
    for item in recover_orphaned_runs(context.instance, store):
        context.log.warning(item.line())
    written = sync_run_ledger(context.instance, store, run_ids=config.run_ids or None, limit=config.limit)
    context.log.info(f"run ledger (plan_jobs): {written} row(s) upserted")
    return written


@dg.job(name=LEDGER_SYNC_JOB_NAME, description="Record finished plan runs (status, times, errors) in the run ledger "
        "(table plan_jobs).")
def run_ledger_sync_job():
    sync_run_ledger_op()
