"""The DuckDB plan store: schema and migrations, connections, and the repository facade."""
from plan_pipeline.store.repository import PlanStore, PlanStoreError, default_db_path

__all__ = ["PlanStore", "PlanStoreError", "default_db_path"]
