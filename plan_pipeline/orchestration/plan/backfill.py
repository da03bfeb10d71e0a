"""A Dagster partition backfill of plan versions (``plan-pipeline runs backfill V1 V2 ...``).

The backfill is Dagster's own (an asset backfill, as "Materialize" over selected partitions in
the UI makes): every plan asset (``plan_job``'s selection, the groups of :data:`PLAN_GROUPS`) for
each named version (partition). It is stored in the instance; the daemon's backfill loop picks
it up and submits one run per version to the run queue, which launches them within its limits
(one run per version at a time). The runs carry ``dagster/backfill`` and record themselves in
the run ledger (``plan_jobs``, trigger ``backfill``) like every run of the code location.
"""
from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_timestamp

from plan_pipeline.orchestration.plan.partitions import PLAN_GROUPS, register_version_partition
from plan_pipeline.store import PlanConflictError, PlanStore


class BackfillRefused(ValueError):
    """A version cannot be planned (unknown, read-only, frozen); nothing was submitted."""


def submit_version_backfill(instance: dg.DagsterInstance, store: PlanStore, version_ids: Sequence[str], *,
                            title: str | None = None) -> str:
    """Store a partition backfill of every plan asset for ``version_ids`` (in order, once each) in
    the instance and return its id. Refuses (nothing submitted) an empty list, an unknown version,
    a read-only (imported) one and a frozen one (approved, superseded)."""
    from plan_pipeline.orchestration.plan.definitions import PLAN_ASSETS

    versions = list(dict.fromkeys(version_ids))
    if not versions:
        raise BackfillRefused("no plan version named")
    for version_id in versions:  # the rule every plan write checks (an unknown version: PlanNotFoundError)
        try:
            store.require_replannable(version_id, "backfilled")
        except PlanConflictError as exc:
            raise BackfillRefused(str(exc)) from None
    for version_id in versions:
        register_version_partition(instance, version_id)
    graph = AssetGraph.from_assets(PLAN_ASSETS)
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=graph,
        partition_names=versions,
        asset_selection=sorted(dg.AssetSelection.groups(*PLAN_GROUPS).resolve(graph)),
        backfill_timestamp=get_current_timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title,
        description=f"plan-pipeline: every plan asset of {len(versions)} plan version(s)",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id
