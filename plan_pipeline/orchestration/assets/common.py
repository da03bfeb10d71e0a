"""What every plan stage asset shares: partitions, group, pool, IO manager, level metadata."""
from typing import Any

import dagster as dg

from plan_pipeline.orchestration.io_managers import PLAN_LEVEL, PLAN_TABLE
from plan_pipeline.orchestration.partitions import DUCKDB_POOL, PLAN_GROUP, plan_version_partitions

SERIES_IO = "plan_series_io_manager"


def stage_asset_args(level: str, description: str, *, table: str = "plan_series", **extra: Any) -> dict:
    metadata = {PLAN_LEVEL: level}
    if table != "plan_series":
        metadata[PLAN_TABLE] = table
    return dict(
        partitions_def=plan_version_partitions,
        group_name=PLAN_GROUP,
        pool=DUCKDB_POOL,
        io_manager_key=SERIES_IO,
        metadata=metadata,
        kinds={"duckdb", "pandas"},
        description=description,
        **extra,
    )


def stage_out(level: str, description: str, *, table: str = "plan_series", required: bool = True) -> dg.AssetOut:
    metadata = {PLAN_LEVEL: level}
    if table != "plan_series":
        metadata[PLAN_TABLE] = table
    return dg.AssetOut(
        io_manager_key=SERIES_IO,
        metadata=metadata,
        description=description,
        is_required=required,
        kinds={"duckdb", "pandas"},
    )


def multi_stage_args(outs: dict[str, dg.AssetOut], description: str, **extra: Any) -> dict:
    return dict(
        outs=outs,
        partitions_def=plan_version_partitions,
        group_name=PLAN_GROUP,
        pool=DUCKDB_POOL,
        description=description,
        **extra,
    )
