"""Jobs: ``plan_job`` over every plan asset, and the run ledger repair (table ``plan_jobs``)."""

import dagster as dg
from pydantic import Field

from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_GROUPS
from plan_pipeline.orchestration.plan.run_ledger import LEDGER_REPAIR_JOB_NAME, sync_run_ledger
from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs
from plan_pipeline.orchestration.resources import PlanStoreResource

PLAN_JOB_NAME = "plan_job"

plan_job = dg.define_asset_job(
    PLAN_JOB_NAME,
    selection=dg.AssetSelection.groups(*PLAN_GROUPS),
    description="Materialize every plan stage of one plan version (partition).",
    tags={"plan/pipeline": "plan"},
)


class LedgerRepairConfig(dg.Config):
    run_ids: list[str] = Field(
        default_factory=list,
        description="Run ids whose plan_jobs rows to write from the Dagster instance (empty: the newest `limit` runs).",
    )
    limit: int = Field(default=500, description="With no run_ids: how many of the newest runs to record.")


@dg.op(pool=DUCKDB_POOL, description="Write the plan_jobs rows of finished runs that could not record themselves "
       "(canceled before they started, crashed, failed before any step), from the Dagster instance.")
def repair_run_ledger_op(context: dg.OpExecutionContext, config: LedgerRepairConfig,
                         plan_store: PlanStoreResource) -> int:
    store = plan_store.get_store()
    for item in recover_orphaned_runs(context.instance, store):
        context.log.warning(item.line())
    written = sync_run_ledger(context.instance, store, run_ids=config.run_ids or None, limit=config.limit)
    context.log.info(f"run ledger (plan_jobs): {written} row(s) written")
    return written


@dg.job(name=LEDGER_REPAIR_JOB_NAME, description="Record finished runs that could not record themselves (canceled "
        "before they started, crashed, failed before any step) in the run ledger (table plan_jobs). Requested by "
        "run_ledger_repair_sensor only for such runs: ordinary runs record themselves.")
def run_ledger_repair_job():
    repair_run_ledger_op()
