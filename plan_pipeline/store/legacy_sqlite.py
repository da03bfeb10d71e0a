"""Reading a legacy (reference project) SQLite plan database, read-only, as plain Python/pandas.

The legacy import (``plan_pipeline/operations/legacy_backfill.py``) maps what these functions
return; it never opens the database itself. Every function opens the file read-only, reads and
closes it. A SQLite failure is a :class:`LegacyDatabaseError` whose text is SQLite's own message
(:class:`LegacyDatabaseOpenError` when the file cannot even be opened).
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd


SQLITE_MAGIC = b"SQLite format 3\x00"
# The legacy tables holding one version's plan, in the order their absence is reported.
LEGACY_PLAN_TABLES = ("plan_series", "plan_kpis", "plan_artifacts")
LEGACY_KPI_COLUMNS = ("metric", "bucket_type", "bucket_key", "value", "unit")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LegacyDatabaseError(RuntimeError):
    """SQLite could not read the legacy database; the text is SQLite's (or pandas') message."""


class LegacyDatabaseOpenError(LegacyDatabaseError):
    """The legacy database file could not be opened."""


class MissingVersionsTable(LegacyDatabaseError):
    """The database has no ``plan_versions`` table (it is not a legacy plan database)."""


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` starts with the SQLite file header (no database is opened)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    import pandas as pd

    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LegacyDatabaseOpenError(str(exc)) from None
    try:
        yield con
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise LegacyDatabaseError(str(exc)) from None
    finally:
        con.close()


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}


def version_headers(path: Path, columns: Sequence[str]) -> list[tuple]:
    """Every ``plan_versions`` row as a tuple of ``columns`` (NULL where the table lacks one),
    ordered by ``created_at, version_id``. Raises :class:`MissingVersionsTable` without the table."""
    bad = [c for c in columns if not _COLUMN_RE.match(c)]
    if bad:
        raise ValueError(f"legacy header column name {bad[0]!r} is not a plain identifier")
    with _read_only(path) as con:
        if "plan_versions" not in _tables(con):
            raise MissingVersionsTable("table plan_versions is missing (not a legacy plan database)")
        present = {r[1] for r in con.execute("PRAGMA table_info(plan_versions)").fetchall()}
        select = ", ".join(c if c in present else f"NULL AS {c}" for c in columns)
        return con.execute(f"SELECT {select} FROM plan_versions ORDER BY created_at, version_id").fetchall()


@dataclass
class LegacyVersionRows:
    """What a legacy database holds for one version."""

    missing_tables: list[str] = field(default_factory=list)  # of LEGACY_PLAN_TABLES
    series: pd.DataFrame | None = None  # every plan_series row (all columns), rowid order
    kpis: pd.DataFrame | None = None  # plan_kpis rows (LEGACY_KPI_COLUMNS), rowid order
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> JSON text, by name


def version_rows(path: Path, version_id: str) -> LegacyVersionRows:
    """The ``plan_series``, ``plan_kpis`` and ``plan_artifacts`` rows of one legacy version."""
    import pandas as pd

    out = LegacyVersionRows()
    with _read_only(path) as con:
        tables = _tables(con)
        out.missing_tables = [t for t in LEGACY_PLAN_TABLES if t not in tables]
        if "plan_series" in tables:
            out.series = pd.read_sql_query(
                "SELECT * FROM plan_series WHERE version_id = ? ORDER BY rowid", con, params=[version_id]
            )
        if "plan_kpis" in tables:
            out.kpis = pd.read_sql_query(
                f"SELECT {', '.join(LEGACY_KPI_COLUMNS)} FROM plan_kpis WHERE version_id = ? ORDER BY rowid",
                con, params=[version_id],
            )
        if "plan_artifacts" in tables:
            for name, text in con.execute(
                "SELECT name, json_text FROM plan_artifacts WHERE version_id = ? ORDER BY name", [version_id]
            ).fetchall():
                out.artifacts[str(name)] = text if isinstance(text, str) else (text or b"").decode("utf-8")
    return out
