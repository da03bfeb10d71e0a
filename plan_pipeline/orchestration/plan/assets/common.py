"""What every plan stage asset shares: partitions, group (``plan`` unless given), pool, IO manager,
level metadata, and what the UI shows about who owns an asset and which code computed it (owners,
tags, code version)."""
from typing import Any

import dagster as dg

from plan_pipeline.orchestration.plan.code_versions import code_version, planning_code_version
from plan_pipeline.orchestration.plan.io_managers import OPTIONAL_LEVEL, PLAN_LEVEL, PLAN_TABLE
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_GROUP, plan_version_partitions
from plan_pipeline.planning.vocabulary import SCORECARD_LEVEL

SERIES_IO = "plan_series_io_manager"

# Step order inside one run. Dagster runs, of the steps whose inputs are ready, the one with
# the highest ``dagster/priority`` op tag first. Finishing the plain MRP -> capacity -> report
# chain before the anchored branch starts means at most one chain's 795k-row MRP frames are
# alive at a time (the run cache drops a frame after its last consumer): measured peak RSS at
# 5,000 SKUs in docs/performance.md. Order only; no stage depends on it for its numbers.
STEP_PRIORITY = {
    "mrp_plan": 9,
    "capacity_plan": 9,
    "plan_report": 9,
    "level_reconciliation": 5,
    "anchored_detail_plan": 3,
    "adjusted_mrp_plan": 2,
    "adjusted_capacity_plan": 2,
    "adjusted_plan_report": 2,
    "plan_scorecard": 2,
    "anchored_level_reconciliation": 1,
    "published_plan": 0,
    "baseline_comparison": 0,
}


def step_order_tags(step: str) -> dict[str, str]:
    """The op tags that place ``step`` in the run's step order (see ``STEP_PRIORITY``)."""
    return {"dagster/priority": str(STEP_PRIORITY.get(step, 0))}


#: Who answers for the plan assets (Dagster ``owners``; shown and filterable in the UI).
PLAN_OWNERS = ["team:planning"]
#: The ``domain`` tag of every plan asset.
PLAN_DOMAIN = "planning"

#: Stage -> the planning modules its asset runs (their hash, with what they import, is its code version).
_STAGE_MODULES = {
    "inputs": ("parameters", "types"),
    "aggregate": ("aggregate", "overrides"),
    "detail": ("detail", "overrides"),
    "reconciliation": ("level_reconciliation", "frames"),
    "mrp": ("mrp",),
    "capacity": ("capacity", "frames"),
    "report": ("report", "frames"),
    "anchor": ("anchor", "overrides", "frames"),
    "scorecard": ("kpis",),
}
#: Plan level -> the stage that writes it (the stage tag and code version of the level's asset).
LEVEL_STAGES = {
    "aggregate": "aggregate",
    "det": "detail",
    "level_reconciliation": "reconciliation", "level_reconciliation_adjusted": "reconciliation",
    "mrp": "mrp", "mrp_adjusted": "mrp",
    "mrp_final": "capacity", "weekly_summary": "capacity",
    "mrp_final_adjusted": "capacity", "weekly_summary_adjusted": "capacity",
    "report": "report", "report_adjusted": "report",
    "det_adjusted": "anchor", "carryover": "anchor",
    SCORECARD_LEVEL: "scorecard",
}
PUBLISH_STAGE = "publish"


def stage_identity(stage: str, *, chain: str | None = None) -> dict[str, Any]:
    """``owners``, ``tags`` and ``code_version`` of an asset of ``stage``. The code version hashes the
    planning modules the stage runs (and what they import); ``published_plan`` (stage ``publish``)
    carries the hash of every plan-deciding source, so any change to the plan's code shows it stale."""
    tags = {"domain": PLAN_DOMAIN, "stage": stage}
    if chain:
        tags["chain"] = chain
    version = code_version() if stage == PUBLISH_STAGE else planning_code_version(*_STAGE_MODULES[stage])
    return {"owners": list(PLAN_OWNERS), "tags": tags, "code_version": version}


def _level_identity(level: str) -> dict[str, Any]:
    chain = "anchored" if level.endswith("_adjusted") or level == "carryover" else "plain"
    # the aggregate plan starts both chains; the scorecard reads whichever is the final plan
    return stage_identity(LEVEL_STAGES[level], chain=None if level in ("aggregate", SCORECARD_LEVEL) else chain)


def _level_metadata(level: str, table: str, optional_level: bool) -> dict:
    metadata: dict[str, Any] = {PLAN_LEVEL: level}
    if table != "plan_series":
        metadata[PLAN_TABLE] = table
    if optional_level:
        metadata[OPTIONAL_LEVEL] = True
    return metadata


def stage_asset_args(level: str, description: str, *, table: str = "plan_series", optional_level: bool = False,
                     group: str = PLAN_GROUP, **extra: Any) -> dict:
    """``optional_level``: the stage may not apply to a version; it then outputs ``None`` (no rows)
    and downstream loads get ``None``."""
    metadata = _level_metadata(level, table, optional_level)
    return dict(
        partitions_def=plan_version_partitions,
        group_name=group,
        pool=DUCKDB_POOL,
        io_manager_key=SERIES_IO,
        metadata=metadata,
        kinds={"duckdb", "pandas"},
        description=description,
        **_level_identity(level),
        **extra,
    )


def stage_out(level: str, description: str, *, table: str = "plan_series", optional_level: bool = False) -> dg.AssetOut:
    return dg.AssetOut(
        io_manager_key=SERIES_IO,
        metadata=_level_metadata(level, table, optional_level),
        description=description,
        kinds={"duckdb", "pandas"},
        **_level_identity(level),
    )


def multi_stage_args(outs: dict[str, dg.AssetOut], description: str, *, group: str = PLAN_GROUP,
                     **extra: Any) -> dict:
    return dict(
        outs=outs,
        partitions_def=plan_version_partitions,
        group_name=group,
        pool=DUCKDB_POOL,
        description=description,
        **extra,
    )
