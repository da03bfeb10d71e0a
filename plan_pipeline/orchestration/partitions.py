"""Plan versions are the partitions of every plan asset."""
import dagster as dg

PLAN_VERSION_PARTITIONS_NAME = "plan_version"
plan_version_partitions = dg.DynamicPartitionsDefinition(name=PLAN_VERSION_PARTITIONS_NAME)

# Every asset, check and op that touches the DuckDB file runs in this pool (limit 1 in dagster.yaml).
DUCKDB_POOL = "duckdb"
PLAN_GROUP = "plan"
