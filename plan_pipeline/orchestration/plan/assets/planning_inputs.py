"""``planning_inputs``: the version's validated parameters and immutable input set."""

import dagster as dg

from plan_pipeline.orchestration.plan.assets.common import stage_identity
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs, load_version_inputs
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, PLAN_GROUP, plan_version_partitions
from plan_pipeline.orchestration.replanning.stale_drafts import (
    CODE_VERSION_KEY,
    INPUT_FINGERPRINT_KEY,
    code_version,
    version_input_fingerprint,
)
from plan_pipeline.orchestration.resources import PlanStoreResource


def _fingerprints(store, version: str) -> dict:
    return {CODE_VERSION_KEY: code_version(), INPUT_FINGERPRINT_KEY: version_input_fingerprint(store, version)}


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_GROUP,
    pool=DUCKDB_POOL,
    io_manager_key="plan_inputs_io_manager",
    kinds={"duckdb", "python"},
    description="The plan version's parameters and its immutable, content-hashed input set.",
    **stage_identity("inputs"),
)
def planning_inputs(context: dg.AssetExecutionContext, plan_store: PlanStoreResource) -> VersionPlanInputs:
    store = plan_store.get_store()
    version = context.partition_key
    loaded = load_version_inputs(store, version)
    info = store.get_input_set(loaded.input_set) or {}
    rows = {name: int(len(loaded.inputs.table(name))) for name in (
        "demand_family", "capacity", "mix_share", "item", "inventory", "open_po", "bom")}
    context.add_output_metadata(
        {
            "input_set": loaded.input_set,
            "content_hash": info.get("content_hash", ""),
            "calendar": "yes" if loaded.inputs.calendar is not None else "no (fallback weeks)",
            "rows": dg.MetadataValue.json(rows),
            "parameters": dg.MetadataValue.json(loaded.params.to_dict()),
            **_fingerprints(store, version),
        }
    )
    return loaded
