"""``plan-pipeline``: everything a script or a planner does, from the shell.

Exit codes: 0 success, 1 a refused or failed operation (one line ``error: ...`` on stderr, never
a traceback), 2 bad usage, 130 interrupted (Ctrl-C), 141 stdout closed by its reader
(``plan-pipeline version list | head -1``). ``PLAN_PIPELINE_DEBUG=1`` adds the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources as importlib_resources
from pathlib import Path

from plan_pipeline.cli.arguments import DB_HELP, HOME_HELP, NOTE, PORT, add_command, host_arg, path_arg, whole_number
from plan_pipeline.cli.commands_api import add_api_commands
from plan_pipeline.cli.environment import CliEnvironment, require_folder_location, resolve_environment
from plan_pipeline.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    CliError,
    UsageError,
    error_message,
    exit_code,
    report_failure,
    silence_stdout,
)
from plan_pipeline.cli.output import abandon, out, progress
from plan_pipeline.planning.parameters import ParameterError, PlanningParameters, parameter_specs
from plan_pipeline.planning.vocabulary import SCORECARD_LEVEL


# ---------------------------------------------------------------------------- parameters
def add_planning_parameter_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field of the parameter model (the reference driver's names and defaults):
    name, type, choices, default and help all come from :class:`PlanningParameters`."""
    g = parser.add_argument_group("planning parameters (reference driver flags)")
    for spec in parameter_specs():
        rule = spec.rule
        default = f" (default {spec.default:g})" if isinstance(spec.default, float) else (
            f" (default {spec.default})" if spec.default not in (None, False) else "")
        help_text = spec.description + (f", {spec.bounds_text}" if spec.bounds_text else "") + default
        if rule.kind == "flag":
            g.add_argument(spec.cli_flag, dest=spec.name, action="store_true", default=spec.default, help=help_text)
            continue
        choices = rule.choices if rule.kind == "choice" and spec.cli_choices else None
        if rule.kind == "choice" and not spec.cli_choices:
            help_text += f" ({' | '.join(rule.choices)})"
        g.add_argument(spec.cli_flag, dest=spec.name, type=spec.python_type, choices=choices, default=spec.default,
                       help=help_text)


def parameters_from_args(args: argparse.Namespace) -> PlanningParameters:
    try:
        return PlanningParameters(**{spec.name: getattr(args, spec.name) for spec in parameter_specs()})
    except ParameterError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------------------- inputs
def cmd_inputs_validate(env: CliEnvironment, args) -> int:
    from plan_pipeline.inputs.validation import validate_input_dir

    report = validate_input_dir(args.dir)
    for issue in report.errors:
        out(f"error: {issue}")
    for issue in report.warnings:
        out(f"warning: {issue}")
    out(f"{args.dir}: {report.error_count} error(s), {report.warning_count} warning(s)")
    return 0 if report.ok else 1


def cmd_inputs_import(env: CliEnvironment, args) -> int:
    from plan_pipeline.inputs.importer import import_input_dir
    from plan_pipeline.inputs.validation import InputValidationError

    try:
        outcome = import_input_dir(env.store, args.dir, args.label)
    except InputValidationError as exc:
        raise CliError(f"input set not imported, nothing was stored:\n{exc}") from None
    for warning in outcome.report.warnings if outcome.report else []:
        out(f"warning: {warning}")
    if outcome.status == "unchanged":
        out(f"input set {outcome.label!r} already holds this content ({outcome.content_hash[:12]}); nothing to do")
    else:
        rows = ", ".join(f"{k} {v}" for k, v in outcome.rows.items() if v)
        out(f"imported input set {outcome.label!r} ({outcome.content_hash[:12]}): {rows}")
    return 0


def cmd_inputs_list(env: CliEnvironment, args) -> int:
    sets = env.store.list_input_sets() if env.store_exists() else []
    if args.json:
        out(json.dumps([{**s, "imported_at": str(s["imported_at"])} for s in sets], indent=2))
        return 0
    if not sets:
        out("no input sets yet (plan-pipeline inputs import DIR --label L)")
    for s in sets:
        out(f"{s['label']:<24} {s['content_hash'][:12]}  {s['imported_at']:%Y-%m-%d %H:%M}  {s['source_path'] or ''}")
    return 0


