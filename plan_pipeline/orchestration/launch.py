"""Launch plan runs in-process on the shared Dagster instance (used by the CLI and tests)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path

import dagster as dg

from plan_pipeline.orchestration.io_managers import RUN_CACHE
from plan_pipeline.orchestration.partitions import PLAN_VERSION_PARTITIONS_NAME
from plan_pipeline.orchestration.run_ledger import (
    LEDGER_INLINE,
    LEDGER_TAG,
    TRIGGER_TAG,
    VERSION_TAG,
    error_text,
    sync_plan_jobs,
)
from plan_pipeline.store import PlanStore

DAGSTER_YAML_MARKER = "# The project's Dagster instance settings."


def project_dagster_yaml() -> str:
    return importlib_resources.files("plan_pipeline.orchestration").joinpath("dagster.yaml").read_text()


def prepare_dagster_home(home: Path) -> Path:
    """Create ``home`` with the project's dagster.yaml (refreshed if it is our own copy)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    text = project_dagster_yaml()
    if not target.exists() or target.read_text().startswith(DAGSTER_YAML_MARKER):
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return home


def get_instance() -> dg.DagsterInstance:
    """The instance named by ``$DAGSTER_HOME`` (the same one ``dagster dev`` uses)."""
    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("DAGSTER_HOME is not set")
    return dg.DagsterInstance.get()


def register_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, [version_id])


def remove_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.delete_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id)


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    errors: list[str]


def plan_job_for_store(db_path: str) -> dg.JobDefinition:
    """``plan_job`` bound to one plan store file (the reconstructable target of :func:`materialize_version`)."""
    from plan_pipeline.definitions import build_definitions

    return build_definitions(db_path).resolve_job_def("plan_job")


def materialize_version(
    instance: dg.DagsterInstance,
    store: PlanStore,
    version_id: str,
    *,
    trigger: str = "cli",
    log_level: str = "WARNING",
    extra_tags: dict[str, str] | None = None,
) -> RunOutcome:
    """Run ``plan_job`` for one version in this process, then record the run in plan_jobs.

    On a persistent instance (the CLI's, the benchmark's) the run goes through
    ``dg.execute_job``: ``JobDefinition.execute_in_process`` keeps every step output in
    memory until the run ends (for ``output_for_node``), which at 5,000 SKUs kept ~230 MB of
    frames the run had finished with (docs/performance.md). Steps still run in this process
    (in-process executor), so the run-local frame cache works the same.
    """
    store.get_version(version_id)  # clear error for an unknown version
    register_version_partition(instance, version_id)
    tags = {VERSION_TAG: version_id, TRIGGER_TAG: trigger, LEDGER_TAG: LEDGER_INLINE, **(extra_tags or {})}
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if instance.is_persistent:
        recon = dg.build_reconstructable_job(
            reconstructor_module_name=__name__,
            reconstructor_function_name="plan_job_for_store",
            reconstructable_kwargs={"db_path": str(store.path)},
        )
        with dg.execute_job(
            recon,
            instance=instance,
            tags={**tags, "dagster/partition": version_id},
            run_config=run_config,
            raise_on_error=False,
        ) as result:
            run_id, success, events = result.run_id, result.success, list(result.all_events)
    else:
        result = plan_job_for_store(str(store.path)).execute_in_process(
            partition_key=version_id, instance=instance, tags=tags, raise_on_error=False, run_config=run_config,
        )
        run_id, success, events = result.run_id, result.success, result.all_events
    return _finish_run(instance, store, run_id, success, events)


def _finish_run(instance: dg.DagsterInstance, store: PlanStore, run_id: str, success: bool, events) -> RunOutcome:
    """Collect the run's errors and failed checks, drop its cached frames, record it in plan_jobs."""
    errors = []
    for event in events:
        if event.is_failure and event.event_specific_data is not None:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                errors.append(f"{event.step_key or 'run'}: {error_text(error)}")
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if data is not None and not data.passed:
                errors.append(f"check {data.check_name} failed on {data.asset_key.to_user_string()}")
    RUN_CACHE.clear(run_id)  # frames no step of this run reads any more
    sync_plan_jobs(instance, store, run_ids=[run_id])
    return RunOutcome(run_id, success, errors)
