"""Run the legacy import in-process on the shared Dagster instance (used by the CLI and tests)."""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.legacy_import import definitions as legacy_import_definitions
from plan_pipeline.orchestration.legacy_import.jobs import LEGACY_IMPORT_JOB_NAME, legacy_import_run_config
from plan_pipeline.orchestration.plan.definitions import build_resources
from plan_pipeline.orchestration.plan.launch import execute_watched
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG
from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs
from plan_pipeline.store import PlanStore


def run_legacy_import_in_process(
    instance: dg.DagsterInstance,
    db_path: str | None,
    source: str,
    *,
    dry_run: bool = False,
    force: bool = False,
    trigger: str = "cli",
    log_level: str = "WARNING",
    progress=None,
) -> dg.ExecuteInProcessResult:
    """Run the ``legacy_import`` job in this process on ``instance`` (the CLI's path).

    Like a plan run: runs whose process is gone are recovered first, and the run executes in a
    watched worker thread (bounded, reported pool waits; Ctrl-C closes it), see
    :func:`plan_pipeline.orchestration.plan.launch.execute_watched`.
    """
    store = PlanStore(db_path)
    recover_orphaned_runs(instance, store if store.path.exists() else None, log=progress)
    bound = dg.Definitions.merge(legacy_import_definitions.defs, dg.Definitions(resources=build_resources(db_path)))
    job = bound.resolve_job_def(LEGACY_IMPORT_JOB_NAME)
    run_config = legacy_import_run_config(source, dry_run, force)
    run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}

    def execute(launch_tags: dict[str, str]) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=instance, run_config=run_config, tags={TRIGGER_TAG: trigger, **launch_tags}, raise_on_error=False
        )

    if not instance.is_persistent:
        return execute({})
    return execute_watched(instance, execute, progress=progress)
