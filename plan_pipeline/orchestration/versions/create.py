"""Creating a plan version: one home for what the CLI (``version create``) and the Plans API
(``POST /plans``) do. The version is stored as a draft, then its ``plan_version`` partition is added
to the Dagster instance, so the UI lists it and a run can materialize it."""
from __future__ import annotations

import dagster as dg

from plan_pipeline.orchestration.plan.partitions import register_version_partition
from plan_pipeline.planning.parameters import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline.store.repository import VersionRecord


def create_registered_version(store: PlanStore, instance: dg.DagsterInstance, version_id: str | None,
                              input_set: str, params: PlanningParameters, *, note: str | None = None,
                              source: str) -> VersionRecord:
    """Store a new draft version of ``input_set`` with ``params`` (``version_id`` None: the next free
    generated id) and register its partition on ``instance``. Store refusals (unknown input set,
    id taken or deleted, bad id) raise before anything reaches the instance."""
    chosen = store.free_version_id() if version_id is None else version_id  # "" is refused, not generated
    record = store.create_version(chosen, input_set, params, note=note, source=source)
    register_version_partition(instance, record.version_id)
    return record
