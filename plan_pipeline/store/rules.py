"""The store's names and rules: where the file lives, identifiers, statuses, frozen versions."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    """The DuckDB file: ``$PLAN_STORE_URL`` when it is ``duckdb:///path``, else ``$PLAN_PIPELINE_DB``,
    else ``<project home>/plan_store.duckdb``."""
    url = os.environ.get(STORE_URL_ENV, "").strip()
    if url.lower().startswith("duckdb:"):
        location = parse_store_url(url)
        assert location.path is not None
        return location.path
    env = os.environ.get(DB_ENV)
    return Path(env).resolve() if env else project_home() / DB_FILE_NAME


#: The one setting choosing the store's backend (docs/operations.md, "Choosing the store backend"):
#: unset -> the embedded DuckDB file (``default_db_path``), ``duckdb:///abs/path.duckdb`` -> that
#: file, ``postgresql://user@host:port/db`` -> a PostgreSQL database (store/backends/postgres.py).
STORE_URL_ENV = "PLAN_STORE_URL"
STORE_BACKENDS = ("duckdb", "postgres")


@dataclass(frozen=True)
class StoreLocation:
    """Where the plan store lives: a DuckDB file (``path``) or a PostgreSQL database (``dsn``)."""

    backend: str
    path: Path | None = None
    dsn: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"

    @property
    def url(self) -> str:
        """The URL naming this store, as ``$PLAN_STORE_URL`` takes it (a PostgreSQL URL with its
        password, if any: for handing to a process or a resource, never for messages: :meth:`describe`)."""
        return self.dsn if self.dsn is not None else f"duckdb://{self.path}"

    def describe(self) -> str:
        """For messages and logs: the file, or the URL without its password."""
        if self.path is not None:
            return str(self.path)
        parts = urlsplit(self.dsn or "")
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def duckdb_location(path: str | Path) -> StoreLocation:
    """A DuckDB file. A store URL given as a path (``PlanStore(pg_store.path)``) is refused: it would
    quietly become a file named after it in the current folder."""
    if re.match(r"(postgres(ql)?|duckdb):", str(path), re.IGNORECASE):
        raise PlanStoreError(f"{path!s} is a plan store URL, not a DuckDB file: open it with PlanStore.from_url(url) "
                             "or PlanStore(location=store.location)")
    return StoreLocation("duckdb", path=Path(path).resolve())


def parse_store_url(url: str) -> StoreLocation:
    """``duckdb:///abs/path`` or ``postgresql://...`` (also ``postgres://``) as a :class:`StoreLocation`."""
    text = url.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme == "duckdb":
        rest = text[len("duckdb:"):]
        if not rest.startswith("///"):
            raise PlanStoreError(f"{STORE_URL_ENV}={url!r}: a DuckDB store is duckdb:///absolute/path/plan_store.duckdb")
        return duckdb_location(rest[2:])
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(text)
        if not parts.hostname or not parts.path.strip("/"):
            raise PlanStoreError(f"{STORE_URL_ENV}: a PostgreSQL store is postgresql://user@host:port/database "
                                 f"(got {StoreLocation('postgres', dsn=text).describe()!r})")
        return StoreLocation("postgres", dsn=text)
    raise PlanStoreError(f"{STORE_URL_ENV}={url!r}: expected duckdb:///path or postgresql://user@host:port/database")


def store_location() -> StoreLocation:
    """The store ``$PLAN_STORE_URL`` names; unset: the DuckDB file of :func:`default_db_path`."""
    url = os.environ.get(STORE_URL_ENV, "").strip()
    return parse_store_url(url) if url else duckdb_location(default_db_path())


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
