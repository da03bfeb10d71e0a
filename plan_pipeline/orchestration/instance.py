"""The project's Dagster instance: its home folder with the project's ``dagster.yaml``, and the
instance itself.

The ``dagster.yaml`` written into ``$DAGSTER_HOME`` is rendered here, in one place, from the
packaged file (run queue, pools, run monitoring) and two settings (docs/deployment.md):

* ``$PLAN_PIPELINE_DAGSTER_STORAGE_URL`` (``postgresql://user:pw@host:port/db``): Dagster's run,
  event-log and schedule storage on PostgreSQL (dagster-postgres, the ``cluster`` extra). The
  file names the variable, never the URL: every process that opens the instance (CLI,
  webserver, daemon, run workers, Celery workers) reads it from its environment. Unset: Dagster's
  SQLite files in ``$DAGSTER_HOME`` (one machine).
* ``$PLAN_STORE_URL``: the plan store's backend. Unset or ``duckdb://...``: DuckDB, one writer
  process, so the ``duckdb`` pool (every step that touches the store) is limited to 1 slot.
  ``postgresql://...``: PostgreSQL takes concurrent writers (each run stages its rows under its
  own run id), so the pool only bounds the store connections of concurrent steps
  (:data:`POSTGRES_STORE_POOL_LIMIT`).

Only Dagster is imported here (no plan assets, no pandas or DuckDB), so a command that just
records something on the instance (a partition, a lifecycle observation) does not load the
plan job to get it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources as importlib_resources
from pathlib import Path

import dagster as dg

from plan_pipeline.store.rules import STORE_URL_ENV, parse_store_url

DAGSTER_YAML_MARKER = "# The project's Dagster instance settings."

#: Dagster's run, event-log and schedule storage on PostgreSQL (unset: SQLite in $DAGSTER_HOME).
DAGSTER_STORAGE_URL_ENV = "PLAN_PIPELINE_DAGSTER_STORAGE_URL"
#: The plan store's backend (unset or duckdb://: DuckDB; postgresql://: PostgreSQL). The store
#: layer owns the setting; the instance only asks which backend it names (:func:`plan_store_backend`).
#: Slots of the store pool when the plan store is PostgreSQL: concurrent store-touching steps
#: (each holds at most one store connection), well below PostgreSQL's default 100 connections.
POSTGRES_STORE_POOL_LIMIT = 8

# The pool block of the packaged dagster.yaml (DuckDB: one writer) and its PostgreSQL variant.
_DUCKDB_POOL_LIMIT = "    default_limit: 1\n"
_POSTGRES_POOL_LIMIT = (
    "    # PLAN_STORE_URL names a PostgreSQL plan store: concurrent writers are fine, the pool only\n"
    "    # bounds how many store-touching steps (store connections) run at once.\n"
    f"    default_limit: {POSTGRES_STORE_POOL_LIMIT}\n"
)
_POSTGRES_STORAGE = (
    "\n# Run, event-log and schedule storage on PostgreSQL (dagster-postgres). The URL comes from\n"
    f"# ${DAGSTER_STORAGE_URL_ENV} in the environment of every process that opens the instance.\n"
    "storage:\n"
    "  postgres:\n"
    "    postgres_url:\n"
    f"      env: {DAGSTER_STORAGE_URL_ENV}\n"
)


def _setting(environ: Mapping[str, str] | None, name: str) -> str:
    return ((os.environ if environ is None else environ).get(name) or "").strip()


def dagster_storage_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$PLAN_PIPELINE_DAGSTER_STORAGE_URL`` (a ``postgresql://`` URL), or None: SQLite storage."""
    url = _setting(environ, DAGSTER_STORAGE_URL_ENV)
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise RuntimeError(f"{DAGSTER_STORAGE_URL_ENV}={url.split('@')[-1]!r}: expected a postgresql:// URL")
    return url


def plan_store_backend(environ: Mapping[str, str] | None = None) -> str:
    """``"duckdb"`` or ``"postgres"``: the backend ``$PLAN_STORE_URL`` names (unset: DuckDB), read
    by the store's own parser (store/rules.py)."""
    url = _setting(environ, STORE_URL_ENV)
    return parse_store_url(url).backend if url else "duckdb"


def project_dagster_yaml(environ: Mapping[str, str] | None = None) -> str:
    """The instance's dagster.yaml for this environment: the packaged file, with the store pool's
    limit for the plan store's backend and, when set, PostgreSQL storage."""
    text = importlib_resources.files("plan_pipeline.orchestration").joinpath("dagster.yaml").read_text()
    if plan_store_backend(environ) == "postgres":
        assert text.count(_DUCKDB_POOL_LIMIT) == 1, "dagster.yaml: the duckdb pool limit line moved"
        text = text.replace(_DUCKDB_POOL_LIMIT, _POSTGRES_POOL_LIMIT)
    if dagster_storage_url(environ) is not None:
        text += _POSTGRES_STORAGE
    return text


def prepare_dagster_home(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Create ``home`` with the project's dagster.yaml rendered for ``environ`` (default: this
    process's environment), refreshed if it is our own copy."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    text = project_dagster_yaml(environ)
    current = target.read_text() if target.exists() else None
    # Write ours unless a user replaced the file (theirs lacks our marker line).
    if current is None or (current.startswith(DAGSTER_YAML_MARKER) and current != text):
        target.write_text(text)
    return home


def get_instance() -> dg.DagsterInstance:
    """The instance named by ``$DAGSTER_HOME`` (the same one ``dagster dev`` uses)."""
    if not os.environ.get("DAGSTER_HOME"):
        raise RuntimeError("DAGSTER_HOME is not set")
    return dg.DagsterInstance.get()
