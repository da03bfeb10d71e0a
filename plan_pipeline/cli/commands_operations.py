"""``plan-pipeline trim | row-guard | backup | restore | restore-archived | export``: store operations from the shell.

These run in the CLI process (no Dagster run), holding one short connection at a time; the
Dagster jobs of :mod:`plan_pipeline.orchestration.maintenance.jobs` do the same work on schedules.
Refusals raise ``PlanStoreError`` (printed as ``error: ...``, exit status 1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from plan_pipeline.cli.arguments import add_command
from plan_pipeline.cli.environment import CliEnvironment


def _out(message: str = "") -> None:
    print(message, flush=True)


def _err(message: str) -> None:
    print(f"[plan-pipeline] {message}", file=sys.stderr, flush=True)


def _whole_or_off(high: int):
    """An argparse type: a whole number from 0 to ``high``, or 'off' (the rule switched off)."""
    def parse(value: str) -> int | None:
        if value.lower() in ("off", "none"):
            return None
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number or 'off', got {value!r}") from None
        if number < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        if number > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}")
        return number

    return parse


_months = _whole_or_off(1200)  # a century of calendar months
_versions_kept = _whole_or_off(10**9)


def _rows(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative (0 switches the row guard off)")
    return number


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _actor(args) -> str:
    return getattr(args, "actor", None) or os.environ.get("PLAN_PIPELINE_ACTOR") or os.environ.get("USER") or "system"


# ---------------------------------------------------------------------------------- runs in progress
def _runs_in_progress(env: CliEnvironment) -> dict[str, str]:
    """``{plan version: run id}`` of the queued or running plan runs on this project's instance.

    The one place the maintenance commands ask which runs may be writing the store; runs whose
    process is gone are recovered first (docs/operations.md, "After a crash"), so a crashed run
    never blocks maintenance."""
    from plan_pipeline.orchestration.plan.run_state import versions_in_progress

    return versions_in_progress(env.recovered_instance(log=_err))


def _refuse_while_runs_write(env: CliEnvironment, action: str) -> None:
    """Raise ``PlanStoreError`` naming the runs when any plan run is queued or running."""
    from plan_pipeline.store import PlanStoreError

    active = _runs_in_progress(env)
    if active:
        runs = ", ".join(f"run {run_id} (version {version})" for version, run_id in sorted(active.items()))
        raise PlanStoreError(f"{action} refused: plan runs are in progress: {runs}; wait for them to finish "
                             f"(or cancel them) and run {action} again")


def _drop_partitions_of_removed(env: CliEnvironment, instance, removed: list[str], archive_dir) -> None:
    """Remove the ``plan_version`` partitions of removed versions, and of archived versions no
    longer in the store whose partition a crashed removal left behind."""
    from plan_pipeline.operations.retention import list_archived_versions
    from plan_pipeline.orchestration.plan.partitions import remove_version_partition

    stale = set(removed)
    archived = {item["version_id"] for item in list_archived_versions(archive_dir)} - stale
    if archived:
        present = {v.version_id for v in env.store.list_versions()}
        stale |= archived - present
    for version_id in sorted(stale):
        remove_version_partition(instance, version_id)


# ---------------------------------------------------------------------------------- trim
def cmd_trim(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.retention import RetentionPolicy, trim_store

    policy = RetentionPolicy(
        version_max_age_months=args.version_max_age_months,
        max_versions=args.max_versions,
        kpi_max_age_months=args.kpi_max_age_months,
        audit_max_age_months=args.audit_max_age_months,
    )
    report = trim_store(env.store, policy, dry_run=args.dry_run, archive_dir=args.archive_dir,
                        active_versions=_runs_in_progress(env), actor=_actor(args))
    if not args.dry_run:
        _drop_partitions_of_removed(env, env.instance(), report.removed_version_ids, report.archive_dir)
    return _print_report(report, args.json)


def _print_report(report, as_json: bool) -> int:
    """A maintenance report as JSON (``--json``) or as its lines."""
    if as_json:
        _out(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        for line in report.lines():
            _out(line)
    return 0


def cmd_row_guard(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.retention import enforce_row_guard, row_guard_limit

    limit = args.max_rows if args.max_rows is not None else row_guard_limit()
    report = enforce_row_guard(env.store, max_rows=limit, active_versions=_runs_in_progress(env) if limit else {},
                               archive_dir=args.archive_dir, dry_run=args.dry_run, actor=_actor(args))
    if report.versions and not args.dry_run:
        _drop_partitions_of_removed(env, env.instance(), report.removed_version_ids, report.archive_dir)
    return _print_report(report, args.json)


def cmd_restore_archived(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.retention import list_archived_versions, restore_archived_version

    if args.version_id is None:
        archived = list_archived_versions(args.archive_dir)
        if not archived:
            _out("no archived versions")
        for item in archived:
            _out(f"{item['version_id']:<24} {item['status']:<10} created {item['created_at']}  "
                 f"archived {item['archived_at']}  {item['path']}")
        return 0
    from plan_pipeline.orchestration.plan.partitions import register_version_partition  # Dagster: only to restore

    rows = restore_archived_version(env.store, args.version_id, args.archive_dir, actor=_actor(args))
    register_version_partition(env.instance(), args.version_id)
    _out(f"restored plan version {args.version_id!r}: " + ", ".join(f"{t} {n}" for t, n in rows.items() if n))
    return 0


# ---------------------------------------------------------------------------------- backup / restore
def cmd_backup(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.backup import create_backup

    result = create_backup(env.store, args.out, keep=args.keep)
    for line in result.lines():
        _out(line)
    return 0


def cmd_restore(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.backup import restore_backup, restore_backup_into_postgres
    from plan_pipeline.orchestration.plan.partitions import register_version_partition

    def guard() -> None:
        _refuse_while_runs_write(env, "restore")

    if env.postgres is not None:  # into the empty database $PLAN_STORE_URL names (no file to swap)
        result = restore_backup_into_postgres(args.backup_dir, env.postgres, force=args.force, guard=guard)
    else:
        result = restore_backup(args.backup_dir, env.db_path, force=args.force, guard=guard)
    for line in result.lines():
        _out(line)
    instance = env.instance()
    versions = env.store.list_versions()
    for version in versions:  # the instance may be new: make every restored version a partition again
        register_version_partition(instance, version.version_id)
    _out(f"{len(versions)} plan version(s) registered as plan_version partitions")
    return 0


# ---------------------------------------------------------------------------------- export
def cmd_export(env: CliEnvironment, args) -> int:
    from plan_pipeline.exports.export import export_version

    result = export_version(env.store, args.version_id, args.format, args.out, actor=_actor(args))
    for line in result.lines():
        _out(line)
    return 0


def register_operations_commands(subparsers) -> None:
    """Add ``trim``, ``row-guard``, ``backup``, ``restore``, ``restore-archived`` and ``export`` to ``plan-pipeline``."""
    from plan_pipeline.exports.formats import EXPORT_FORMATS
    from plan_pipeline.operations.settings import BACKUP_DIR_ENV, DEFAULT_KEEP, RetentionPolicy

    policy = RetentionPolicy()  # the defaults

    p = add_command(subparsers,
        "trim",
        help="apply the retention policies (archive, then remove old versions, KPI rows, audit events)",
        description="Remove draft/superseded/imported versions older than --version-max-age-months, keep at most "
        "--max-versions non-approved versions (oldest first), remove KPI rows and audit events older than their "
        "limits. Approved versions are never removed; a version with a queued or running Dagster run is skipped. "
        "Every removed version is first archived as Parquet under --archive-dir (restore with "
        "'plan-pipeline restore-archived V'). Months are calendar months; 'off' disables a rule.",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be removed; change nothing")
    p.add_argument("--version-max-age-months", type=_months, default=policy.version_max_age_months, metavar="N|off",
                   help=f"default {policy.version_max_age_months}")
    p.add_argument("--max-versions", type=_versions_kept, default=policy.max_versions, metavar="N|off",
                   help=f"non-approved versions kept (default {policy.max_versions})")
    p.add_argument("--kpi-max-age-months", type=_months, default=policy.kpi_max_age_months, metavar="N|off",
                   help=f"default {policy.kpi_max_age_months}")
    p.add_argument("--audit-max-age-months", type=_months, default=policy.audit_max_age_months, metavar="N|off",
                   help=f"default {policy.audit_max_age_months}")
    p.add_argument("--archive-dir", help="where removed versions are archived (default <home>/archive)")
    p.add_argument("--actor", help="recorded in the archives (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_trim)

    p = add_command(subparsers,
        "row-guard",
        help="keep plan_series within PLANS_DB_MAX_ROWS rows (archive, then remove the oldest versions)",
        description="When plan_series holds more rows than --max-rows (default $PLANS_DB_MAX_ROWS; unset or 0 = "
        "off), archive and remove the oldest versions (created_at, then version id) until it fits. Approved "
        "versions and versions with a queued or running run are never removed. Plan runs apply the same guard "
        "after they publish a plan; this command runs it by hand. Restore with 'plan-pipeline restore-archived V'.",
    )
    p.add_argument("--max-rows", type=_rows, default=None, metavar="N",
                   help="row limit (default $PLANS_DB_MAX_ROWS; 0 = off)")
    p.add_argument("--dry-run", action="store_true", help="report what would be removed; change nothing")
    p.add_argument("--archive-dir", help="where removed versions are archived (default <home>/archive)")
    p.add_argument("--actor", help="recorded in the archives (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_row_guard)

    p = add_command(subparsers, "restore-archived", help="put an archived (trimmed or deleted) version back "
                              "(or list archived versions)")
    p.add_argument("version_id", nargs="?", help="omit to list the archive")
    p.add_argument("--actor", help="recorded in the audit trail (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.add_argument("--archive-dir", help="default <home>/archive")
    p.set_defaults(func=cmd_restore_archived)

    p = add_command(subparsers,
        "backup", help="consistent snapshot of the plan store (Parquet per table + manifest.json)",
        description="Write every table to <out>/plan-store-<UTC stamp>/ as Parquet with a manifest (schema "
        "version, rows and sha256 per table, sequences), read in one transaction; then keep the newest --keep "
        "backups in <out>.",
    )
    p.add_argument("--out", help=f"backup folder (default ${BACKUP_DIR_ENV} or <home>/backups)")
    p.add_argument("--keep", type=_positive, default=DEFAULT_KEEP, help=f"backups kept (default {DEFAULT_KEEP})")
    p.set_defaults(func=cmd_backup)

    p = add_command(subparsers,
        "restore", help="restore a backup into an empty or new plan store (--db TARGET)",
        description="Rebuild the plan store at --db (default the project store) from a backup folder. Refuses a "
        "store that holds rows unless --force (the old file is kept as <file>.pre-restore-<stamp>), and refuses "
        "to replace an existing store while a plan run is queued or running (the run ids are named). With "
        "PLAN_STORE_URL=postgresql://... the backup of a PostgreSQL store is loaded into that database, which "
        "must be empty (no --force: create a new database, restore into it, then point PLAN_STORE_URL at it).",
    )
    p.add_argument("backup_dir", metavar="DIR", help="a plan-store-<stamp> folder written by 'backup'")
    p.add_argument("--force", action="store_true", help="replace a non-empty store (kept beside it)")
    p.set_defaults(func=cmd_restore)

    from plan_pipeline.cli.arguments import ACTOR, path_arg

    p = add_command(subparsers,
        "export", help="write a version from the store (csv, json, parquet or the reference file set) + manifest",
        description="Write one plan version into --out with manifest.json (version, status, parameters, input-set "
        "hash, schema version, rows and sha256 per file). An unknown or never-materialized version is an error.",
    )
    p.add_argument("version_id")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="reference")
    p.add_argument("--out", required=True, type=path_arg,
                   help="a new or empty folder, or one holding an earlier export of the same version (replaced)")
    p.add_argument("--actor", type=ACTOR,
                   help="recorded with the export audit event (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.set_defaults(func=cmd_export)
