"""Resources injected into assets and IO managers."""


import dagster as dg

from plan_pipeline.store import PlanStore
from plan_pipeline.store.rules import parse_store_url


class PlanStoreResource(dg.ConfigurableResource):
    """The plan store (DuckDB or PostgreSQL). ``store_url`` (``duckdb:///path`` or
    ``postgresql://...``) names it; else ``db_path``, a DuckDB file; neither: ``$PLAN_STORE_URL``,
    else ``$PLAN_PIPELINE_DB`` or the project default, resolved when a step runs (never at import,
    and nothing is opened until a step reads or writes). Its writes are recorded as the ``dagster``
    source (``plan_write_log``, counted by ``GET /metrics``)."""

    db_path: str | None = None
    store_url: str | None = None

    def get_store(self) -> PlanStore:
        if self.store_url:
            return PlanStore(location=parse_store_url(self.store_url), write_source="dagster")
        return PlanStore(self.db_path, write_source="dagster")