# ---------------------------------------------------------------------------- versions
def default_version_id() -> str:
    from plan_pipeline.store.versions import generated_version_id

    return generated_version_id()


def cmd_version_create(env: CliEnvironment, args) -> int:
    from plan_pipeline.orchestration.versions.create import create_registered_version

    params = parameters_from_args(args)
    version_id = default_version_id() if args.version_id is None else args.version_id
    instance = env.instance()  # a bad Dagster home fails before the version is stored
    record = create_registered_version(env.store, instance, version_id, args.input_set, params, note=args.note,
                                       source="cli")
    out(f"created plan version {record.version_id!r} on input set {record.input_set!r} (status {record.status})")
    return 0


def cmd_version_duplicate(env: CliEnvironment, args) -> int:
    from plan_pipeline.cli.commands_planner import _actor
    from plan_pipeline.orchestration.plan.partitions import register_version_partition

    if args.id is not None:
        from plan_pipeline.store.rules import check_identifier

        check_identifier("version id", args.id)
    instance = env.instance()  # a bad Dagster home fails before the version is stored
    record = env.store.duplicate_version(args.source, args.id, note=args.note, actor=_actor(args), source="cli")
    register_version_partition(instance, record.version_id)
    overrides = len(env.store.detail_overrides(record.version_id))
    out(f"created plan version {record.version_id!r} as a duplicate of {args.source!r} on input set "
        f"{record.input_set!r} (status {record.status}, {overrides} planner edit(s)/lock(s) carried over; "
        f"plan it with: plan-pipeline materialize {record.version_id})")
    return 0


def cmd_version_list(env: CliEnvironment, args) -> int:
    versions = env.store.list_versions() if env.store_exists() else []
    if args.json:
        out(json.dumps([v.to_dict() for v in versions], indent=2))
        return 0
    if not versions:
        out("no plan versions yet (plan-pipeline version create --input-set L)")
        return 0
    out(f"{'version':<24} {'status':<10} {'input set':<20} {'created':<17} parameters")
    for v in versions:
        p = v.params
        extras = [f"round={p.round_mode}"]
        if p.anchor_policy or p.preset:
            extras.append(f"policy={p.anchor_policy or p.preset}")
        if p.cutover_date:
            extras.append(f"cutover={p.cutover_date}")
        if v.read_only:
            extras.append("read-only")
        out(f"{v.version_id:<24} {v.status:<10} {v.input_set!s:<20} {v.created_at:%Y-%m-%d %H:%M}  {' '.join(extras)}")
    return 0


def published_scorecard(store, version_id: str) -> list[tuple[str, float, str]]:
    """The published scorecard's totals (docs/kpis.md); none before a plan with a scorecard is published."""
    from plan_pipeline.planning.kpis import scorecard_totals  # pandas: loaded by the commands that read KPIs
    if not store.has_kpis(version_id, SCORECARD_LEVEL):
        return []
    return scorecard_totals(store.read_kpis(version_id, SCORECARD_LEVEL))


def cmd_version_show(env: CliEnvironment, args) -> int:
    from plan_pipeline.planning.kpis import format_kpi

    store = env.store
    record = store.get_version(args.version_id)
    info = record.to_dict()
    info["scorecard"] = {name: {"value": value, "unit": unit, "display": format_kpi(unit, value)}
                         for name, value, unit in published_scorecard(store, args.version_id)}
    info["levels"] = store.series_levels(args.version_id)
    publication = store.publication(args.version_id)
    info["plan"] = {
        "complete": publication["complete"],
        "published_by_runs": publication["runs"],
        "published_at": publication["published_at"],
        "not_applicable": publication["not_applicable"],
        "kpi_levels": publication["kpi_levels"],
        "runs_staged_not_published": publication["staged_runs"],
    }
    jobs = store.list_jobs(args.version_id)
    info["jobs"] = [
        {k: (None if str(v) in ("NaT", "nan", "None") else str(v)) for k, v in row.items() if k in
         ("job_id", "status", "trigger", "submitted_at", "duration_ms", "error")}
        for row in jobs.head(10).to_dict("records")
    ]
    out(json.dumps(info, indent=2, default=str))
    return 0


