"""``plan-pipeline legacy-import`` and ``plan-pipeline legacy-import-runs``: the legacy import from the shell.

(``backfill`` and ``backfill-runs`` are the old spellings, kept as aliases. The legacy import is
not a Dagster backfill: those are launched from the UI over ``plan_version`` partitions.)

``legacy-import`` runs the ``legacy_import`` job in this process on the project's Dagster
instance (so the run, the registered partitions and the imported materializations show up in
the UI) and prints what happened to every legacy version. Exit status: 0 when the run
succeeded (including "nothing to import" and dry runs), 1 when a version or the source
failed (``partial`` / ``failed``).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from plan_pipeline.cli.arguments import MAX_LISTED, add_command, whole_number
from plan_pipeline.cli.environment import CliEnvironment
from plan_pipeline.cli.errors import CliError
from plan_pipeline.cli.output import abandon, progress
from plan_pipeline.operations.settings import LEGACY_SOURCE_ENV

# The legacy import itself (pandas, DuckDB, Dagster) loads in the commands below, not to parse arguments.


def register_legacy_import_commands(subparsers) -> None:
    """Add ``legacy-import`` and ``legacy-import-runs`` (aliases ``backfill``, ``backfill-runs``) to the
    ``plan-pipeline`` sub-command parser."""
    p = add_command(subparsers,
        "legacy-import",
        aliases=["backfill"],
        help="import legacy scpln plans (SQLite plan database and/or output folders) as read-only versions",
        description="Import every plan version of a legacy scpln source into the plan store as a read-only "
        "'imported' version (runs the legacy_import Dagster job in-process). SOURCE is a legacy SQLite plan "
        "database, a legacy output folder (out_<version>/ with aggregate.json, sku_week.json, mrp.json, "
        "plan_final.json, ...), or a folder holding any of those. Versions already in the store are skipped.",
    )
    p.add_argument("--source", default=None,
                   help=f"legacy database file or folder (default ${LEGACY_SOURCE_ENV})")
    p.add_argument("--dry-run", action="store_true", help="report what would be imported (rows per level); write no plan rows")
    p.add_argument("--force", action="store_true",
                   help="re-import versions imported before (their plan rows and artifacts are replaced; "
                   "audit events are kept; native versions are never overwritten)")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="show Dagster's event log")
    p.set_defaults(func=cmd_legacy_import)

    p = add_command(subparsers, "legacy-import-runs", aliases=["backfill-runs"],
                              help="list legacy import runs (table plan_backfill_runs)")
    p.add_argument("--limit", type=whole_number(1, MAX_LISTED), default=20, help="runs shown (default 20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_legacy_import_runs)


def _out(message: str = "") -> None:
    print(message, flush=True)


def _failure_texts(result) -> list[str]:
    from plan_pipeline.orchestration.plan.run_ledger import error_text

    texts = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE" or event.event_specific_data is None:
            continue
        data = event.event_specific_data
        failure = getattr(data, "user_failure_data", None)
        if failure is not None and failure.description:
            texts.append(failure.description)
            continue
        error = getattr(data, "error", None)
        if error is not None:
            texts.append(f"{event.step_key or 'run'}: {error_text(error)}")
    return texts


def cmd_legacy_import(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.legacy_backfill import LegacySourceError, configured_legacy_source, get_backfill_run
    from plan_pipeline.orchestration.legacy_import.jobs import format_report
    from plan_pipeline.orchestration.legacy_import.launch import run_legacy_import_in_process
    from plan_pipeline.orchestration.plan.launch import RunAborted

    try:
        source = configured_legacy_source(args.source)
    except LegacySourceError:
        raise CliError(f"no legacy source: pass --source PATH or set {LEGACY_SOURCE_ENV}") from None
    mode = " (dry run)" if args.dry_run else (" (force)" if args.force else "")
    progress(f"legacy import{mode} from {source} (in-process run on {env.dagster_home})")
    try:
        result = run_legacy_import_in_process(
            env.instance(), env.store, source, dry_run=args.dry_run, force=args.force,
            log_level="DEBUG" if args.verbose else "CRITICAL",  # the report below says it all
            progress=progress,
        )
    except RunAborted as exc:
        abandon(f"legacy import run {exc.run_id or ''} stopped: {exc}; versions imported before it stopped "
                "are complete, the others were not touched", exc.exit_code)
    if result.success:
        summary: dict[str, Any] = result.summary or {}
        if args.json:
            _out(json.dumps(summary, indent=2, default=str))
        else:
            for line in format_report(summary):
                _out(line)
        return 0 if summary["status"] == "success" else 1
    texts = _failure_texts(result) or ["(see the run in the Dagster UI)"]
    record = get_backfill_run(env.store, result.run_id) if env.store_exists() else None
    if args.json:
        _out(json.dumps({"run_id": result.run_id, "status": (record or {}).get("status", "failed"),
                         "errors": texts, "message": (record or {}).get("message")}, indent=2, default=str))
    else:
        for text in texts:
            _out(text)
    print(f"error: legacy import run {result.run_id} failed", file=sys.stderr, flush=True)
    return 1


def cmd_legacy_import_runs(env: CliEnvironment, args) -> int:
    from plan_pipeline.operations.legacy_backfill import list_backfill_runs

    runs = list_backfill_runs(env.store, args.limit)
    if args.json:
        _out(json.dumps(runs.to_dict("records") if len(runs) else [], indent=2, default=str))
        return 0
    if runs.empty:
        _out("no legacy import runs yet (plan-pipeline legacy-import --source PATH)")
        return 0
    _out(f"{'run id':<36}  {'started':<19}  {'status':<8} {'dry':<3} {'imp':>4} {'skip':>4} {'fail':>4} {'rows':>7} "
         f"{'ms':>7}  source")
    for row in runs.to_dict("records"):
        duration = row["duration_ms"]
        duration = "" if duration is None or duration != duration else str(int(duration))
        _out(f"{row['run_id']:<36}  {str(row['started_at'])[:19]:<19}  {row['status']:<8} "
             f"{'yes' if row['dry_run'] else 'no':<3} {row['versions_imported']:>4} {row['versions_skipped']:>4} "
             f"{row['versions_failed']:>4} {row['rows_written']:>7} {duration:>7}  {row['source']}")
    return 0
