"""Create and duplicate plan versions from the Dagster UI (Launchpad).

``create_plan_version`` records a new draft on a stored input set with the planning parameters of
its run config (the same model, defaults and validation as ``plan-pipeline version create``);
``duplicate_plan_version`` copies a version into a new draft (input set, parameters and planner
edits/locks carried over, parameters optionally changed; the store's ``duplicate_version``, the
same as ``plan-pipeline version duplicate``). Each op, in the ``duckdb`` pool:

1. refuses bad config with one line (``dg.Failure``, no retry) before anything is written;
2. records the version in one store transaction and registers its ``plan_version`` partition;
3. tags its own run ``plan/version`` = the new version, which the ``plan_created_versions`` sensor
   reads (without opening the store) to request the plan run of the new partition.
"""

import dagster as dg
from pydantic import Field

from plan_pipeline.orchestration.parameter_config import (
    PlanningParameterOverridesConfig,
    PlanningParametersConfig,
    overrides_from_config,
    parameters_from_config,
)
from plan_pipeline.orchestration.plan.assets.planning_inputs import CREATE_VERSION_JOB, parameter_table
from plan_pipeline.orchestration.plan.partitions import DUCKDB_POOL, register_version_partition
from plan_pipeline.orchestration.plan.run_ledger import VERSION_TAG
from plan_pipeline.orchestration.resources import PlanStoreResource
from plan_pipeline.planning.parameters import ParameterError, PlanningParameters
from plan_pipeline.store import PlanStoreError

DUPLICATE_VERSION_JOB = "duplicate_plan_version"
VERSION_ID_HELP = ("the new plan version id: 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit; blank = "
                   "generated v<UTC timestamp> (as plan-pipeline version create)")


class CreatePlanVersionConfig(dg.Config):
    """A new draft plan version on a stored input set."""

    input_set: str = Field(description="label of a stored input set (plan-pipeline inputs list; the inbox and "
                           "`plan-pipeline inputs import DIR --label L` store them)")
    version_id: str = Field(default="", description=VERSION_ID_HELP)
    note: str = Field(default="", description="free text kept with the version (blank = none)")
    parameters: PlanningParametersConfig = Field(
        default_factory=PlanningParametersConfig,
        description="the planning parameters (defaults are the reference driver's)")


class DuplicatePlanVersionConfig(dg.Config):
    """A new draft copied from an existing version."""

    source_version: str = Field(description="the version to copy (any status except imported read-only); its "
                                "input set, parameters and planner edits/locks are carried over")
    version_id: str = Field(default="", description=VERSION_ID_HELP)
    note: str = Field(default="", description="free text kept with the version (blank = 'duplicate of <source>')")
    parameter_overrides: PlanningParameterOverridesConfig = Field(
        default_factory=PlanningParameterOverridesConfig,
        description="parameters to change in the copy; blank fields keep the source's values")


def _refuse(what: str, problem: Exception) -> dg.Failure:
    """One line: what was refused and every rule broken (a ParameterError lists one per field)."""
    lines = getattr(problem, "problems", None) or str(problem).splitlines()
    text = "; ".join(line.strip() for line in lines if line.strip())
    return dg.Failure(description=f"{what}, nothing was written: {text}", allow_retries=False)


def _recorded(context: dg.OpExecutionContext, record, store, how: str) -> dg.Output:
    """Register the partition, tag this run with the version, describe what was created."""
    register_version_partition(context.instance, record.version_id)
    context.instance.add_run_tags(context.run_id, {VERSION_TAG: record.version_id})
    overrides = len(store.detail_overrides(record.version_id))
    context.log.info(f"plan version {record.version_id!r} {how}; plan_created_versions requests its plan run")
    return dg.Output(record.version_id, metadata={
        "plan_version": record.version_id,
        "status": record.status,
        "input_set": record.input_set,
        "how": how,
        "planner_overrides": dg.MetadataValue.int(overrides),
        "parameters": parameter_table(record.params),
        "next": f"plan run follows: the plan_created_versions sensor requests plan_job for partition "
                f"{record.version_id!r} (tag plan/trigger=create_plan_version)",
    })


@dg.op(pool=DUCKDB_POOL, description="Record a new draft plan version and register its plan_version partition.")
def create_plan_version_op(context: dg.OpExecutionContext, config: CreatePlanVersionConfig,
                           plan_store: PlanStoreResource) -> dg.Output:
    try:
        params = parameters_from_config(config.parameters)
    except ParameterError as exc:
        raise _refuse("plan version not created: invalid parameters", exc) from None
    store = plan_store.get_store()
    try:
        version_id = config.version_id.strip() or store.free_version_id()
        record = store.create_version(version_id, config.input_set.strip(), params, note=config.note or None,
                                      source="ui")
    except PlanStoreError as exc:
        raise _refuse("plan version not created", exc) from None
    return _recorded(context, record, store, f"created on input set {record.input_set!r}")


@dg.op(pool=DUCKDB_POOL, description="Copy a plan version (input set, parameters, planner edits/locks) into a new "
       "draft and register its plan_version partition.")
def duplicate_plan_version_op(context: dg.OpExecutionContext, config: DuplicatePlanVersionConfig,
                              plan_store: PlanStoreResource) -> dg.Output:
    store = plan_store.get_store()
    source_id = config.source_version.strip()
    overrides = overrides_from_config(config.parameter_overrides)
    try:
        params = None
        if overrides:
            params = PlanningParameters(**{**store.get_version(source_id).params.to_dict(), **overrides})
        record = store.duplicate_version(source_id, config.version_id.strip() or None, params=params,
                                         note=config.note or None, actor="dagster", source="ui")
    except ParameterError as exc:
        raise _refuse("plan version not duplicated: invalid parameters", exc) from None
    except PlanStoreError as exc:
        raise _refuse("plan version not duplicated", exc) from None
    changed = f", parameters changed: {', '.join(sorted(overrides))}" if overrides else ""
    return _recorded(context, record, store, f"duplicated from {source_id!r}{changed}")


@dg.job(name=CREATE_VERSION_JOB, tags={"plan/pipeline": "versions"},
        description="Create a plan version from the Launchpad: input set, optional version id, planning parameters. "
        "The plan run of the new partition follows (sensor plan_created_versions).")
def create_plan_version_job():
    create_plan_version_op()


@dg.job(name=DUPLICATE_VERSION_JOB, tags={"plan/pipeline": "versions"},
        description="Duplicate a plan version from the Launchpad (input set, parameters and planner edits/locks "
        "carried over, parameters optionally changed). The plan run of the new partition follows "
        "(sensor plan_created_versions).")
def duplicate_plan_version_job():
    duplicate_plan_version_op()
