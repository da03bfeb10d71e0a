"""Store maintenance jobs and schedules: backup, trim (retention) and DWH export.

Every op runs in pool ``duckdb``; the schedules open nothing. (The inbox and scheduled
replanning have their own packages: :mod:`plan_pipeline.orchestration.inbox`,
:mod:`plan_pipeline.orchestration.replanning`.)

| definition | kind | default | what |
|---|---|---|---|
| ``plan_store_backup`` / ``plan_store_backup_daily`` | job / schedule 02:00 | **on** | consistent Parquet snapshot, keep 7 |
| ``plan_store_trim`` / ``plan_store_trim_daily`` | job / schedule 02:30 | off | retention policies, archive first |
| ``dwh_export`` / ``dwh_export_weekly`` | job / schedule Mon 04:00 | off | approved versions -> hive-partitioned Parquet |
"""


import dagster as dg
from pydantic import Field

from plan_pipeline.exports.export import DWH_DIR_ENV, export_dwh
from plan_pipeline.operations.backup import BACKUP_DIR_ENV, DEFAULT_KEEP, create_backup
from plan_pipeline.operations.retention import RetentionPolicy, trim_store
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, remove_version_partition
from plan_pipeline.orchestration.plan.run_state import versions_in_progress
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.store import PlanStore


def existing_store(context: dg.OpExecutionContext, plan_store: PlanStoreResource, work: str) -> PlanStore | None:
    """The plan store, or None (said in the run's log) when its file does not exist yet."""
    store = plan_store.get_store()
    if not store.exists():
        context.log.info(f"plan store {store.location.describe()} does not exist yet; nothing to {work}")
        return None
    return store


# ---------------------------------------------------------------------------------- trim
_OFF = " Empty (null) switches this rule off."


class TrimConfig(dg.Config):
    """Retention policy numbers (``null`` switches a rule off) and the dry-run switch. The
    launchpad opens as a dry run: review its report, then launch again with ``dry_run: false``."""

    dry_run: bool = Field(
        default=True,
        description="Report what would be archived and removed, change nothing (the default). Set false to "
        "really trim: versions are archived first, then removed.",
    )
    version_max_age_months: int | None = Field(
        default=RetentionPolicy.version_max_age_months,
        description="Remove draft, superseded and imported plan versions created more than this many months "
        "ago (approved and submitted versions, and versions with a queued or running run, are kept)." + _OFF,
    )
    max_versions: int | None = Field(
        default=RetentionPolicy.max_versions,
        description="Keep at most this many non-approved plan versions; beyond that the oldest (by creation) "
        "go first." + _OFF,
    )
    kpi_max_age_months: int | None = Field(
        default=RetentionPolicy.kpi_max_age_months,
        description="Remove plan_kpis rows computed more than this many months ago (every status)." + _OFF,
    )
    audit_max_age_months: int | None = Field(
        default=RetentionPolicy.audit_max_age_months,
        description="Remove planner-edit audit events (plan_override_events) older than this many months." + _OFF,
    )
    archive_dir: str | None = Field(
        default=None,
        description="Folder for the archives written before anything is removed. Empty: <project home>/archive.",
    )


# A dry run's counts under names that say they are not done: versions_removed -> would_remove_versions, ...
TRIM_DRY_RUN_NAMES = {
    "versions_removed": "would_remove_versions",
    "versions_removed_count": "would_remove_versions_count",
    "rows_removed": "would_remove_rows",
    "kpi_rows_trimmed": "would_trim_kpi_rows",
    "audit_events_trimmed": "would_trim_audit_events",
}


def trim_metadata(report) -> dict:
    counts = {
        "versions_removed": dg.MetadataValue.json(
            [{k: v[k] for k in ("version_id", "status", "created_at", "reasons", "rows", "archive")}
             for v in report.versions]),
        "versions_removed_count": dg.MetadataValue.int(len(report.versions)),
        "rows_removed": dg.MetadataValue.json(report.rows_removed),
        "kpi_rows_trimmed": dg.MetadataValue.int(report.kpi_rows_trimmed),
        "audit_events_trimmed": dg.MetadataValue.int(report.audit_events_trimmed),
    }
    if report.dry_run:
        counts = {TRIM_DRY_RUN_NAMES[name]: value for name, value in counts.items()}
    return {
        "dry_run": report.dry_run,
        **counts,
        "versions_skipped": dg.MetadataValue.json(report.skipped),
        "bytes_before": dg.MetadataValue.int(report.bytes_before),
        "bytes_after": dg.MetadataValue.int(report.bytes_after) if report.bytes_after is not None
        else dg.MetadataValue.null(),
        "bytes_reclaimed": dg.MetadataValue.int(report.bytes_reclaimed) if report.bytes_reclaimed is not None
        else dg.MetadataValue.null(),
        "reclaimed_by": dg.MetadataValue.text(report.reclaimed_by),
        "archive_dir": dg.MetadataValue.path(report.archive_dir),
        "policy": dg.MetadataValue.json(report.policy),
        "leftovers": dg.MetadataValue.json(report.leftovers),
        "report": dg.MetadataValue.md("\n".join(f"* {line}" for line in report.lines())),
    }


@dg.op(pool=DUCKDB_POOL, description="Apply the retention policies: archive, then remove old versions, KPI rows "
       "and audit events; never touches a version with a queued or running run.")
