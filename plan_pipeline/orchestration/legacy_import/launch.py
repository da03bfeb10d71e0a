"""Run the legacy import in-process on the shared Dagster instance (used by the CLI and tests)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from plan_pipeline.orchestration.code_location import execute_on_code_location, require_code_location_store
from plan_pipeline.orchestration.legacy_import.jobs import (
    LEGACY_IMPORT_JOB_NAME,
    LEGACY_IMPORT_OP_NAME,
    legacy_import_run_config,
)
from plan_pipeline.orchestration.plan.launch import execute_watched
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG
from plan_pipeline.orchestration.plan.run_recovery import recover_orphaned_runs
from plan_pipeline.store import PlanStore


@dataclass
class LegacyImportRun:
    """A finished ``legacy_import`` run: its id, success, events and (when it succeeded) the
    op's report dict (:meth:`plan_pipeline.operations.legacy_backfill.BackfillReport.to_dict`)."""

    run_id: str
    success: bool
    all_events: Sequence[dg.DagsterEvent]
    summary: dict[str, Any] | None


def run_legacy_import_in_process(
    instance: dg.DagsterInstance,
    db_path: PlanStore | str | None,
    source: str | None,
    *,
    dry_run: bool = False,
    force: bool = False,
    trigger: str = "cli",
    log_level: str = "WARNING",
    progress=None,
) -> LegacyImportRun:
    """Run the ``legacy_import`` job in this process on ``instance`` (the CLI's path).

    Like a plan run: runs whose process is gone are recovered first, the run is created on the
    code location's origin and executes in a watched worker thread (bounded, reported pool
    waits; Ctrl-C closes it), see :func:`plan_pipeline.orchestration.plan.launch.execute_watched`.
    ``db_path`` (a DuckDB file's path, or a store: a PostgreSQL one too) must be the code
    location's store (unset: the one it resolves); ``source`` unset means the configured legacy source.
    """
    require_code_location_store(db_path)
    store = db_path if isinstance(db_path, PlanStore) else PlanStore(db_path)
    recover_orphaned_runs(instance, store if store.exists() else None, log=progress)
    run_config = legacy_import_run_config(source, dry_run, force)
    run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}

    def execute(launch_tags: dict[str, str]) -> LegacyImportRun:
        result = execute_on_code_location(instance, LEGACY_IMPORT_JOB_NAME, run_config=run_config,
                                          tags={TRIGGER_TAG: trigger, **launch_tags})
        with result:
            summary = result.output_for_node(LEGACY_IMPORT_OP_NAME) if result.success else None
        return LegacyImportRun(result.run_id, result.success, list(result.all_events), summary)

    return execute_watched(instance, execute, progress=progress)
