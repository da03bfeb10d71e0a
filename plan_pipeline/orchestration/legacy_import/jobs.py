"""The ``legacy_import`` job and its (default stopped) hourly schedule.

The *legacy import* brings plans of the legacy scpln tool into the plan store; it is not a
Dagster backfill (runs of ``plan_job`` over many ``plan_version`` partitions, launched from the UI).
The job's single op imports the legacy plans
(:func:`plan_pipeline.operations.legacy_backfill.run_legacy_backfill`), then registers every
imported version as a ``plan_version`` partition and records, per stored level, an
``AssetMaterialization`` of the matching plan asset marked ``imported`` so the UI shows the
partition as materialized. It runs in the ``duckdb`` pool.

The schedule reads ``$PLAN_PIPELINE_LEGACY_SOURCE`` when it ticks (skipping when unset) and
never opens the store; it only stats the source's files to request a run when they changed.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from plan_pipeline.operations.legacy_backfill import (
    LEGACY_SOURCE_ENV,
    LegacySourceError,
    configured_legacy_source,
    run_legacy_backfill,
    source_fingerprint,
)
from plan_pipeline.orchestration.plan.assets.published_plan import published_plan
from plan_pipeline.orchestration.plan.assets.stages import stage_level_keys
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_VERSION_PARTITIONS_NAME
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG
from plan_pipeline.orchestration.resources import PlanStoreResource

LEGACY_IMPORT_JOB_NAME = "legacy_import"
LEGACY_IMPORT_OP_NAME = "import_legacy_plans"
LEGACY_IMPORT_SCHEDULE_NAME = "legacy_import_hourly"


class LegacyImportConfig(dg.Config):
    """Launchpad config of the legacy import (opens ready to run on the configured source)."""

    source: str | None = Field(
        default=None,
        description=f"Legacy SQLite plan database, legacy output folder, or a folder holding either. "
        f"Empty: the configured legacy source, ${LEGACY_SOURCE_ENV} of the code location.",
    )
    dry_run: bool = Field(
        default=False,
        description="Report what would be imported (versions, rows per level) and write nothing: no plan "
        "rows, no partitions, no materializations.",
    )
    force: bool = Field(
        default=False,
        description="Re-import versions imported before (their plan rows and artifacts are replaced; audit "
        "events are kept). Native plan versions are never overwritten.",
    )


def _log(context: dg.OpExecutionContext):
    def log(severity: str, message: str) -> None:
        getattr(context.log, severity if severity in ("info", "warning", "error") else "info")(message)

    return log


@dg.op(
    name=LEGACY_IMPORT_OP_NAME,
    pool=DUCKDB_POOL,
    description="Import legacy scpln plan versions (SQLite plan DB and/or output folders) into the plan store, "
    "register them as plan_version partitions and record their levels as imported materializations.",
)
def import_legacy_plans(
    context: dg.OpExecutionContext, config: LegacyImportConfig, plan_store: PlanStoreResource
) -> dg.Output[dict[str, Any]]:
    try:
        source = configured_legacy_source(config.source)
    except LegacySourceError as exc:
        raise dg.Failure(description=f"{exc} (or give `source` in the launchpad config)") from None
    store = plan_store.get_store()
    report = run_legacy_backfill(
        store, source, dry_run=config.dry_run, force=config.force, run_id=context.run_id, log=_log(context)
    )
    summary = report.to_dict()
    if not config.dry_run:
        register_and_mark(context, store, report)
    metadata: dict[str, Any] = {
        "status": report.status,
        "dry_run": config.dry_run,
        "force": config.force,
        "source": report.source,
        **count_metadata(report),
        "versions_skipped": dg.MetadataValue.int(report.skipped),
        "versions_failed": dg.MetadataValue.int(report.failed),
        "duration_ms": dg.MetadataValue.int(int(report.duration_ms or 0)),
        "versions": dg.MetadataValue.md(outcomes_markdown(summary)),
        "db_path": dg.MetadataValue.path(store.location.describe()),
    }
    if report.status == "failed":
        context.log.error(report.message)
        raise dg.Failure(
            description="legacy import failed: " + "\n".join(format_report(summary)), metadata=metadata
        )
    if report.status == "partial":
        context.log.warning(report.message)
    else:
        context.log.info(report.message)
    return dg.Output(summary, metadata=metadata)


def count_metadata(report) -> dict[str, Any]:
    """What the run did, under names that say it: a dry run reports only what it *would* do."""
    if report.dry_run:
        return {"would_import_versions": dg.MetadataValue.int(report.would_import),
                "would_write_rows": dg.MetadataValue.int(report.would_write_rows)}
    return {"versions_imported": dg.MetadataValue.int(report.imported),
            "rows_written": dg.MetadataValue.int(report.rows_written)}


def register_and_mark(context: dg.OpExecutionContext, store, report) -> None:
    """Partitions for imported (and already imported) versions; materializations for new imports."""
    instance = context.instance
    imported = report.imported_versions()
    present = [o.version_id for o in report.outcomes
               if o.status == "imported" or (o.status == "skipped" and o.reason.startswith("already imported"))]
    missing = [v for v in dict.fromkeys(present) if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, v)]
    if missing:
        instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, missing)
        context.log.info(f"registered plan_version partition(s): {', '.join(missing)}")
    if not imported:
        return
    keys = stage_level_keys()
    for outcome in imported:
        levels = {**{lvl: ("plan_series", n) for lvl, n in outcome.series_rows.items()},
                  **{lvl: ("plan_kpis", n) for lvl, n in outcome.kpi_rows.items()}}
        for level, (table, count) in levels.items():
            key = keys.get(level)
            if key is None:
                continue
            context.log_event(dg.AssetMaterialization(
                asset_key=key,
                partition=outcome.version_id,
                description=f"imported from {outcome.origin} by the legacy import",
                metadata={
                    "imported": True,
                    "source": outcome.origin,
                    "legacy_origin": outcome.level_origin.get(level, ""),
                    "dagster/row_count": dg.MetadataValue.int(int(count)),
                    "plan_level": level,
                    "plan_table": table,
                    "plan_version": outcome.version_id,
                    "source_run_id": context.run_id,
                    "db_path": dg.MetadataValue.path(store.location.describe()),
                },
            ))
        # the import wrote the whole plan in one transaction: it is the version's published plan
        rows = {level: int(count) for level, (_, count) in levels.items()}
        context.log_event(dg.AssetMaterialization(
            asset_key=published_plan.key,
            partition=outcome.version_id,
            description=f"imported from {outcome.origin} by the legacy import",
            metadata={
                "imported": True,
                "plan_version": outcome.version_id,
                "published_runs": dg.MetadataValue.json([context.run_id]),
                "levels": dg.MetadataValue.json(rows),
                "dagster/row_count": dg.MetadataValue.int(sum(rows.values())),
                "db_path": dg.MetadataValue.path(store.location.describe()),
            },
        ))


def format_report(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines for a legacy import report dict (CLI output and failure descriptions)."""
    mode = " (dry run: nothing written)" if summary.get("dry_run") else ""
    lines = [f"legacy import from {summary['source']}{mode}, run {summary['run_id']}"]
    for v in summary.get("versions", []):
        status = v["status"].replace("_", " ")
        if v["status"] in ("imported", "would_import"):
            levels = ", ".join(f"{lvl} {n}" for lvl, n in v["series_rows"].items())
            kpis = ", ".join(f"{lvl} {n}" for lvl, n in v["kpi_rows"].items())
            lines.append(f"  {status:<13} {v['version_id']:<28} {v['rows']} rows ({v['reason']})")
            lines.append(f"  {'':<13} {'':<28} series: {levels or '-'}; kpis: {kpis or '-'}; artifacts: {v['artifacts']}")
        else:
            lines.append(f"  {status:<13} {v['version_id']:<28} {v['reason']}")
        for place in v.get("duplicates", []):
            lines.append(f"  {'':<13} {'':<28} also in {place} (not used)")
        for note in v.get("notes", []):
            lines.append(f"  {'':<13} {'':<28} note: {note}")
    for error in summary.get("errors", []):
        lines.append(f"  error: {error}")
    if summary.get("dry_run"):
        head = (f"dry run, nothing written: would import {summary['would_import_versions']} version(s) / "
                f"{summary['would_write_rows']} rows")
    else:
        head = f"imported {summary['versions_imported']} version(s) / {summary['rows_written']} rows"
    lines.append(f"{head}; skipped {summary['versions_skipped']}, failed {summary['versions_failed']}; "
                 f"status {summary['status']}")
    pending = summary["versions_imported"] + summary.get("would_import_versions", 0)
    if pending == 0 and summary["versions_failed"] == 0 and not summary.get("errors"):
        lines.append("nothing to import: every legacy version found is already in the plan store")
    return lines


