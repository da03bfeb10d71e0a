"""``plan-pipeline report V [--out DIR]``: the plan report of one published version (HTML + PNG)."""
from __future__ import annotations

from plan_pipeline.cli.arguments import add_command, path_arg
from plan_pipeline.cli.environment import CliEnvironment
from plan_pipeline.cli.output import out


def cmd_report(env: CliEnvironment, args) -> int:
    from plan_pipeline.exports.plan_review import write_plan_report

    files = write_plan_report(env.store, args.version_id, args.out)
    for path in files.paths():
        out(str(path))
    return 0


def register_report_commands(subparsers) -> None:
    """Add ``report`` to ``plan-pipeline``."""
    p = add_command(subparsers, "report", help="write a version's plan report (self-contained HTML + PNG charts)",
                    description="Render the published plan of a version as report.html (opens with no network: "
                    "charts embedded) plus the PNG charts beside it: demand/supply/backlog per family and month, "
                    "weekly leveled load vs capacity with the weeks over 100 % explained, projected inventory of "
                    "the ten largest SKUs, the KPI table and the changes against the baseline. Prints the written "
                    "paths. Refuses an unknown version and one that has not been planned (materialized).")
    p.add_argument("version_id")
    p.add_argument("--out", type=path_arg, default=None,
                   help="folder to write into (created if missing; default ./plan-report-<version>)")
    p.set_defaults(func=cmd_report)


__all__ = ["register_report_commands"]
