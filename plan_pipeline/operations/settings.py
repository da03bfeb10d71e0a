"""Settings of the store operations that the command line describes before anything runs:
environment variable names, defaults and the retention policy.

Pure Python (no pandas, DuckDB or Dagster), so ``plan-pipeline --help`` can show them without
loading the operations themselves (:mod:`~plan_pipeline.operations.backup`,
:mod:`~plan_pipeline.operations.retention`, :mod:`~plan_pipeline.operations.legacy_backfill`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from plan_pipeline.store.errors import PlanStoreError

#: Where ``plan-pipeline backup`` writes by default (else ``<home>/backups``).
BACKUP_DIR_ENV = "PLAN_PIPELINE_BACKUP_DIR"
#: Backups kept by default.
DEFAULT_KEEP = 7
#: The configured legacy scpln source (SQLite plan database or output folders).
LEGACY_SOURCE_ENV = "PLAN_PIPELINE_LEGACY_SOURCE"


@dataclass(frozen=True)
class RetentionPolicy:
    version_max_age_months: int | None = 18
    max_versions: int | None = 600
    kpi_max_age_months: int | None = 24
    audit_max_age_months: int | None = 36

    def __post_init__(self):
        for name in ("version_max_age_months", "max_versions", "kpi_max_age_months", "audit_max_age_months"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise PlanStoreError(f"retention policy {name} must be a non-negative integer or off, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