def cmd_version_delete(env: CliEnvironment, args) -> int:
    from plan_pipeline.cli.commands_planner import _actor, refuse_while_running
    from plan_pipeline.orchestration.plan.partitions import remove_version_partition

    refuse_while_running(env, args.version_id, "deleting it")
    if args.admin:
        from plan_pipeline.operations.retention import archive_and_remove_versions

        if not args.reason:
            raise CliError("version delete --admin needs --reason TEXT (kept with the archive, the tombstone "
                           "and the audit trail)")
        env.store.get_version(args.version_id)  # a clear error for an unknown version
        item = archive_and_remove_versions(env.store, [args.version_id], reason=args.reason, actor=_actor(args),
                                           archive_dir=args.archive_dir, operation="delete")[0]
        removed = item["rows"]
        out(f"archived plan version {args.version_id!r} to {item['archive']} "
            f"(restore with: plan-pipeline restore-archived {args.version_id})")
    else:
        removed = env.store.delete_version(args.version_id, actor=_actor(args),
                                           reason=args.reason or "deleted with plan-pipeline version delete")
    remove_version_partition(env.instance(), args.version_id)
    detail = ", ".join(f"{t} {n}" for t, n in removed.items() if n)
    out(f"deleted plan version {args.version_id!r} ({detail})")
    return 0


# ---------------------------------------------------------------------------- runs
def run_version(env: CliEnvironment, version_id: str, verbose: bool = False, trigger: str = "cli"):
    from plan_pipeline.orchestration.plan.launch import RunAborted, materialize_version

    record = env.store.get_version(version_id)
    if record.read_only:
        raise CliError(f"plan version {version_id!r} is read-only ({record.source or 'imported'}): "
                       "its inputs are unknown, it cannot be recomputed")
    if record.status in ("approved", "superseded"):
        raise CliError(f"plan version {version_id!r} is {record.status}: its plan is frozen; "
                       "create a new version to re-plan")
    progress(f"materializing plan version {version_id!r} (in-process run on {env.dagster_home})")
    started = time.monotonic()
    try:
        outcome = materialize_version(
            # Dagster's own log only with -v: a failed run is summarised below in a few lines
            env.instance(), env.store, version_id, trigger=trigger, log_level="DEBUG" if verbose else "CRITICAL",
            progress=progress,
        )
    except RunAborted as exc:
        run = f"run {exc.run_id} for " if exc.run_id else ""
        abandon(f"{run}plan version {version_id!r} stopped: {exc}; the version keeps its previous plan",
                exc.exit_code)
    elapsed = time.monotonic() - started
    if not outcome.success:
        if any("DagsterExecutionInterruptedError" in error for error in outcome.errors):
            raise KeyboardInterrupt  # Ctrl-C during the run: main() reports "interrupted", exit 130
        details = "\n".join(f"  {e}" for e in outcome.errors) or "  (see the run in the Dagster UI)"
        raise CliError(f"run {outcome.run_id} for version {version_id!r} failed after {elapsed:.1f}s:\n{details}")
    progress(f"run {outcome.run_id} succeeded in {elapsed:.1f}s")
    return outcome


def cmd_materialize(env: CliEnvironment, args) -> int:
    outcome = run_version(env, args.version_id, verbose=args.verbose)
    levels = env.store.series_levels(args.version_id)
    out(f"run {outcome.run_id}: " + ", ".join(f"{lvl} {n} rows" for lvl, n in levels.items()))
    return 0


def unique_version_id(store, wanted: str | None) -> str:
    return wanted if wanted is not None else store.free_version_id()