def plan_store_trim_op(context: dg.OpExecutionContext, config: TrimConfig, plan_store: PlanStoreResource) -> dict:
    policy = RetentionPolicy(
        version_max_age_months=config.version_max_age_months,
        max_versions=config.max_versions,
        kpi_max_age_months=config.kpi_max_age_months,
        audit_max_age_months=config.audit_max_age_months,
    )
    store = existing_store(context, plan_store, "trim")
    if store is None:
        return {}
    active = versions_in_progress(context.instance, exclude_run_ids=[context.run_id])
    report = trim_store(store, policy, dry_run=config.dry_run, archive_dir=config.archive_dir,
                        active_versions=active)
    if not config.dry_run:
        for version_id in report.removed_version_ids:
            remove_version_partition(context.instance, version_id)
    for line in report.lines():
        context.log.info(line)
    context.add_output_metadata(trim_metadata(report))
    return report.to_dict()


@dg.job(name="plan_store_trim", description="Retention: archive and remove old plan versions, KPI rows and audit "
        "events (config: dry_run and the policy numbers).")
def plan_store_trim_job():
    plan_store_trim_op()


# The schedule really trims: the job's launchpad defaults to a dry run, the schedule says so explicitly.
TRIM_SCHEDULE_RUN_CONFIG = {"ops": {"plan_store_trim_op": {"config": {"dry_run": False}}}}

plan_store_trim_schedule = dg.ScheduleDefinition(
    name="plan_store_trim_daily",
    job=plan_store_trim_job,
    cron_schedule="30 2 * * *",
    run_config=TRIM_SCHEDULE_RUN_CONFIG,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily 02:30 (after the backup): apply the retention policies with their defaults. Off by default: "
    "review `plan-pipeline trim --dry-run` first.",
)


# ---------------------------------------------------------------------------------- backup
class BackupConfig(dg.Config):
    out_dir: str | None = Field(
        default=None,
        description=f"Folder the backups are written to. Empty: ${BACKUP_DIR_ENV}, else <project home>/backups.",
    )
    keep: int = Field(
        default=DEFAULT_KEEP,
        description="How many of the newest backups to keep; older ones in the folder are removed.",
    )


@dg.op(pool=DUCKDB_POOL, description="Consistent Parquet snapshot of every plan-store table with a manifest; "
       "keeps the newest N backups.")
def plan_store_backup_op(context: dg.OpExecutionContext, config: BackupConfig, plan_store: PlanStoreResource) -> str:
    store = existing_store(context, plan_store, "back up")
    if store is None:
        return ""
    result = create_backup(store, config.out_dir, keep=config.keep)
    tables = result.manifest["tables"]
    context.add_output_metadata({
        "backup": dg.MetadataValue.path(str(result.path)),
        "schema_version": dg.MetadataValue.int(result.manifest["schema_version"]),
        "rows": dg.MetadataValue.json({t: e["rows"] for t, e in tables.items()}),
        "bytes": dg.MetadataValue.int(sum(e["bytes"] for e in tables.values())),
        "removed_backups": dg.MetadataValue.json([str(p) for p in result.removed]),
        "removed_leftovers": dg.MetadataValue.json([str(p) for p in result.leftovers]),
    })
    for line in result.lines():
        context.log.info(line)
    return str(result.path)


@dg.job(name="plan_store_backup", description="Back up the plan store (Parquet per table + manifest).")
def plan_store_backup_job():
    plan_store_backup_op()


plan_store_backup_schedule = dg.ScheduleDefinition(
    name="plan_store_backup_daily",
    job=plan_store_backup_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily 02:00: back up the plan store, keep the newest 7 backups.",
)


# ---------------------------------------------------------------------------------- DWH export
class DwhExportConfig(dg.Config):
    dwh_dir: str | None = Field(
        default=None,
        description=f"DWH folder (hive-partitioned Parquet by version_id). Empty: ${DWH_DIR_ENV}, "
        "else <project home>/dwh.",
    )
    prune: bool = Field(
        default=False,
        description="Also remove version partitions from the DWH folder whose version is no longer approved "
        "in the plan store.",
    )


@dg.op(pool=DUCKDB_POOL, description="Write approved versions' plan_series and plan_kpis as Parquet partitioned "
       "by version_id (hive style).")
def dwh_export_op(context: dg.OpExecutionContext, config: DwhExportConfig, plan_store: PlanStoreResource) -> dict:
    store = existing_store(context, plan_store, "export")
    if store is None:
        return {}
    result = export_dwh(store, config.dwh_dir, prune=config.prune)
    context.add_output_metadata({
        "dwh_dir": dg.MetadataValue.path(str(result.dwh_dir)),
        "versions": dg.MetadataValue.json(result.versions),
        "pruned": dg.MetadataValue.json(result.pruned),
    })
    for line in result.lines():
        context.log.info(line)
    return result.versions


@dg.job(name="dwh_export", description="Export approved plan versions to the DWH folder (hive-partitioned Parquet).")
def dwh_export_job():
    dwh_export_op()


dwh_export_schedule = dg.ScheduleDefinition(
    name="dwh_export_weekly",
    job=dwh_export_job,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays 04:00: export approved versions to $PLAN_PIPELINE_DWH_DIR (default <home>/dwh).",
)


MAINTENANCE_JOBS = [plan_store_trim_job, plan_store_backup_job, dwh_export_job]
MAINTENANCE_SCHEDULES = [plan_store_backup_schedule, plan_store_trim_schedule, dwh_export_schedule]
