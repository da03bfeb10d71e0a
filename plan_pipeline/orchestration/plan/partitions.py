"""Plan versions are the partitions of every plan asset."""
import dagster as dg

PLAN_VERSION_PARTITIONS_NAME = "plan_version"
plan_version_partitions = dg.DynamicPartitionsDefinition(name=PLAN_VERSION_PARTITIONS_NAME)

#: Metadata key of ``planning_inputs``: the version's lifecycle status (its materializations and
#: the CLI's lifecycle observations; here, beside the partitions, so the CLI reports a status
#: change without loading the plan assets).
VERSION_STATUS_KEY = "plan/version_status"

# Every asset, check and op that touches the DuckDB file runs in this pool (limit 1 in dagster.yaml).
DUCKDB_POOL = "duckdb"

# The plan assets in three asset groups, so that each group's lineage fits a 1600x1000 browser
# at the UI's own "zoom to fit width" with full-size nodes (a group of more than ~5 asset ranks
# is drawn in the zoomed-out minimal style, whose labels are cut after 18 characters):
#   plan_basis     planning_inputs -> aggregate_plan -> detail_plan, what both chains start from;
#   plan           the plain chain (reconciliation, MRP, capacity, report) and published_plan;
#   anchored_plan  the anchor branch and its adjusted chain;
#   plan_review    after the publication: baseline_comparison -> plan_review_report.
# ``plan_job`` selects all four (PLAN_GROUPS); the global lineage shows them as four boxes.
PLAN_BASIS_GROUP = "plan_basis"
PLAN_GROUP = "plan"
ANCHORED_PLAN_GROUP = "anchored_plan"
PLAN_REVIEW_GROUP = "plan_review"
PLAN_GROUPS = (PLAN_BASIS_GROUP, PLAN_GROUP, ANCHORED_PLAN_GROUP, PLAN_REVIEW_GROUP)


def register_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, [version_id])


def remove_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.delete_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id)


def report_version_status(instance: dg.DagsterInstance, version_id: str, previous: str, status: str, *,
                          by: str = "plan-pipeline") -> bool:
    """Show a lifecycle change in the Dagster UI: a runless observation of ``planning_inputs`` for
    the version's partition with the new status (``VERSION_STATUS_KEY``). False (nothing reported)
    when the instance does not know the version's partition. The store is the record; callers
    treat this as a courtesy that must never fail the change itself."""
    if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        return False
    instance.report_runless_asset_event(dg.AssetObservation(
        asset_key="planning_inputs", partition=version_id,
        metadata={VERSION_STATUS_KEY: status, "previous_status": previous,
                  "plan_state": f"status changed by {by}: {previous} -> {status}"}))
    return True
