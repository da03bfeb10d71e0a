"""How the Plans API is configured: one model, read from the command line or the environment."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from plan_pipeline.store.rules import StoreLocation, duckdb_location, parse_store_url

#: Where ``plan-pipeline serve`` listens unless told otherwise (loopback only).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class ApiSettings(BaseModel):
    """Settings of one Plans API process (``create_app(settings)``)."""

    db_path: Path | None = Field(default=None, description="the plan store DuckDB file")
    store_url: str | None = Field(
        default=None, description="the plan store's URL (duckdb:///path or postgresql://...; wins over db_path)")
    dagster_home: Path | None = Field(
        default=None, description="the Dagster instance runs are launched on (POST /plans/{v}/runs)"
    )
    lock_wait_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="how long a request waits for the store while another process (a plan run) writes, then 503",
    )
    retry_after_seconds: int = Field(default=2, ge=1, le=300, description="the Retry-After of a 503 store_busy")
    default_page_size: int = Field(default=50, ge=1, le=10_000, description="rows per page when a request names none")
    max_page_size: int = Field(default=10_000, ge=1, le=1_000_000, description="the most rows one page may ask for")

    @model_validator(mode="after")
    def _one_store(self) -> ApiSettings:
        if self.db_path is None and not self.store_url:
            raise ValueError("the Plans API needs its plan store: db_path or store_url")
        if self.store_url:
            parse_store_url(self.store_url)  # a malformed URL is refused at start, not at the first request
        return self

    def store_location(self) -> StoreLocation:
        """Where the plan store is: ``store_url``, else the DuckDB file ``db_path``."""
        if self.store_url:
            return parse_store_url(self.store_url)
        assert self.db_path is not None
        return duckdb_location(self.db_path)
