"""The DuckDB plan store: schema and migrations, connections, and the repository facade.

The facade is loaded on first use (PEP 562): importing a light submodule such as
``plan_pipeline.store.rules`` does not import pandas and DuckDB with the repository, so the
command line can describe itself (``plan-pipeline --help``) without them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plan_pipeline.store.errors import PlanConflictError, PlanNotFoundError, PlanStoreBusyError, PlanStoreError
from plan_pipeline.store.rules import default_db_path

if TYPE_CHECKING:
    from plan_pipeline.store.repository import PlanStore

__all__ = [
    "PlanConflictError",
    "PlanNotFoundError",
    "PlanStore",
    "PlanStoreBusyError",
    "PlanStoreError",
    "default_db_path",
]


def __getattr__(name: str) -> Any:
    if name == "PlanStore":
        from plan_pipeline.store.repository import PlanStore

        globals()[name] = PlanStore
        return PlanStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
