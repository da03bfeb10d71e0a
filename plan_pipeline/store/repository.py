"""The plan store facade: every read and write of the plan store goes through ``PlanStore``.

``PlanStore`` combines one repository per table group (input sets, versions, plan levels,
overrides and the PSI grid, the run ledger, artifacts, version comparison, the plan catalog the API
lists, API keys, what /metrics reads), all sharing ``PlanStoreBase``'s connection handling;
statements that several writes compose run on the unit of work (``store.transaction()``).
Only ``plan_pipeline/store`` speaks SQL; this module re-exports the names callers use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from plan_pipeline.store.api_keys import ApiKeyRepository
from plan_pipeline.store.artifacts import ArtifactRepository
from plan_pipeline.store.backends.postgres import not_on_postgres
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.comparison import (
    COMPARISON_BUCKETS,
    COMPARISON_COLUMNS,
    COMPARISON_LEVEL,
    COMPARISON_METRIC_NAMES,
    COMPARISON_METRICS,
    ComparisonRepository,
)
from plan_pipeline.store.errors import (
    PlanConflictError,
    PlanNotFoundError,
    PlanStoreBusyError,
    PlanStoreError,
)
from plan_pipeline.store.input_sets import InputSetRepository
from plan_pipeline.store.overrides import OverrideRepository
from plan_pipeline.store.plan_catalog import PlanCatalogRepository
from plan_pipeline.store.plan_levels import (
    PlanLevelRepository,
    Publication,
    attrs_json,
    direct_write_id,
    prepare_kpi_level,
    prepare_series_level,
)
from plan_pipeline.store.psi import PsiRepository
from plan_pipeline.store.rules import (
    ACTIVE_JOB_STATUSES,
    DB_ENV,
    DEFAULT_WRITE_MEMORY_LIMIT,
    FROZEN_STATUSES,
    HOME_ENV,
    IDENTIFIER_RE,
    JOB_STATUSES,
    STORE_URL_ENV,
    VERSION_STATUSES,
    WRITE_MEMORY_LIMIT_ENV,
    StoreLocation,
    bulk_write_memory_limit,
    check_identifier,
    default_db_path,
    is_frozen,
    parse_store_url,
    project_home,
    store_location,
)
from plan_pipeline.store.run_ledger import RunLedgerRepository
from plan_pipeline.store.store_metrics import StoreMetrics, StoreMetricsRepository, WriteTotal
from plan_pipeline.store.versions import VersionRecord, VersionRepository


class PlanStore(
    PlanCatalogRepository,
    InputSetRepository,
    VersionRepository,
    PlanLevelRepository,
    PsiRepository,
    OverrideRepository,
    RunLedgerRepository,
    ArtifactRepository,
    ComparisonRepository,
    ApiKeyRepository,
    StoreMetricsRepository,
    PlanStoreBase,
):
    """The plan store over one DuckDB file or a PostgreSQL database. Cheap to create; opens nothing
    until used.

    ``PlanStore(path)``: that DuckDB file. ``PlanStore(location=parse_store_url(url))`` or
    :meth:`from_url`: the store a URL names. ``PlanStore()``: ``$PLAN_STORE_URL`` (unset: the
    default DuckDB file). A PostgreSQL location makes a :class:`PostgresPlanStore`.
    """

    def __init__(self, path: str | Path | None = None, *, location: StoreLocation | None = None, **kwargs: Any):
        super().__init__(path, location=location, **kwargs)
        if self.location.is_postgres and type(self) is PlanStore:
            # the same object with the PostgreSQL backend's methods (what is not ported yet refuses)
            self.__class__ = PostgresPlanStore

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> PlanStore:
        """The store ``url`` names (``duckdb:///abs/path`` or ``postgresql://...``)."""
        return PlanStore(location=parse_store_url(url), **kwargs)


#: What a PostgreSQL store does today (issue 15, first increment): every other public method of
#: ``PlanStore`` raises "... is not yet available on PostgreSQL" (docs/operations.md lists them).
POSTGRES_PORTED = frozenset({
    # connections and schema
    "session", "reading", "connect", "write", "transaction", "snapshot", "initialise", "schema_version", "writing_as", "is_postgres",
    "from_url",
    "exists",  # pgwire
    # input sets
    "import_input_set", "get_input_set", "list_input_sets", "load_input_set",
    # versions
    "create_version", "duplicate_version", "free_version_id", "get_version", "find_version", "list_versions",
    "delete_version", "taken_version_ids", "tombstone", "transition_status", "require_replannable",
    # plan levels
    "stage_series", "stage_kpis", "stage_not_applicable", "publish_run", "replace_series", "replace_kpis",
    "level_state", "publication", "series_levels", "has_series", "read_series", "read_kpis", "has_kpis",
    "read_series_rows", "read_series_batches", "level_attrs",
    # planner edits and locks
    "record_override", "level_overrides", "detail_overrides", "read_overrides", "read_override_events",
    # run ledger
    "read_write_log", "store_metrics", "table_counts",
    "upsert_jobs", "list_jobs", "open_jobs", "close_jobs", "get_job", "active_jobs",
    # artifacts
    "put_artifact", "get_artifact",
    # API keys
    "create_api_key", "list_api_keys", "revoke_api_key", "api_key_principal",
    # version comparison (pgwire)
    "baseline_version", "comparable_baseline", "compare_versions", "level_row_diff",
    "write_baseline_comparison", "read_baseline_comparison",
    # the PSI grid
    "psi_cells", "psi_edit", "psi_events",
    # the plan catalog
    "plan_summaries", "plan_summary", "series_page", "write_series_file", "kpi_rows",
})


def _not_yet(name: str) -> Any:
    def unavailable(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise not_on_postgres(f"PlanStore.{name}")

    unavailable.__name__ = unavailable.__qualname__ = name
    unavailable.__doc__ = "Not yet available on PostgreSQL: raises PlanStoreError (issue 15; docs/operations.md)."
    return unavailable


class PostgresPlanStore(PlanStore):
    """The plan store in a PostgreSQL database: :data:`POSTGRES_PORTED` work, every other public
    method raises a :class:`PlanStoreError` saying it is not yet available on PostgreSQL."""


def postgres_unported() -> list[str]:
    """The public methods of ``PlanStore`` a PostgreSQL store does not have yet."""
    return sorted(name for name in dir(PlanStore)
                  if not name.startswith("_") and callable(getattr(PlanStore, name)) and name not in POSTGRES_PORTED)


def _mark_unported() -> None:
    for name in postgres_unported():
        setattr(PostgresPlanStore, name, _not_yet(name))


_mark_unported()


__all__ = [
    "ACTIVE_JOB_STATUSES",
    "COMPARISON_BUCKETS",
    "COMPARISON_COLUMNS",
    "COMPARISON_LEVEL",
    "COMPARISON_METRICS",
    "COMPARISON_METRIC_NAMES",
    "DB_ENV",
    "DEFAULT_WRITE_MEMORY_LIMIT",
    "FROZEN_STATUSES",
    "HOME_ENV",
    "IDENTIFIER_RE",
    "JOB_STATUSES",
    "STORE_URL_ENV",
    "VERSION_STATUSES",
    "WRITE_MEMORY_LIMIT_ENV",
    "PlanConflictError",
    "PlanNotFoundError",
    "PlanStore",
    "PlanStoreBase",
    "PlanStoreBusyError",
    "PlanStoreError",
    "PostgresPlanStore",
    "Publication",
    "StoreLocation",
    "StoreMetrics",
    "VersionRecord",
    "WriteTotal",
    "attrs_json",
    "bulk_write_memory_limit",
    "check_identifier",
    "default_db_path",
    "direct_write_id",
    "is_frozen",
    "parse_store_url",
    "postgres_unported",
    "prepare_kpi_level",
    "prepare_series_level",
    "project_home",
    "store_location",
]
