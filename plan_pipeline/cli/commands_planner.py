"""Planner commands: overrides and locks, the plan lifecycle (submit, approve), version diff."""
from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from plan_pipeline.cli.arguments import add_command
from plan_pipeline.cli.environment import CliEnvironment
from plan_pipeline.cli.errors import UsageError
from plan_pipeline.store.comparison_metrics import row_diff_measures

if TYPE_CHECKING:  # the commands get their frames from the store: no pandas to parse arguments
    import pandas as pd


def _actor(args) -> str:
    return args.actor or os.environ.get("PLAN_PIPELINE_ACTOR") or os.environ.get("USER") or "system"


def cmd_override_set(env: CliEnvironment, args) -> int:
    """One cell of the PSI grid through the same store call as ``PATCH /plans/{v}/psi``."""
    fields = {name: getattr(args, name) for name in ("demand", "supply", "backlog") if getattr(args, name) is not None}
    lock = True if args.lock else (False if args.unlock else None)
    if not fields and lock is None and not args.reset:
        raise UsageError("override set: give at least one of --demand --supply --backlog --lock --unlock --reset")
    if args.family is not None:
        if args.week is not None or args.sku is not None or args.period is None:
            raise UsageError("override set: an aggregate edit names --family and --period (no --week/--sku)")
        level, key = "agg", {"family": args.family, "period": args.period}
    else:
        if args.week is None or args.sku is None:
            raise UsageError("override set: a detail edit names --week and --sku (or --family and --period for "
                             "the aggregate plan)")
        level, key = "det", {"sku": args.sku, "week": args.week}
        if args.period is not None:
            key["period"] = args.period
    result = env.store.psi_edit(args.version_id, level, [{"key": key, "fields": fields, "lock": lock,
                                                          "reset": args.reset}],
                                actor=_actor(args), note=args.note, source="cli")
    (override_key,) = result["keys"]
    changes = [e["event_type"] if e["field"] == "lock" else f"{e['field']} {e['event_type']}"
               for e in result["events"]]
    if changes:
        print(f"{override_key}: {', '.join(changes)} recorded on version {args.version_id!r} "
              f"(re-plan with: plan-pipeline materialize {args.version_id})")
    else:
        print(f"{override_key}: unchanged, nothing recorded")
    return 0


def cmd_override_list(env: CliEnvironment, args) -> int:
    env.store.get_version(args.version_id)  # an unknown version is an error, not "no overrides"
    frame = env.store.read_overrides(args.version_id)
    if frame.empty:
        print(f"version {args.version_id!r} has no overrides")
        return 0
    for row in frame.itertuples():
        lock = "locked" if row.lock_flag else "      "
        print(f"{row.key_hash:<48} {lock} {row.payload_json}  by {row.author} at {str(row.updated_at)[:19]}")
    return 0


def cmd_override_events(env: CliEnvironment, args) -> int:
    env.store.get_version(args.version_id)
    frame = env.store.read_override_events(args.version_id)
    if frame.empty:
        print(f"version {args.version_id!r} has no audit events")
        return 0
    for row in frame.itertuples():
        note = f"  ({row.notes})" if isinstance(row.notes, str) and row.notes else ""
        print(f"{str(row.event_ts)[:19]}  {row.event_type:<9} {row.key_hash:<44} {row.actor:<12} {row.payload_json}{note}")
    return 0


def refuse_while_running(env: CliEnvironment, version_id: str, what: str) -> None:
    """Refuse ``what`` while a Dagster run of the version is queued or running (after crash
    recovery, so a run whose process died does not block it)."""
    from plan_pipeline.cli.errors import CliError
    from plan_pipeline.cli.output import progress
    from plan_pipeline.orchestration.plan.run_state import versions_in_progress

    run_id = versions_in_progress(env.recovered_instance(log=progress)).get(version_id)
    if run_id:
        raise CliError(f"plan version {version_id!r} has a run in progress ({run_id}): {what} is refused while "
                       "a run writes the version; wait for it to finish (plan-pipeline runs list) and try again")


