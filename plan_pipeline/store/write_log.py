"""The plan write log (``plan_write_log``): one row per (plan write, level), appended by the store
inside the write's own transaction, whichever process writes (CLI, Dagster run, API, backfill).

``GET /metrics`` reads its totals (``store/store_metrics.py``), so a write made by a Dagster run
or a CLI command in another process is counted like the API's own. The one home of the
vocabulary: the write sources, the operations and what their ``rows`` count. The store's write
methods record their write here (callers never do); a write that rolls back leaves no row.

Cheap by design: one ``INSERT`` per write (a multi-row ``VALUES`` when a write spans levels),
never one per plan row. Rows are never pruned (retention keeps them, deleting a version keeps
them): the log is the audit of writes, and the counters read from it must not go down.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from plan_pipeline.timeutil import utc_now

#: Who writes: the store object's ``write_source`` (``PlanStore(..., write_source=...)``).
WRITE_SOURCES = ("cli", "dagster", "api", "backfill")
DEFAULT_WRITE_SOURCE = "cli"

#: ``level`` of a write about a whole version (its row, its status, its removal).
VERSION_LEVEL = "version"
#: ``level`` of an input set import.
INPUTS_LEVEL = "inputs"

#: operation -> (level recorded, what ``rows`` counts).
OPERATIONS: dict[str, tuple[str, str]] = {
    "stage": ("the plan level", "rows a plan run staged for the level (0: the level does not apply)"),
    "publish": ("the plan level", "rows of the level that became the version's published plan "
                                  "(switched from staged; no row is copied)"),
    "replace": ("the plan level", "rows written and published directly, outside a plan run"),
    "comparison": ("baseline_comparison", "rows of the stored comparison with the baseline"),
    "import": ("the plan level", "rows of a legacy version imported (legacy backfill)"),
    "override": ("the override's level (det)", "override rows changed (1 per edit/lock change)"),
    "create": (VERSION_LEVEL, "1: the version row"),
    "duplicate": (VERSION_LEVEL, "1 + the planner edits/locks copied"),
    "submit": (VERSION_LEVEL, "1: the version row"),
    "approve": (VERSION_LEVEL, "1: the version row"),
    "reject": (VERSION_LEVEL, "1: the version row"),
    "supersede": (VERSION_LEVEL, "1: the version row"),
    "delete": (VERSION_LEVEL, "rows removed with the version (every table)"),
    "restore": (VERSION_LEVEL, "rows loaded back from the version's archive"),
    "trim": ("the table trimmed (plan_kpis, plan_override_events)", "aged rows removed by retention"),
    "import_inputs": (INPUTS_LEVEL, "input rows of the input set imported"),
}


def check_write_source(source: str) -> str:
    if source not in WRITE_SOURCES:
        raise ValueError(f"unknown write source {source!r}: one of {', '.join(WRITE_SOURCES)}")
    return source


def record_write(
    con,
    source: str,
    operation: str,
    version_id: str | None,
    levels: Sequence[tuple[str, int]],
    *,
    run_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one write to the log on the caller's open transaction: one row per ``(level, rows)``,
    in ONE ``INSERT``. Nothing is recorded for an empty ``levels``."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown plan write operation {operation!r}")
    check_write_source(source)
    if not levels:
        return
    ts = at or utc_now()
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(levels))
    args: list = []
    for level, rows in levels:
        args += [ts, source, operation, version_id, level, int(rows), run_id]
    con.execute(
        f"INSERT INTO plan_write_log (ts, source, operation, version_id, level, rows, run_id) VALUES {values}", args
    )
