"""Resources injected into assets and IO managers."""


import dagster as dg

from plan_pipeline.store import PlanStore


class PlanStoreResource(dg.ConfigurableResource):
    """The DuckDB plan store. ``db_path`` unset means ``$PLAN_PIPELINE_DB`` or the project default,
    resolved when a step runs (never at import). Its writes are recorded as the ``dagster`` source
    (``plan_write_log``, counted by ``GET /metrics``)."""

    db_path: str | None = None

    def get_store(self) -> PlanStore:
        return PlanStore(self.db_path, write_source="dagster")
