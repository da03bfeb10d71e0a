"""Plan versions are the partitions of every plan asset."""
import dagster as dg

PLAN_VERSION_PARTITIONS_NAME = "plan_version"
plan_version_partitions = dg.DynamicPartitionsDefinition(name=PLAN_VERSION_PARTITIONS_NAME)

# Every asset, check and op that touches the DuckDB file runs in this pool (limit 1 in dagster.yaml).
DUCKDB_POOL = "duckdb"
PLAN_GROUP = "plan"


def register_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if not instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.add_dynamic_partitions(PLAN_VERSION_PARTITIONS_NAME, [version_id])


def remove_version_partition(instance: dg.DagsterInstance, version_id: str) -> None:
    if instance.has_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id):
        instance.delete_dynamic_partition(PLAN_VERSION_PARTITIONS_NAME, version_id)
