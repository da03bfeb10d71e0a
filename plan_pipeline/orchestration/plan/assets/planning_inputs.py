"""``planning_inputs``: the version's validated parameters and immutable input set.

The first step of every plan run, and the one that decides whether the run plans at all:

* a partition with no version behind it (added by hand in the UI) is refused with one line that
  names the ``create_plan_version`` job (:func:`unknown_version_refusal`), no retry;
* a **frozen** version (approved, superseded, imported / read-only) is not re-planned and the run
  does not fail: the step records a materialization of ``planning_inputs`` that says so
  (:data:`FROZEN_STATE`, with the version's status, input set and parameters), one "frozen:
  nothing to do" materialization for each other plan asset the run selected, and yields no
  output, so Dagster skips every stage downstream (none of their inputs exist): no stage runs, no
  row is written, no check is evaluated, and the run (and a backfill of it) ends green. See
  docs/architecture.md, "Versions, partitions and frozen versions".

Every materialization carries the version's status, input set, content hash and parameters, so
a user finds them in one click from the asset.
"""

import dagster as dg

from plan_pipeline.orchestration.plan.assets.common import stage_identity
from plan_pipeline.orchestration.plan.io_managers import VersionPlanInputs, load_version_inputs
from plan_pipeline.orchestration.plan.partitions import (
    DUCKDB_POOL,
    PLAN_BASIS_GROUP,
    VERSION_STATUS_KEY,
    plan_version_partitions,
)
from plan_pipeline.orchestration.replanning.stale_drafts import (
    CODE_VERSION_KEY,
    INPUT_FINGERPRINT_KEY,
    code_version,
    version_input_fingerprint,
)
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.parameters import parameter_specs
from plan_pipeline.store.repository import is_frozen

#: The job that creates a plan version from the UI (defined in ``orchestration/versions``).
CREATE_VERSION_JOB = "create_plan_version"
FROZEN_STATE = "frozen (status {status}): nothing to do, stored rows unchanged"


def unknown_version_refusal(version: str) -> str:
    """The one line a plan run of a partition without a stored version ends with."""
    return (f"plan version {version!r} is not recorded in the plan store: create it with the "
            f"{CREATE_VERSION_JOB} job (Launchpad) or `plan-pipeline version create --version-id {version} "
            "--input-set LABEL`")


def parameter_table(params) -> dg.MetadataValue:
    """The parameters as a table (name, value, what it means) for the UI."""
    values = params.to_dict()
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"parameter": spec.name, "value": "" if values[spec.name] is None else
                                 str(values[spec.name]), "meaning": spec.description})
                 for spec in parameter_specs()],
        schema=dg.TableSchema(columns=[
            dg.TableColumn("parameter", "string", description="parameter name (plan_versions column)"),
            dg.TableColumn("value", "string", description="the version's value (blank = not set)"),
            dg.TableColumn("meaning", "string"),
        ]),
    )


def version_metadata(store, record) -> dict:
    """What a user should see about a version: status, input set, content hash, parameters."""
    info = (store.get_input_set(record.input_set) if record.input_set else None) or {}
    return {
        VERSION_STATUS_KEY: record.status,
        "read_only": dg.MetadataValue.bool(record.read_only),
        "input_set": record.input_set or "(none: imported read-only version)",
        "content_hash": info.get("content_hash", ""),
        "source": record.source or "",
        "parameters": dg.MetadataValue.json(record.params.to_dict()),
        "parameter_table": parameter_table(record.params),
    }


def _planned_plan_assets(context: dg.AssetExecutionContext) -> list[dg.AssetKey]:
    """The other plan-version assets this run selected (the ones it plans to materialize); none
    when the body is called directly (no run)."""
    try:
        layer = context.job_def.asset_layer
        selected = context.run.asset_selection or layer.selected_asset_keys
    except dg.DagsterError:  # DagsterInvalidPropertyError: called directly, not in a run
        return []
    return sorted((key for key in selected if key != context.asset_key and layer.has(key)
                   and layer.get(key).partitions_def == plan_version_partitions),
                  key=lambda key: key.to_user_string())


def frozen_stage_materializations(context: dg.AssetExecutionContext, store, version: str, state: str):
    """One "frozen: nothing to do" materialization per other plan asset the run selected.

    The stage steps themselves are skipped (their input does not exist), so they write and check
    nothing. Their partitions get this record because Dagster counts a backfill whose run
    succeeded without materializing its targets as *failed* ("no materialization status despite
    all runs being complete"): with it, a "Missing" or "All" backfill over frozen versions
    completes successfully. It says the stored plan is the one published earlier, and by which run.
    """
    publication = store.publication(version)
    published = {
        "plan_state": state,
        "published_by_runs": dg.MetadataValue.json(publication["runs"]),
        "published_at": (publication["published_at"].isoformat(sep=" ", timespec="seconds") + " UTC"
                         if publication["published_at"] is not None else "never (no published plan)"),
    }
    for key in _planned_plan_assets(context):
        yield dg.AssetMaterialization(asset_key=key, partition=version, metadata=published)


def _fingerprints(store, version: str) -> dict:
    return {CODE_VERSION_KEY: code_version(), INPUT_FINGERPRINT_KEY: version_input_fingerprint(store, version)}


@dg.asset(
    partitions_def=plan_version_partitions,
    group_name=PLAN_BASIS_GROUP,
    pool=DUCKDB_POOL,
    io_manager_key="plan_inputs_io_manager",
    kinds={"duckdb", "python"},
    output_required=False,  # a frozen version yields no inputs: every stage of the run is skipped
    description="The plan version's status, parameters and immutable, content-hashed input set. A frozen "
    "version (approved, superseded, imported) is recorded as 'frozen: nothing to do' and the run's stages "
    "are skipped.",
    **stage_identity("inputs"),
)
def planning_inputs(context: dg.AssetExecutionContext, plan_store: PlanStoreResource):
    store = plan_store.get_store()
    version = context.partition_key
    with store.session():  # one store connection for the step's reads (not one per read)
        record = store.find_version(version)
        if record is None:
            raise dg.Failure(description=unknown_version_refusal(version), allow_retries=False)
        described = version_metadata(store, record)
        if is_frozen(record.status, record.read_only):
            state = FROZEN_STATE.format(status=record.status)
            frozen = [dg.AssetMaterialization(asset_key=context.asset_key, partition=version,
                                              metadata={"plan_state": state, **described}),
                      *frozen_stage_materializations(context, store, version, state)]
            loaded = None
        else:
            loaded = load_version_inputs(store, version)
            fingerprints = _fingerprints(store, version)
    if loaded is None:
        context.log.info(f"plan version {version!r} is {state}; the plan stages of this run are skipped")
        yield from frozen
        return
    rows = {name: int(len(loaded.inputs.table(name))) for name in (
        "demand_family", "capacity", "mix_share", "item", "inventory", "open_po", "bom")}
    context.add_output_metadata(
        {
            "plan_state": f"{record.status}: planned by this run",
            **described,
            "calendar": "yes" if loaded.inputs.calendar is not None else "no (fallback weeks)",
            "rows": dg.MetadataValue.json(rows),
            "parameters": dg.MetadataValue.json(loaded.params.to_dict()),  # validated, presets resolved
            "parameter_table": parameter_table(loaded.params),
            **fingerprints,
        }
    )
    yield dg.Output(loaded)


__all__ = ["CREATE_VERSION_JOB", "VersionPlanInputs", "planning_inputs", "unknown_version_refusal"]
