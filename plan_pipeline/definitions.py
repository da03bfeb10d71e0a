"""The Dagster code location of plan-pipeline (``dagster dev -w workspace.yaml`` loads this).

Each domain of ``plan_pipeline/orchestration/`` exports its own definitions; this module merges
them and binds the resources and the executor. Nothing imports this module (it is the root).
Importing it opens no database: the store path is resolved inside steps.
"""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.inbox.definitions import defs as inbox_defs
from plan_pipeline.orchestration.legacy_import.definitions import defs as legacy_import_defs
from plan_pipeline.orchestration.maintenance.definitions import defs as maintenance_defs
from plan_pipeline.orchestration.plan.definitions import PLAN_ASSETS, build_resources
from plan_pipeline.orchestration.plan.definitions import defs as plan_defs
from plan_pipeline.orchestration.replanning.definitions import defs as replanning_defs

DOMAIN_DEFINITIONS = (plan_defs, legacy_import_defs, maintenance_defs, inbox_defs, replanning_defs)

__all__ = ["PLAN_ASSETS", "DOMAIN_DEFINITIONS", "build_definitions", "build_resources", "defs"]


def build_definitions(db_path: str | None = None) -> dg.Definitions:
    return dg.Definitions.merge(
        *DOMAIN_DEFINITIONS,
        dg.Definitions(resources=build_resources(db_path), executor=dg.in_process_executor),
    )


defs = build_definitions()