def report_status_to_dagster(env: CliEnvironment, version_id: str, previous: str, status: str) -> bool:
    """Show a lifecycle change in the Dagster UI: a runless observation of ``planning_inputs`` for
    the version's partition with the new status. Only when the project's Dagster instance exists
    and knows the partition; never fails the lifecycle command (the store is the record)."""
    if not env.dagster_home.is_dir():
        return False
    try:
        from plan_pipeline.orchestration.plan.partitions import report_version_status

        return report_version_status(env.instance(), version_id, previous, status)
    except Exception as exc:  # the status change is done and stored; the UI note is a courtesy
        from plan_pipeline.cli.output import progress

        progress(f"note: the status change was not shown in the Dagster UI ({type(exc).__name__}: {exc})")
        return False


def cmd_status(to: str):
    def run(env: CliEnvironment, args) -> int:
        if to == "approved":
            refuse_while_running(env, args.version_id, "approval")
        previous = env.store.transition_status(args.version_id, to, actor=_actor(args), notes=args.note)
        print(f"plan version {args.version_id!r}: {previous} -> {to}")
        report_status_to_dagster(env, args.version_id, previous, to)
        return 0

    return run


def version_diff(store, left: str, right: str, level: str) -> pd.DataFrame:
    """Rows of ``level`` whose measures differ between two versions (the store's row diff)."""
    return store.level_row_diff(left, right, level)


def metric_list(value: str) -> list[str]:
    """``--metric`` value: one name or a comma list, each one of the comparison metrics."""
    from plan_pipeline.store.comparison_metrics import COMPARISON_METRIC_NAMES

    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in COMPARISON_METRIC_NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown metric {', '.join(map(repr, unknown)) or repr(value)}; choose from: "
            f"{', '.join(COMPARISON_METRIC_NAMES)}")
    return names


def _number(value: float) -> str:
    return "-" if value is None or value != value else f"{value:.6g}"


def _comparison(env: CliEnvironment, args) -> int:
    from plan_pipeline.store.comparison_metrics import COMPARISON_METRIC_NAMES

    by = args.by or "total"
    metrics = [m for group in (args.metric or []) for m in group]
    chosen = [m for m in COMPARISON_METRIC_NAMES if m in metrics] if metrics else list(COMPARISON_METRIC_NAMES)
    frame = env.store.compare_versions(args.left, args.right, by, chosen)
    if args.json:
        header = {"baseline": args.left, "version": args.right, "by": by, "metrics": chosen,
                  "not_compared": frame.attrs.get("not_compared", []), "changes": int(len(frame))}
        rows = json.loads(frame.to_json(orient="records"))
        print(json.dumps({**header, "rows": rows}, indent=2))
        return 0
    skipped = frame.attrs.get("not_compared", [])
    note = (f" (not compared, no value for both versions at this bucket: {', '.join(skipped)})"
            if skipped else "")
    if frame.empty:
        compared = [m for m in chosen if m not in skipped]
        print(f"by {by}: {args.left} and {args.right} do not differ in "
              f"{', '.join(compared) or 'any metric asked for'}{note}")
        return 0
    totals = frame if by == "total" else env.store.compare_versions(args.left, args.right, "total", chosen)
    print(f"by {by}: {len(frame)} change(s), {args.right} minus {args.left}, biggest first{note}")
    print("total change: " + (", ".join(f"{r.metric} {r.delta:+.6g}" for r in totals.itertuples())
                              or "none (the changes cancel out in total)"))
    show = frame.head(args.limit)
    width = max(12, min(40, int(show["bucket"].str.len().max())))
    for r in show.itertuples():
        print(f"  {r.bucket:<{width}} {r.metric:<18} {_number(r.baseline):>12} -> {_number(r.value):<12} "
              f"{r.delta:+.6g}")
    if len(frame) > len(show):
        print(f"  … {len(frame) - len(show)} more (use --limit or --json)")
    return 0


def cmd_diff(env: CliEnvironment, args) -> int:
    if args.by or args.metric:
        if args.level:
            raise UsageError("diff: --level (row diff of one plan level) and --by/--metric (comparison) "
                             "cannot be combined")
        return _comparison(env, args)
    level = args.level or "aggregate"
    store = env.store
    diff = version_diff(store, args.left, args.right, level)
    if args.json:
        print(diff.to_json(orient="records", indent=2))
        return 0
    if diff.empty:
        print(f"level {level}: {args.left} and {args.right} are identical")
        return 0
    measures = row_diff_measures(level)
    print(f"level {level}: {len(diff)} row(s) differ ({args.right} minus {args.left})")
    totals = {m: float(diff[f"{m}_delta"].sum()) for m in measures}
    print("total delta: " + ", ".join(f"{m} {v:+.6g}" for m, v in totals.items()))
    show = diff.head(args.limit)
    for row in show.to_dict("records"):
        key = "/".join(str(row[k]) for k in ("time_bucket_key", "period_key", "item_key") if row[k])
        deltas = ", ".join(f"{m} {row[f'{m}_delta']:+.6g}" for m in measures if abs(row[f"{m}_delta"]) > 1e-9)
        print(f"  {key:<36} {row['presence']:<12} {deltas}")
    if len(diff) > len(show):
        print(f"  … {len(diff) - len(show)} more (use --limit or --json)")
    return 0


