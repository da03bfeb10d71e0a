"""``published_plan``: the version's plan as every reader sees it, switched whole.

The stage assets *stage* their rows under the run id. This last step of a plan run checks
that the run (with the runs it re-executes) staged every plan level, re-checks that the
version is not frozen (it may have been approved while the run computed), and publishes the
whole plan in one transaction: readers (CLI, exports, the UI metadata, the API) switch from
the previous complete plan to this one at once. A run that fails or dies before this step
changes nothing a reader sees. The step depends on every stage, so Dagster skips it when any
stage or blocking check fails.
"""
import dagster as dg

from plan_pipeline.operations.retention import enforce_row_guard, row_guard_limit
from plan_pipeline.orchestration.plan.assets.common import PUBLISH_STAGE, stage_identity, step_order_tags
from plan_pipeline.orchestration.plan.assets.stages import PLAN_LEVELS, STAGE_ASSET_KEYS, stage_level_keys
from plan_pipeline.orchestration.plan.partitions import (
    DUCKDB_POOL,
    PLAN_GROUP,
    plan_version_partitions,
    remove_version_partition,
)
from plan_pipeline.orchestration.plan.planner_metadata import kpi_totals, published_levels_table
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.store import PlanStoreError


def row_guard_metadata(report) -> dict:
    """Dagster metadata of a :class:`~plan_pipeline.operations.retention.RowGuardReport` (for the
    run that applied the guard after publishing a plan)."""
    return {
        "row_guard": dg.MetadataValue.text(report.log_line()),
        "row_guard_max_rows": dg.MetadataValue.int(report.max_rows) if report.enabled else dg.MetadataValue.null(),
        "row_guard_rows_before": dg.MetadataValue.int(report.rows_before),
        "row_guard_rows_after": dg.MetadataValue.int(report.rows_after),
        "row_guard_within_limit": dg.MetadataValue.bool(report.within_limit),
        "row_guard_versions_removed": dg.MetadataValue.json(
            [{k: v[k] for k in ("version_id", "status", "created_at", "rows", "archive")} for v in report.versions]),
        "row_guard_protected": dg.MetadataValue.json(report.protected),
    }


def run_lineage(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """This run's id, then its parent's, grandparent's, ... (a re-execution continues them)."""
    lineage = [run.run_id]
    parent = run.parent_run_id
    while parent and parent not in lineage:
        lineage.append(parent)
        record = instance.get_run_by_id(parent)
        parent = record.parent_run_id if record is not None else None
    return lineage


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_GROUP,
    pool=DUCKDB_POOL,
    deps=STAGE_ASSET_KEYS,
    kinds={"duckdb"},
    op_tags=step_order_tags("published_plan"),
    description="The version's published plan: when every stage of the run has staged its rows, they replace "
    "the previous plan in one transaction (readers never see a mix of two runs, or a half-written run).",
    **stage_identity(PUBLISH_STAGE),
)
def published_plan(context: dg.AssetExecutionContext, plan_store: PlanStoreResource) -> dg.MaterializeResult:
    store = plan_store.get_store()
    with store.session():  # one store connection for the step (not one per store call)
        return publish(context, store)


def publish(context: dg.AssetExecutionContext, store) -> dg.MaterializeResult:
    version = context.partition_key
    lineage = run_lineage(context.instance, context.run)
    try:
        publication = store.publish_run(version, lineage, PLAN_LEVELS)
    except PlanStoreError as exc:
        raise dg.Failure(description=f"plan version {version!r} not published: {exc}") from None
    context.log.info(
        f"published plan version {version!r}: {len(publication.levels)} levels, "
        f"{sum(publication.levels.values())} rows, from run(s) {', '.join(publication.runs)}"
    )
    guard = apply_row_guard(context, store, version)
    return dg.MaterializeResult(metadata={
        **guard,
        "plan_version": version,
        "published_runs": dg.MetadataValue.json(publication.runs),
        "published_at": publication.published_at.isoformat(sep=" ", timespec="seconds") + " UTC",
        "levels": dg.MetadataValue.json(publication.levels),
        **published_levels_table(publication.levels, publication.not_applicable, stage_level_keys()),
        **published_kpis(store, version),
        "not_applicable": dg.MetadataValue.json(publication.not_applicable),
        "dagster/row_count": dg.MetadataValue.int(sum(publication.levels.values())),
        "rows_replaced": dg.MetadataValue.json(publication.removed),
        "db_path": dg.MetadataValue.path(store.location.describe()),
    })


def published_kpis(store, version: str) -> dict:
    """The published plan's headline KPIs (fill rate in percent, totals in units), so the asset a
    planner opens last shows them without a click further."""
    try:
        return kpi_totals(store.read_kpis(version, "report"))
    except PlanStoreError:  # the report level is required, so only a store changed under the run lands here
        return {}


def apply_row_guard(context: dg.AssetExecutionContext, store, version: str) -> dict:
    """``PLANS_DB_MAX_ROWS``: after a plan is published, archive then remove the oldest
    unprotected versions until ``plan_series`` is within the limit (never an approved version,
    one with a run in progress, or the version just published). Off when unset."""
    limit = row_guard_limit()
    if not limit:
        return {}
    active = versions_in_progress(context.instance, exclude_run_ids=[context.run.run_id])
    report = enforce_row_guard(store, max_rows=limit, protect={version}, active_versions=active,
                               actor="row_guard")
    for item in report.versions:
        remove_version_partition(context.instance, item["version_id"])
    (context.log.info if report.within_limit else context.log.warning)(report.log_line())
    return row_guard_metadata(report)
