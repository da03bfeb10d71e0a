"""How the Plans API is configured: one model, read from the command line or the environment."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

#: Where ``plan-pipeline serve`` listens unless told otherwise (loopback only).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class ApiSettings(BaseModel):
    """Settings of one Plans API process (``create_app(settings)``)."""

    db_path: Path = Field(description="the plan store DuckDB file")
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
