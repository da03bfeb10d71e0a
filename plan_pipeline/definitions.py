"""The Dagster code location of plan-pipeline (``dagster dev -w workspace.yaml`` loads this).

Each domain of ``plan_pipeline/orchestration/`` exports its own definitions; this module merges
them, binds the resources and the executor (in-process, or Celery when
``$PLAN_PIPELINE_CELERY_BROKER_URL`` is set: :mod:`plan_pipeline.orchestration.executor`), and puts the run ledger hooks on every asset, check
and job (:func:`~plan_pipeline.orchestration.plan.run_ledger_hooks.with_run_ledger`: every run
records itself in ``plan_jobs``, including jobs a domain adds later). Nothing imports this module (it is the root).
Importing it opens no database: the store path is resolved inside steps.
"""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.executor import plan_executor
from plan_pipeline.orchestration.inbox import definitions as inbox
from plan_pipeline.orchestration.legacy_import import definitions as legacy_import
from plan_pipeline.orchestration.maintenance import definitions as maintenance
from plan_pipeline.orchestration.plan import definitions as plan
from plan_pipeline.orchestration.plan.definitions import PLAN_ASSETS, build_resources
from plan_pipeline.orchestration.plan.run_ledger_hooks import with_run_ledger
from plan_pipeline.orchestration.replanning import definitions as replanning
from plan_pipeline.orchestration.versions import definitions as versions

# The domains' definitions (imported as modules: Dagster's loader allows one Definitions object
# at this module's scope, ``defs``).
DOMAIN_DEFINITIONS = (plan.defs, legacy_import.defs, maintenance.defs, inbox.defs, replanning.defs, versions.defs)

__all__ = ["DOMAIN_DEFINITIONS", "PLAN_ASSETS", "build_definitions", "build_resources", "defs"]


def build_definitions(db_path: str | None = None, *, store_url: str | None = None) -> dg.Definitions:
    """Every domain's definitions on one plan store (``store_url`` or the DuckDB file ``db_path``;
    neither: the store the environment names, resolved when a step runs)."""
    return with_run_ledger(dg.Definitions.merge(
        *DOMAIN_DEFINITIONS,
        dg.Definitions(resources=build_resources(db_path, store_url=store_url), executor=plan_executor()),
    ))


defs = build_definitions()