def outcomes_markdown(summary: dict[str, Any]) -> str:
    lines = ["| version | status | rows | reason |", "|---|---|---|---|"]
    for v in summary.get("versions", []):
        reason = str(v["reason"]).replace("|", "/")
        lines.append(f"| {v['version_id']} | {v['status']} | {v['rows']} | {reason} |")
    return "\n".join(lines)


@dg.job(
    name=LEGACY_IMPORT_JOB_NAME,
    description="Import legacy scpln plans (SQLite plan database, output folders, or a folder of both) as "
    "read-only imported plan versions. Idempotent; dry_run reports without writing; force re-imports.",
    tags={"plan/pipeline": "legacy_import"},
)
def legacy_import_job():
    import_legacy_plans()


@dg.schedule(
    name=LEGACY_IMPORT_SCHEDULE_NAME,
    cron_schedule="0 * * * *",
    job=legacy_import_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=f"Hourly legacy import of ${LEGACY_SOURCE_ENV} (read at tick time; skipped when unset or "
    "unchanged since the last requested run). Stopped by default: start it in the UI.",
)
def legacy_import_schedule(context: dg.ScheduleEvaluationContext):
    try:
        source = configured_legacy_source()
    except LegacySourceError:
        return dg.SkipReason(f"{LEGACY_SOURCE_ENV} is not set: no legacy source to import")
    fingerprint = source_fingerprint(source)
    if fingerprint is None:
        return dg.SkipReason(f"legacy source {source} ({LEGACY_SOURCE_ENV}) does not exist")
    return dg.RunRequest(
        run_key=f"legacy-import-{fingerprint}",
        run_config=legacy_import_run_config(source),
        tags={TRIGGER_TAG: "schedule"},
    )


def legacy_import_run_config(source: str | None, dry_run: bool = False, force: bool = False) -> dict[str, Any]:
    """Run config of ``legacy_import``; ``source`` None leaves the configured legacy source to the op."""
    config: dict[str, Any] = {"dry_run": dry_run, "force": force}
    if source is not None:
        config = {"source": source, **config}
    return {"ops": {LEGACY_IMPORT_OP_NAME: {"config": config}}}


LEGACY_IMPORT_JOBS = [legacy_import_job]
LEGACY_IMPORT_SCHEDULES = [legacy_import_schedule]