def cmd_plan(env: CliEnvironment, args) -> int:
    import re

    from plan_pipeline.exports.reference import export_reference
    from plan_pipeline.inputs.importer import content_hash, import_input_dir
    from plan_pipeline.inputs.validation import InputValidationError
    from plan_pipeline.orchestration.plan.partitions import register_version_partition
    from plan_pipeline.store.repository import check_identifier

    params = parameters_from_args(args)
    folder = Path(args.input_dir)
    if not folder.is_dir():
        raise CliError(f"input folder {folder} does not exist")
    require_folder_location(Path(args.output_dir).resolve(), "output folder (-o)")
    store = env.store
    env.check_dagster_home()  # a bad Dagster home fails before anything is imported (nothing created)
    if args.version_id is not None:  # refuse before anything is imported
        check_identifier("version id", args.version_id)
        if store.exists() and store.find_version(args.version_id) is not None:
            raise CliError(f"plan version {args.version_id!r} already exists")
    digest, _ = content_hash(folder)
    label = args.input_set or f"{re.sub(r'[^A-Za-z0-9._-]+', '-', folder.resolve().name).strip('.-')[:40] or 'inputs'}-{digest[:10]}"
    try:
        outcome = import_input_dir(store, folder, label)
    except InputValidationError as exc:
        raise CliError(f"inputs rejected, nothing was stored:\n{exc}") from None
    progress(f"input set {label!r} {outcome.status}")
    for warning in outcome.report.warnings if outcome.report else []:
        progress(f"warning: {warning}")
    version_id = unique_version_id(store, args.version_id)
    instance = env.instance()  # before the version is stored: no version without its partition
    store.create_version(version_id, label, params, source="plan")
    register_version_partition(instance, version_id)
    progress(f"created plan version {version_id!r}")
    run_version(env, version_id, verbose=args.verbose)
    for path in export_reference(store, version_id, args.output_dir, log_label=args.version_id):
        out(f"[ok] wrote {path}")
    out(f"[ok] pipeline completed. outputs in {Path(args.output_dir).resolve()} (plan version {version_id})")
    return 0


def cmd_jobs_list(env: CliEnvironment, args) -> int:
    jobs = env.store.list_jobs(args.version) if env.store_exists() else None
    if jobs is None or jobs.empty:
        out("no plan runs recorded yet")
        return 0
    for row in jobs.to_dict("records"):
        duration = "" if row["duration_ms"] != row["duration_ms"] or row["duration_ms"] is None else f"{row['duration_ms'] / 1000:.1f}s"
        version = row["version_id"] if isinstance(row["version_id"], str) else "-"  # runs of no version: trim, backup, ...
        out(f"{row['job_id']}  {version:<20} {row['status']:<9} {row['trigger']!s:<9} "
            f"{str(row['submitted_at'])[:19]}  {duration:<8} {row['job_name']}")
    return 0


def cmd_jobs_sync(env: CliEnvironment, args) -> int:
    from plan_pipeline.orchestration.plan.run_ledger import sync_run_ledger

    written = sync_run_ledger(env.instance(), env.store)
    out(f"run ledger (plan_jobs): {written} row(s) recorded from the Dagster instance")
    return 0


def cmd_runs_backfill(env: CliEnvironment, args) -> int:
    from plan_pipeline.orchestration.plan.backfill import BackfillRefused, submit_version_backfill

    try:
        backfill_id = submit_version_backfill(env.instance(), env.store, args.version_ids, title=args.title)
    except BackfillRefused as exc:
        raise CliError(f"{exc}; no backfill submitted") from None
    progress(f"backfill {backfill_id} of {len(set(args.version_ids))} plan version(s) submitted to {env.dagster_home}: "
             "the Dagster daemon launches one run per version (dagster-daemon must be running)")
    out(backfill_id)
    return 0


# ---------------------------------------------------------------------------- sample and demo
#: sample-inputs bounds: 50x the largest benchmark (20,000 SKUs) and a century of months.
MAX_SAMPLE_SKUS = 1_000_000
MAX_SAMPLE_MONTHS = 1200


def bundled_sample_dir() -> Path:
    return Path(str(importlib_resources.files("plan_pipeline").joinpath("sample_data", "sample_plan")))