def register_planner_commands(sub) -> None:
    from plan_pipeline.cli.arguments import ACTOR, MAX_LISTED, NOTE, whole_number
    from plan_pipeline.store.comparison_metrics import COMPARISON_BUCKETS, COMPARISON_METRIC_NAMES
    from plan_pipeline.store.layouts import LAYOUTS

    p_over = add_command(sub, "override", help="planner edits and locks on a version's detail or aggregate plan")
    s_over = p_over.add_subparsers(dest="override_command", metavar="ACTION", required=True)
    p = add_command(s_over, "set", help="edit, lock or reset one SKU x week row or family x period cell (then "
                    "re-materialize the version)")
    p.add_argument("version_id")
    p.add_argument("--week", help="detail cell: the week (with --sku)")
    p.add_argument("--sku", help="detail cell: the SKU (with --week)")
    p.add_argument("--family", help="aggregate cell: the family (with --period)")
    p.add_argument("--period", help="aggregate cell: the month; detail cell: the month fragment, when the week "
                   "spans two months")
    p.add_argument("--demand", type=float)
    p.add_argument("--supply", type=float)
    p.add_argument("--backlog", type=float)
    lock = p.add_mutually_exclusive_group()
    lock.add_argument("--lock", action="store_true", help="pin the row: later stages leave it as it is")
    lock.add_argument("--unlock", action="store_true")
    p.add_argument("--reset", action="store_true", help="remove the cell's edits and lock first")
    p.add_argument("--note", type=NOTE, help="why (kept in the audit trail)")
    p.add_argument("--actor", type=ACTOR, help="who (default $PLAN_PIPELINE_ACTOR or $USER)")
    p.set_defaults(func=cmd_override_set)
    p = add_command(s_over, "list", help="current overrides of a version")
    p.add_argument("version_id")
    p.set_defaults(func=cmd_override_list)
    p = add_command(s_over, "events", help="the audit trail of a version (edits, locks, submit, approve)")
    p.add_argument("version_id")
    p.set_defaults(func=cmd_override_events)

    for name, to, text in (
        ("submit", "submitted", "submit a draft version for approval"),
        ("approve", "approved", "approve a submitted version (freezes edits)"),
        ("reject", "draft", "send a submitted version back to draft"),
        ("supersede", "superseded", "mark an approved version as superseded"),
    ):
        p = add_command(sub, name, help=text)
        p.add_argument("version_id")
        p.add_argument("--note", type=NOTE)
        p.add_argument("--actor", type=ACTOR)
        p.set_defaults(func=cmd_status(to))

    p = add_command(sub, "diff", help="compare two versions: changes per bucket and metric, or rows of one level",
                    description="Compare RIGHT with LEFT (deltas are RIGHT minus LEFT). --by/--metric: the plan "
                    "measures and scorecard KPIs rolled up per bucket, biggest changes first; --level (default "
                    "aggregate when neither is given): the rows of one plan level that differ.")
    p.add_argument("left", help="the baseline version")
    p.add_argument("right", help="the version compared with it")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--level", choices=list(LAYOUTS), metavar="LEVEL",
                     help=f"row diff of one plan level: {', '.join(LAYOUTS)}")
    how.add_argument("--by", choices=list(COMPARISON_BUCKETS),
                     help=f"comparison bucket: {', '.join(COMPARISON_BUCKETS)} (default total with --metric)")
    p.add_argument("--metric", type=metric_list, action="append", metavar="NAME[,NAME]",
                   help=f"comparison metric(s), repeatable (default all): {', '.join(COMPARISON_METRIC_NAMES)}")
    p.add_argument("--limit", type=whole_number(0, MAX_LISTED), default=20, help="rows shown (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_diff)


__all__ = ["register_planner_commands", "version_diff"]
