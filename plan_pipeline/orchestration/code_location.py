"""Runs started in this process (the CLI's) on the project's Dagster code location.

``dagster dev -w workspace.yaml`` loads the code location ``plan_pipeline`` (module
``plan_pipeline.definitions``; its one Definitions object is the repository ``__repository__``).
A run the CLI launches is created with that code location's origin (so the UI lists it in the
job's Runs tab, shows it on the latest-run badge and the Overview timeline, and can re-execute
it) and then executed here, in this process, on a reconstructable job pointing at the same
module: same job, same resources, same in-process executor.

The run config never names the plan store: like every run of the code location, the steps
resolve it from the environment when they run (:class:`plan_pipeline.orchestration.resources.PlanStoreResource`,
``$PLAN_PIPELINE_DB`` or the project home, which the CLI sets). A re-execution from the UI
therefore runs with the code location's own resources.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from plan_pipeline.store import PlanStore

# As in workspace.yaml (a test holds the two together).
CODE_LOCATION_NAME = "plan_pipeline"
CODE_LOCATION_MODULE = "plan_pipeline.definitions"
CODE_LOCATION_ATTRIBUTE = "defs"
# Dagster's name for the repository of a module's single Definitions object.
REPOSITORY_NAME = "__repository__"


def workspace_yaml() -> str:
    """A workspace file loading the code location as workspace.yaml does (``plan-pipeline ui``
    writes it into ``$DAGSTER_HOME`` when it is started outside the repository)."""
    return ("load_from:\n"
            "  - python_module:\n"
            f"      module_name: {CODE_LOCATION_MODULE}\n"
            f"      location_name: {CODE_LOCATION_NAME}\n")


def remote_job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the webserver gives ``job_name`` of the code location loaded from workspace.yaml."""
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=CODE_LOCATION_MODULE, working_directory="."),
        location_name=CODE_LOCATION_NAME,
    )
    return RemoteRepositoryOrigin(code_location_origin=location, repository_name=REPOSITORY_NAME).get_job_origin(job_name)


def reconstructable_job(job_name: str) -> ReconstructableJob:
    """``job_name`` of the code location, reconstructable from its module (what a run worker loads)."""
    repository = ReconstructableRepository.for_module(CODE_LOCATION_MODULE, CODE_LOCATION_ATTRIBUTE)
    return repository.get_reconstructable_job(job_name)


def require_code_location_store(store: PlanStore | str | None) -> None:
    """Refuse a store (a store, or a DuckDB file's path) other than the one the code location's
    resources resolve in this process (``$PLAN_STORE_URL``, ``$PLAN_PIPELINE_DB`` or the project
    home): the run would silently use the other one."""
    if store is None:
        return
    wanted = (store if isinstance(store, PlanStore) else PlanStore(store)).location
    resolved = PlanStore().location
    if wanted != resolved:
        raise ValueError(f"plan store {wanted.describe()} is not the code location's store {resolved.describe()} "
                         "(set $PLAN_STORE_URL, $PLAN_PIPELINE_DB or --db to run on it)")


def execute_on_code_location(
    instance: dg.DagsterInstance,
    job_name: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobExecutionResult:
    """Create a run of ``job_name`` with the code location's origin, then execute it in this process.

    Returns Dagster's result (open it as a context manager to load outputs). A
    ``dagster/partition`` tag selects the partition, as for any launch.
    """
    recon, run = create_run_on_code_location(instance, job_name, run_config=run_config, tags=tags)
    return execute_run(recon, run, instance)


def create_run_on_code_location(
    instance: dg.DagsterInstance,
    job_name: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> tuple[ReconstructableJob, dg.DagsterRun]:
    """Create (not start) a run of ``job_name`` with the code location's origin: the reconstructable
    job to execute it with here (``execute_run``), and the run, which can also be submitted to the
    instance's run queue (``instance.submit_run``; the daemon launches it)."""
    recon = reconstructable_job(job_name)
    load_data = recon.repository.get_definition().repository_load_data
    recon = recon.with_repository_load_data(load_data)
    job_def = recon.get_definition()
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(run_config or {}),
        tags={**job_def.run_tags, **(tags or {})},
        remote_job_origin=remote_job_origin(job_name),
        job_code_origin=recon.get_python_origin(),
        repository_load_data=load_data,
    )
    return recon, run
