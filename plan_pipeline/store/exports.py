"""Export statements: one version's published rows written to files (CSV and JSON by DuckDB's
own writer, ``COPY (<query>) TO ? (FORMAT csv | json)``; Parquet as Arrow batches, see
:func:`~plan_pipeline.store.table_copy.copy_query_to`), and the export event.

:class:`ExportStatements` is a statement group of
:class:`~plan_pipeline.store.unit_of_work.StoreTransaction`; the export's layout (folders,
manifest, the JSON document around the rows, staging) is :mod:`plan_pipeline.exports.export`.

Text formats are written as the export documents them (docs/operations.md): timestamps
``YYYY-MM-DD HH:MM:SS`` with ``.ffffff`` only when there are microseconds; in CSV an empty cell
is NULL (NaN and an empty string are written as one too) and floats use the shortest
round-trip form; in JSON, NaN and infinities are ``null`` and JSON columns are embedded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.maintenance import insert_version_event
from plan_pipeline.store.table_copy import copy_parts_to, copy_query_to, ident, table_columns
from plan_pipeline.timeutil import utc_now

# Exported tables -> natural row order.
EXPORT_TABLES = {
    "plan_series": "level, row_seq",
    "plan_kpis": "level, row_seq",
    "plan_overrides": "id",
    "plan_override_events": "event_ts, id",
}
# What each exported table is read from: plan rows come from the published plan only.
EXPORT_SOURCES = {"plan_series": "plan_series_current", "plan_kpis": "plan_kpis_current"}
# Tables copied one level at a time (their order starts with the level): DuckDB then sorts one
# level in memory at a time, not the whole plan (docs/performance.md, exports at disk speed).
BY_LEVEL = "level, "
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


def _timestamp_text(col: str) -> str:
    return (f"strftime({col}, '%Y-%m-%d %H:%M:%S') || "
            f"CASE WHEN date_trunc('second', {col}) = {col} THEN '' ELSE strftime({col}, '.%f') END")


def _projection(columns: list[tuple[str, str]], fmt: str, exclude: tuple[str, ...] = ()) -> str:
    """The SELECT list that writes each column as the export format documents it."""
    out = []
    for name, kind in columns:
        if name in exclude:
            continue
        col, kind = ident(name), kind.upper()
        if fmt == "parquet":
            expr = col
        elif kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind:
            expr = _timestamp_text(col)
        elif kind in FLOAT_TYPES:
            bad = f"isnan({col})" if fmt == "csv" else f"isnan({col}) OR isinf({col})"
            expr = f"CASE WHEN {bad} THEN NULL ELSE {col} END"
        elif kind == "VARCHAR" and fmt == "csv":
            expr = f"nullif({col}, '')"
        else:
            expr = col
        out.append(f"{expr} AS {col}")
    return ", ".join(out)


@dataclass
class VersionTableRows:
    """One exported table of one version on an open read transaction; ``write`` copies its rows
    (natural order) into a file of ``fmt`` and returns the row count."""

    _con: Any
    table: str
    version_id: str

    def write(self, path: Path, fmt: str, envelope: tuple[bytes, bytes] = (b"", b""),
              exclude: tuple[str, ...] = ()) -> int:
        """``envelope`` (csv, json): bytes written before and after the rows; ``exclude``:
        columns left out."""
        source = EXPORT_SOURCES.get(self.table, self.table)
        columns = table_columns(self._con, source)
        # PostgreSQL: the plain columns; table_copy writes them as the projection spells them
        select = (", ".join(ident(n) for n, _ in columns if n not in exclude) if is_postgres(self._con)
                  else _projection(columns, fmt, exclude))
        sql = f"SELECT {select} FROM {ident(source)} WHERE version_id = ?"
        order = EXPORT_TABLES[self.table]
        levels = self.levels() if order.startswith(BY_LEVEL) else {}
        if not levels:
            if envelope != (b"", b""):
                return copy_parts_to(self._con, [(f"{sql} ORDER BY {order}", [self.version_id])], path, fmt, envelope)
            return copy_query_to(self._con, f"{sql} ORDER BY {order}", [self.version_id], path, fmt)
        level_sql = f"{sql} AND level = ? ORDER BY {order.removeprefix(BY_LEVEL)}"
        parts = [(level_sql, [self.version_id, level]) for level in levels]
        rows = copy_parts_to(self._con, parts, path, fmt, envelope)
        if rows != sum(levels.values()):  # the read transaction sees one state: cannot happen
            raise PlanStoreError(f"{path.name}: wrote {rows} rows of {self.table}, counted {sum(levels.values())}")
        return rows

    def levels(self) -> dict[str, int]:
        """``{level: rows}`` of this table and version, in the export's level order (tables
        ordered by level only; else empty)."""
        if not EXPORT_TABLES[self.table].startswith(BY_LEVEL):
            return {}
        source = EXPORT_SOURCES.get(self.table, self.table)
        rows = self._con.execute(
            f"SELECT level, count(*) FROM {ident(source)} WHERE version_id = ? GROUP BY level ORDER BY level",
            [self.version_id],
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def row_count(self) -> int:
        source = EXPORT_SOURCES.get(self.table, self.table)
        row = self._con.execute(f"SELECT count(*) FROM {ident(source)} WHERE version_id = ?",
                                [self.version_id]).fetchone()
        return int(row[0])


class ExportStatements:
    """Exports of a version (a mixin of ``StoreTransaction``)."""

    _con: Any

    def version_table_rows(self, table: str, version_id: str) -> VersionTableRows:
        """The rows of exported ``table`` (one of :data:`EXPORT_TABLES`) of ``version_id``."""
        if table not in EXPORT_TABLES:
            raise ValueError(table)
        return VersionTableRows(self._con, table, version_id)

    def approved_version_ids(self) -> list[str]:
        rows = self._con.execute(
            "SELECT version_id FROM plan_versions WHERE status = 'approved' ORDER BY created_at, version_id"
        ).fetchall()
        return [r[0] for r in rows]

    def write_dwh_partition(self, table: str, version_id: str, path: Path) -> int:
        """The published rows of ``table`` of ``version_id`` without the ``version_id`` column (it is
        the partition's folder name) into one Parquet file; returns rows."""
        return self.version_table_rows(table, version_id).write(path, "parquet", exclude=("version_id",))

    def record_export_event(self, version_id: str, payload: dict[str, Any], *, actor: str) -> None:
        """Append a plan-level ``export`` event to the version's audit trail."""
        insert_version_event(self._con, version_id, "export", payload, actor=actor, at=utc_now())
