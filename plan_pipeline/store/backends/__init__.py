"""The store's database backends behind one seam (docs/architecture.md, "The store seam").

A ``PlanStore`` talks to its database through a *connection* whose interface is DuckDB's
subset the repositories use: ``execute(sql, params)`` with ``?`` placeholders answering
``fetchone()`` / ``fetchall()`` / ``description`` / ``df()``, a write answering one row with its
row count, ``executemany``. The embedded DuckDB file (``store/connection.py``) is the default;
``store/backends/postgres.py`` wraps a psycopg connection in that interface
(:class:`~plan_pipeline.store.backends.postgres.PgConnection`), so a statement both dialects
agree on is written once in the repositories. Where the dialects differ (bulk loads from a
frame, the DuckDB-only SQL of a level's insert and read, schema and migrations) the repository
asks :func:`is_postgres` and takes the backend's own path, kept next to the DuckDB one.
"""
from __future__ import annotations

from typing import Any


def is_postgres(con: Any) -> bool:
    """Whether ``con`` is a PostgreSQL connection of the store (else: DuckDB)."""
    return getattr(con, "dialect", "duckdb") == "postgres"


def dialect_of(con: Any) -> str:
    return "postgres" if is_postgres(con) else "duckdb"