def cmd_sample_inputs(env: CliEnvironment, args) -> int:
    from plan_pipeline.inputs.sample import generate_sample_inputs

    if args.families * args.skus_per_family > MAX_SAMPLE_SKUS:
        raise UsageError(f"sample-inputs: --families x --skus-per-family is {args.families * args.skus_per_family:,} "
                         f"SKUs; at most {MAX_SAMPLE_SKUS:,}")
    require_folder_location(Path(args.out).resolve(), "sample folder (--out)")
    started = time.monotonic()
    summary = generate_sample_inputs(
        args.out,
        families=args.families,
        skus_per_family=args.skus_per_family,
        months=args.months,
        components_per_sku=args.components_per_sku,
        seed=args.seed,
    )
    out(f"wrote sample inputs to {args.out} in {time.monotonic() - started:.1f}s")
    out(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_demo(env: CliEnvironment, args) -> int:
    from plan_pipeline.inputs.importer import import_input_dir
    from plan_pipeline.orchestration.plan.partitions import register_version_partition

    store = env.store
    instance = env.instance()  # a bad Dagster home fails before anything is imported
    sample = bundled_sample_dir()
    progress(f"importing the bundled sample {sample}")
    outcome = import_input_dir(store, sample, "sample")
    progress(f"input set 'sample' {outcome.status} ({outcome.content_hash[:12]})")
    existing = store.taken_version_ids()
    version_id = "demo"
    n = 1
    while version_id in existing:
        n += 1
        version_id = f"demo-{n}"
    store.create_version(version_id, "sample", PlanningParameters(), note="plan-pipeline demo", source="demo")
    register_version_partition(instance, version_id)
    progress(f"created plan version {version_id!r}")
    outcome = run_version(env, version_id, verbose=args.verbose, trigger="cli")
    levels = store.series_levels(version_id)
    out("")
    out(f"plan version : {version_id}")
    out(f"run id       : {outcome.run_id}")
    out(f"plan store   : {env.store_description}")
    out("rows per level:")
    for level, count in levels.items():
        out(f"  {level:<28} {count}")
    scorecard = published_scorecard(store, version_id)
    if scorecard:
        from plan_pipeline.planning.kpis import format_kpi

        out("scorecard    : " + ", ".join(f"{name}={format_kpi(unit, value)}" for name, value, unit in scorecard))
    try:
        kpis = store.read_kpis(version_id, "report")
        totals = kpis[(kpis["category"] == "plan") & (kpis["bucket_type"] == "total")]
        if not totals.empty:
            out(f"  {'plan_kpis (report)':<28} {len(kpis)}")
            shown = [f"{r.metric}={r.value:.1%}" if r.unit == "ratio" else f"{r.metric}={r.value:,.0f}"
                     for r in totals.itertuples()]
            out("plan KPIs    : " + ", ".join(shown))
    except Exception:
        pass
    out("")
    out("open the Dagster UI on this instance with:")
    out(f"  plan-pipeline --home {env.home} ui")
    out(f"  (or: DAGSTER_HOME={env.dagster_home} {env.store_setting} dagster dev -w workspace.yaml -h 127.0.0.1)")
    return 0


def cmd_ui(env: CliEnvironment, args) -> int:
    env.prepare_dagster_home()
    workspace = Path(args.workspace).resolve() if args.workspace else None
    if not (workspace and workspace.is_file()):
        # outside the repository: the same code location (name included, so CLI runs stay on it)
        from plan_pipeline.orchestration.code_location import workspace_yaml

        workspace = env.dagster_home / "workspace.yaml"
        workspace.write_text(workspace_yaml())
    cmd = [sys.executable, "-m", "dagster", "dev", "-h", args.host, "-p", str(args.port), "-w", str(workspace)]
    progress(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={env.dagster_home}, store {env.store_description})")
    os.execvpe(cmd[0], cmd, os.environ.copy())
    return 0


def cmd_worker_start(env: CliEnvironment, args) -> int:
    """Replace this process with a Celery worker executing plan steps (docs/deployment.md)."""
    from plan_pipeline.deployment.celery_worker import worker_command

    env.prepare_dagster_home()
    cmd = worker_command(args.name, concurrency=args.concurrency, loglevel=args.loglevel)
    progress(f"Celery worker {args.name} (DAGSTER_HOME={env.dagster_home}, store {env.store_description})")
    os.execvpe(cmd[0], cmd, os.environ.copy())
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plan-pipeline",
        description="Supply-chain planning (S&OP / PSI) on Dagster and DuckDB.",
    )
    parser.add_argument("--home", help=HOME_HELP)
    parser.add_argument("--db", help=DB_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p_inputs = add_command(sub, "inputs", help="validate and import input sets")
    s_inputs = p_inputs.add_subparsers(dest="inputs_command", metavar="ACTION", required=True)
    p = add_command(s_inputs, "validate", help="check an input folder; prints every error and warning")
    p.add_argument("dir", type=path_arg)
    p.set_defaults(func=cmd_inputs_validate)
    p = add_command(s_inputs, "import", help="validate and store an input folder as an immutable input set")
    p.add_argument("dir", type=path_arg)
    p.add_argument("--label", required=True, help="input set label (A-Z a-z 0-9 . _ -)")
    p.set_defaults(func=cmd_inputs_import)
    p = add_command(s_inputs, "list", help="list stored input sets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inputs_list)

    p_version = add_command(sub, "version", help="create, list, show and delete plan versions")
    s_version = p_version.add_subparsers(dest="version_command", metavar="ACTION", required=True)
    p = add_command(s_version, "create", help="create a plan version (a plan_version partition) on an input set")
    p.add_argument("--input-set", required=True)
    p.add_argument("--version-id", help="default: v<UTC timestamp>")
    p.add_argument("--note", type=NOTE)
    add_planning_parameter_flags(p)
    p.set_defaults(func=cmd_version_create)
    p = add_command(s_version, "duplicate", help="a new draft with a version's input set, parameters and planner "
                    "edits/locks", description="Copy a version (any status except imported read-only) into a new "
                    "draft in one transaction: input set, parameters and planner edits/locks carried over, plan empty "
                    "until it is materialized. Its audit trail starts with a 'duplicate' event naming the source.")
    p.add_argument("source", help="the version to copy")
    p.add_argument("--id", help="the new version id (default: v<UTC timestamp>, the next free one)")
    p.add_argument("--note", type=NOTE)
    p.add_argument("--actor", help="who (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.set_defaults(func=cmd_version_duplicate)
    p = add_command(s_version, "list", help="list plan versions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_version_list)
    p = add_command(s_version, "show", help="a version's parameters, levels and recent runs")
    p.add_argument("version_id")
    p.set_defaults(func=cmd_version_show)
    p = add_command(s_version, "delete", help="delete a draft or submitted version and all its rows (explicit cascade)",
                             description="Delete a version and everything that hangs off it in one transaction. "
                             "Frozen versions (approved, superseded, imported) are refused unless --admin, which "
                             "archives first. Refused while a run of the version is in progress. The id is never "
                             "reused: its tombstone and a 'delete' event in the audit trail remain.")
    p.add_argument("version_id")
    p.add_argument("--reason", help="why (kept with the tombstone and the audit event)")
    p.add_argument("--actor", help="who (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.add_argument("--admin", action="store_true",
                   help="administrator delete: archive the version first (restorable with restore-archived); "
                   "the only way to delete an approved, superseded or imported version; needs --reason")
    p.add_argument("--archive-dir", help="with --admin: where the archive goes (default <home>/archive)")
    p.set_defaults(func=cmd_version_delete)

    p = add_command(sub, "materialize", help="run every plan asset of a version in-process on the shared instance")
    p.add_argument("version_id")
    p.add_argument("-v", "--verbose", action="store_true", help="show Dagster's event log")
    p.set_defaults(func=cmd_materialize)

    p_jobs = add_command(sub, "runs", aliases=["jobs"], help="plan runs recorded in the run ledger (table plan_jobs)")
    s_jobs = p_jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    p = add_command(s_jobs, "list", help="list recorded runs (job_id = Dagster run id)")
    p.add_argument("--version")
    p.set_defaults(func=cmd_jobs_list)
    p = add_command(s_jobs, "sync", help="record the status of plan runs from the Dagster instance")
    p.set_defaults(func=cmd_jobs_sync)
    p = add_command(s_jobs, "backfill", help="submit a Dagster partition backfill of every plan asset for these "
                    "versions; prints its id", description="Store a Dagster partition backfill (the plan assets, one "
                    "partition per version) in the instance. The Dagster daemon launches one run per version through "
                    "the run queue (on the Celery workers when configured); the UI's Backfills page shows it, and "
                    "each run records itself in the run ledger with trigger 'backfill'. Prints the backfill id.")
    p.add_argument("version_ids", nargs="+", metavar="VERSION", help="plan versions (partitions) to plan")
    p.add_argument("--title", help="the backfill's title in the Dagster UI")
    p.set_defaults(func=cmd_runs_backfill)

    p = add_command(sub,
        "plan",
        help="reference-compatible one shot: import, create a version, materialize, write the reference files",
        description="Drop-in for the reference driver: same planning flags and defaults; the output files are "
        "exported from the plan store after the run.",
    )
    p.add_argument("-I", "--input-dir", required=True, type=path_arg, help="input folder (reference format)")
    p.add_argument("-o", "--output-dir", required=True, type=path_arg, help="where to write the reference output files")
    p.add_argument("--version-id", help="plan version id (default: v<UTC timestamp>)")
    p.add_argument("--input-set", help="input set label (default: <folder name>-<content hash>)")
    p.add_argument("--storage", choices=["db", "files", "both"], default=None,
                   help="accepted for compatibility with the reference driver; the plan store is always written "
                   "and the files are always exported")
    p.add_argument("-v", "--verbose", action="store_true")
    add_planning_parameter_flags(p)
    p.set_defaults(func=cmd_plan)

    from plan_pipeline.cli.commands_legacy_import import register_legacy_import_commands
    from plan_pipeline.cli.commands_planner import register_planner_commands

    register_planner_commands(sub)
    register_legacy_import_commands(sub)
    from plan_pipeline.cli.commands_operations import register_operations_commands

    register_operations_commands(sub)
    from plan_pipeline.cli.commands_report import register_report_commands

    register_report_commands(sub)

    p = add_command(sub, "sample-inputs", help="write a deterministic sample input folder of any size")
    p.add_argument("--out", required=True, type=path_arg)
    p.add_argument("--families", type=whole_number(1, MAX_SAMPLE_SKUS), default=3, help="default 3")
    p.add_argument("--skus-per-family", type=whole_number(1, MAX_SAMPLE_SKUS), default=4,
                   help=f"default 4; families x SKUs at most {MAX_SAMPLE_SKUS:,}")
    p.add_argument("--months", type=whole_number(1, MAX_SAMPLE_MONTHS), default=12,
                   help=f"1-{MAX_SAMPLE_MONTHS} (default 12)")
    p.add_argument("--components-per-sku", type=whole_number(0, 100), default=1, help="0-100 (default 1)")
    p.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=7, help="default 7")
    p.set_defaults(func=cmd_sample_inputs)

    p = add_command(sub, "demo", help="import the bundled sample, create a version, materialize it, summarise")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = add_command(sub, "ui", help="start the Dagster UI (dagster dev) on this project's instance")
    p.add_argument("--host", type=host_arg, default="127.0.0.1")
    p.add_argument("--port", type=PORT, default=3000, help="1-65535 (default 3000)")
    p.add_argument("--workspace", type=path_arg, default="workspace.yaml")
    p.set_defaults(func=cmd_ui)

    p_worker = add_command(sub, "worker", help="Celery workers that execute plan steps (docs/deployment.md)")
    s_worker = p_worker.add_subparsers(dest="worker_command", metavar="ACTION", required=True)
    p = add_command(s_worker, "start", help="start a worker on $PLAN_PIPELINE_CELERY_BROKER_URL (runs until stopped)")
    p.add_argument("--name", required=True, help="worker name (the node is NAME@host)")
    p.add_argument("--concurrency", type=int, default=1, help="steps executed at once (default 1)")
    p.add_argument("--loglevel", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=cmd_worker_start)

    add_api_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one ``error: ...`` line on stderr and a non-zero status.

    Usage errors exit through argparse (``SystemExit(2)``, its usage text on stderr). Our own
    errors print their message; anything else prints ``<ExceptionClass>: <message>``.
    """
    import warnings

    # Dagster's beta/preview notices only (features we use on purpose, e.g. partitioned check specs);
    # every other warning, deprecations included, stays visible.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        env = resolve_environment(getattr(args, "home", None), getattr(args, "db", None))
        status = int(args.func(env, args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as exc:
        report_failure("interrupted", exc)
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BaseException as exc:
        if type(exc).__name__ == "DagsterExecutionInterruptedError":  # Ctrl-C inside a Dagster step
            report_failure("interrupted", exc)
            return EXIT_INTERRUPTED
        if not isinstance(exc, Exception):
            raise
        report_failure(error_message(exc), exc)
        return exit_code(exc)


if __name__ == "__main__":
    # ``python -m plan_pipeline.cli.main``: run the imported module's main, so the command modules
    # and this one share one CliError class (this file is also loaded as ``__main__``).
    from plan_pipeline.cli.main import main as package_main

    sys.exit(package_main())
