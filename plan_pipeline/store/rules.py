"""The store's names and rules: where the file lives, identifiers, statuses, frozen versions."""
from __future__ import annotations

import os
import re
from pathlib import Path

from plan_pipeline.store.errors import PlanStoreError

DB_ENV = "PLAN_PIPELINE_DB"
HOME_ENV = "PLAN_PIPELINE_HOME"
DB_FILE_NAME = "plan_store.duckdb"

IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VERSION_STATUSES = ("draft", "submitted", "approved", "superseded", "imported")
# Frozen versions keep their plan as it is: no edits, no re-plan, no overwrite, no plain delete.
FROZEN_STATUSES = ("approved", "superseded", "imported")
# Allowed status transitions: draft -> submitted -> approved; a submitted plan can be sent back
# to draft; an approved plan can only be superseded (edits are frozen).
STATUS_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted",),
    "submitted": ("approved", "draft"),
    "approved": ("superseded",),
}
JOB_STATUSES = ("queued", "started", "success", "failure", "canceled")
ACTIVE_JOB_STATUSES = ("queued", "started")
KPI_KEY = ["category", "metric", "bucket_type", "bucket_key"]


def is_frozen(status: str, read_only: bool) -> bool:
    """Approved, superseded, imported and read-only versions are frozen."""
    return bool(read_only) or status in FROZEN_STATUSES


def project_home() -> Path:
    """The project-local data folder (``$PLAN_PIPELINE_HOME`` or ``./.plan_pipeline``)."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".plan_pipeline").resolve()


def default_db_path() -> Path:
    """``$PLAN_PIPELINE_DB`` or ``<project home>/plan_store.duckdb``."""
    env = os.environ.get(DB_ENV)
    return Path(env).resolve() if env else project_home() / DB_FILE_NAME


WRITE_MEMORY_LIMIT_ENV = "PLAN_PIPELINE_WRITE_MEMORY_LIMIT"
DEFAULT_WRITE_MEMORY_LIMIT = "256MB"


def bulk_write_memory_limit() -> str:
    """DuckDB memory limit for plan-level writes (``$PLAN_PIPELINE_WRITE_MEMORY_LIMIT``)."""
    value = os.environ.get(WRITE_MEMORY_LIMIT_ENV, DEFAULT_WRITE_MEMORY_LIMIT).strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise PlanStoreError(f"{WRITE_MEMORY_LIMIT_ENV}={value!r}: expected a size such as 256MB or 1GB")
    return value


#: The roles an API key carries (who may do what: ``plan_pipeline/api/roles.py``).
API_KEY_ROLES = ("viewer", "planner", "approver", "admin")


def check_identifier(kind: str, value: str) -> str:
    """Version ids and input-set labels: 1-64 of ``A-Z a-z 0-9 . _ -``, starting alphanumeric.

    This keeps ids safe to use in file names (no path traversal) and in Dagster partition keys.
    """
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value) or ".." in value:
        raise PlanStoreError(
            f"invalid {kind} {value!r}: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit (no '..')"
        )
    return value
