"""The plan store facade: every read and write of the plan store goes through ``PlanStore``.

``PlanStore`` combines one repository per table group (input sets, versions, plan levels,
overrides and the PSI grid, the run ledger, artifacts, version comparison, the plan catalog the API
lists, API keys, what /metrics reads), all sharing ``PlanStoreBase``'s connection handling;
statements that several writes compose run on the unit of work (``store.transaction()``).
Only ``plan_pipeline/store`` speaks SQL; this module re-exports the names callers use.
"""
from __future__ import annotations

from plan_pipeline.store.api_keys import ApiKeyRepository
from plan_pipeline.store.artifacts import ArtifactRepository
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
    VERSION_STATUSES,
    WRITE_MEMORY_LIMIT_ENV,
    bulk_write_memory_limit,
    check_identifier,
    default_db_path,
    is_frozen,
    project_home,
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
    """The plan store over one DuckDB file. Cheap to create; opens nothing until used."""


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
    "VERSION_STATUSES",
    "WRITE_MEMORY_LIMIT_ENV",
    "PlanConflictError",
    "PlanNotFoundError",
    "PlanStore",
    "PlanStoreBase",
    "PlanStoreBusyError",
    "PlanStoreError",
    "Publication",
    "StoreMetrics",
    "VersionRecord",
    "WriteTotal",
    "attrs_json",
    "bulk_write_memory_limit",
    "check_identifier",
    "default_db_path",
    "direct_write_id",
    "is_frozen",
    "prepare_kpi_level",
    "prepare_series_level",
    "project_home",
]
