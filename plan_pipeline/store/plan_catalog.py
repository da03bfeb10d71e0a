"""The plan catalog: what the Plans API lists and shows of versions, read in a few set-wise queries.

A page of ``GET /plans`` costs one query per concern for the whole page (the versions, their
published levels, their scorecard totals, their latest run), never one per version. A level's
series is read with its filters in DuckDB (``plan_series`` is filtered by version, level, run,
family, SKU and week before anything reaches Python) and handed over column-wise (Arrow); CSV and
Parquet are written by DuckDB's ``COPY`` into a file the caller streams. On PostgreSQL the same
filtered queries (one SQL text, positional parameters) answer rows: a page's JSON, the KPI Arrow
table and the CSV / Parquet file are built from them in Python (pandas, pyarrow) in DuckDB's
spelling and types (a NaN measure is then an empty CSV field, DuckDB writes ``nan``).
"""
from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_KPIS, SCORECARD_LEVEL
from plan_pipeline.store.backends import dialect_of, is_postgres
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.layouts import layout_for
from plan_pipeline.store.plan_rows import PUBLISHED
from plan_pipeline.store.rules import VERSION_STATUSES
from plan_pipeline.store.series_mapping import _series_select_pairs
from plan_pipeline.store.versions import VersionRecord, VersionRepository, _require_replannable

#: The orders of a plan list, each ending with ``version_id`` so a page boundary never moves.
PLAN_ORDERS: dict[str, str] = {
    "created_desc": "created_at DESC, version_id",
    "created_asc": "created_at, version_id",
    "updated_desc": "updated_at DESC, version_id",
    "version_id": "version_id",
    "status": "status, created_at DESC, version_id",
}
DEFAULT_PLAN_ORDER = "created_desc"
#: The formats a series slice is written in by ``COPY`` (the API streams the file).
SERIES_FILE_FORMATS = ("csv", "parquet")
#: The key columns every series row has, whatever the level's own frame columns are called.
SERIES_KEY_COLUMNS = (("family", "family_key"), ("sku", "item_key"), ("week", "time_bucket_key"))
#: The columns of a KPI row as the API answers it.
KPI_ROW_COLUMNS = ("level", "category", "metric", "bucket_type", "bucket_key", "value", "unit")
_JOB_FIELDS = ("job_id", "job_name", "status", "trigger", "submitted_at", "started_at", "finished_at",
               "duration_ms", "error")


def _iso(value: Any) -> Any:
    return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value


def _arrow(con, sql: str, params: list[Any]) -> Any:
    """The rows of ``sql`` as a pyarrow Table, column-wise and without an extra copy (a cursor of
    the caller's connection: the relation API needs one without a pending result). PostgreSQL:
    the rows typed as DuckDB types them (``df()``), as a pyarrow Table."""
    if is_postgres(con):
        return _arrow_of(con.execute(sql, params).df())
    cur = con.cursor()
    try:
        return cur.sql(sql, params=params).to_arrow_table()
    finally:
        cur.close()


def _json_value(value: Any) -> Any:
    """A value of a series row as DuckDB's ``to_json`` writes it (NaN and infinities: null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, date):
        return value.isoformat()
    return value


def _page_json(names: list[str], rows: list[tuple]) -> str:
    """The rows of a page as one JSON array of objects (PostgreSQL; DuckDB builds it in SQL)."""
    return json.dumps([{n: _json_value(v) for n, v in zip(names, row)} for row in rows],
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _write_frame(frame: Any, target: Path, file_format: str) -> None:
    """A series slice read on PostgreSQL written as DuckDB's COPY writes it: CSV with a header
    (floats in their shortest form, NULL empty), or Parquet (pyarrow)."""
    if file_format == "csv":
        for name in frame.columns:  # booleans as DuckDB writes them
            if frame[name].dtype.kind == "b" or str(frame[name].dtype) == "boolean":
                frame[name] = frame[name].map({True: "true", False: "false"})
        frame.to_csv(target, index=False)
    else:
        import pyarrow.parquet as pq

        pq.write_table(_arrow_of(frame), target)


def _arrow_of(frame: Any) -> Any:
    """A frame read on PostgreSQL (typed like DuckDB's ``df()``) as a pyarrow Table; a text column
    holding only NULLs stays text (pandas alone would make it Arrow's null type)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def _json_number(expr: str) -> str:
    """A DOUBLE expression as JSON allows it: NaN and infinities become null (DuckDB's ``to_json``
    writes them as ``NaN``/``Infinity``, which JSON parsers refuse)."""
    if expr.endswith(" AS DOUBLE)"):
        return f"CASE WHEN isfinite({expr}) THEN {expr} END"
    return expr


def check_plan_order(order: str) -> str:
    if order not in PLAN_ORDERS:
        raise PlanStoreError(f"unknown order {order!r}; choose one of: {', '.join(PLAN_ORDERS)}")
    return order


def check_version_status(status: str) -> str:
    if status not in VERSION_STATUSES:
        raise PlanStoreError(f"unknown status {status!r}; choose one of: {', '.join(VERSION_STATUSES)}")
    return status


def _check_page(limit: int, offset: int) -> None:
    if limit < 1 or offset < 0:
        raise PlanStoreError(f"limit must be at least 1 and offset at least 0 (got limit {limit}, offset {offset})")


class PlanCatalogRepository(VersionRepository):
    # ------------------------------------------------------------------ versions
    def plan_summaries(self, *, limit: int, offset: int = 0, order: str = DEFAULT_PLAN_ORDER,
                       status: str | None = None, input_set: str | None = None) -> dict[str, Any]:
        """One page of version summaries (:meth:`_summaries`) and the total matching the filters."""
        check_plan_order(order)
        if status is not None:
            check_version_status(status)
        _check_page(limit, offset)
        where = "WHERE (?::VARCHAR IS NULL OR status = ?) AND (?::VARCHAR IS NULL OR input_set = ?)"
        args = [status, status, input_set, input_set]
        with self.connect() as con:
            # the page and the count of all matching versions in one query (the count rides on
            # every row; an empty page asks again)
            cur = con.execute(f"SELECT *, count(*) OVER () AS total_matching FROM plan_versions {where} "
                              f"ORDER BY {PLAN_ORDERS[order]} LIMIT ? OFFSET ?", [*args, limit, offset])
            names = [d[0] for d in cur.description][:-1]
            rows = cur.fetchall()
            if rows:
                total = int(rows[0][-1])
            else:
                total = int(con.execute(f"SELECT count(*) FROM plan_versions {where}", args).fetchone()[0])
            records = [self._version_from_row(row[:-1], names) for row in rows]
            plans = self._summaries(con, records)
        return {"total": total, "plans": plans}

    def plan_summary(self, version_id: str, *, recent_runs: int = 10) -> dict[str, Any]:
        """The summary of one version plus its published levels (name, table, rows, run, time) and
        its most recent runs (newest first)."""
        with self.connect() as con:
            record = self._version_in(con, version_id)
            summary = self._summaries(con, [record])[0]
            levels = con.execute(
                "SELECT level, table_name, row_count, run_id, published_at FROM plan_levels "
                "WHERE version_id = ? AND state = ? AND applicable ORDER BY table_name DESC, level",
                [version_id, PUBLISHED]).fetchall()
            cur = con.execute(
                f"SELECT {', '.join(_JOB_FIELDS)} FROM plan_jobs WHERE version_id = ? "
                "ORDER BY submitted_at DESC NULLS LAST, job_id DESC LIMIT ?", [version_id, recent_runs])
            runs = [dict(zip(_JOB_FIELDS, (_iso(v) for v in r))) for r in cur.fetchall()]
        summary["levels"] = [{"name": lv, "table": table, "rows": int(rows), "run_id": run, "published_at": _iso(at)}
                             for lv, table, rows, run, at in levels]
        summary["recent_runs"] = runs
        return summary

    def _summaries(self, con, records: list[VersionRecord]) -> list[dict[str, Any]]:
        """Summaries of ``records`` (in their order): one query each for the published levels, the
        scorecard totals and the latest run of all of them."""
        ids = [r.version_id for r in records]
        if not ids:
            return []
        level_rows = con.execute(
            "SELECT version_id, level, table_name, row_count FROM plan_levels WHERE list_contains(?::VARCHAR[], "
            "version_id) AND state = ? AND applicable ORDER BY version_id, level", [ids, PUBLISHED]).fetchall()
        kpi_rows = con.execute(
            "SELECT version_id, metric, value, unit FROM plan_kpis_current WHERE list_contains(?::VARCHAR[], "
            "version_id) AND level = ? AND category = ? AND bucket_type = 'total'",
            [ids, SCORECARD_LEVEL, SCORECARD_CATEGORY]).fetchall()
        run_rows = con.execute(
            "SELECT version_id, job_id, job_name, status, trigger, submitted_at, finished_at FROM ("
            "SELECT *, row_number() OVER (PARTITION BY version_id ORDER BY submitted_at DESC NULLS LAST, "
            "job_id DESC) AS rn FROM plan_jobs WHERE list_contains(?::VARCHAR[], version_id)) AS ranked WHERE rn = 1",
            [ids]).fetchall()
        series: dict[str, dict[str, int]] = {v: {} for v in ids}
        kpi_levels: dict[str, dict[str, int]] = {v: {} for v in ids}
        for version, level, table, count in level_rows:
            (series if table == "plan_series" else kpi_levels)[version][level] = int(count)
        totals: dict[str, dict[str, tuple[float | None, str | None]]] = {v: {} for v in ids}
        for version, metric, value, unit in kpi_rows:
            totals[version][metric] = (value, unit)
        latest = {r[0]: {"run_id": r[1], "job_name": r[2], "status": r[3], "trigger": r[4],
                         "submitted_at": _iso(r[5]), "finished_at": _iso(r[6])} for r in run_rows}
        out = []
        for record in records:
            v = record.version_id
            found = totals[v]
            out.append({
                "version_id": v,
                "status": record.status,
                "input_set": record.input_set,
                "read_only": record.read_only,
                "note": record.note,
                "source": record.source,
                "parameters": record.params.to_dict(),
                "created_at": _iso(record.created_at),
                "updated_at": _iso(record.updated_at),
                "rows": series[v],
                "kpi_rows": kpi_levels[v],
                # the seven scorecard KPIs in their reading order; those not stored are left out
                "kpis": {k.name: {"value": found[k.name][0], "unit": found[k.name][1] or k.unit}
                         for k in SCORECARD_KPIS if k.name in found},
                "latest_run": latest.get(v),
            })
        return out

    def require_replannable(self, version_id: str, action: str = "re-planned") -> None:
        """Refuse (PlanConflictError) a frozen or read-only version, PlanNotFoundError an unknown one:
        the rule every plan write checks, asked before a run is launched."""
        with self.connect() as con:
            _require_replannable(con, version_id, action)

    # ------------------------------------------------------------------ series
    def _series_source(self, con, version_id: str, level: str) -> tuple[list[tuple[str, str]], str]:
        """(the (quoted name, expression) pairs of the select list, the run id) of a published
        plan_series level; a clear refusal naming the version's published levels otherwise."""
        entry = con.execute(
            "SELECT run_id, columns_json FROM plan_levels WHERE version_id = ? AND level = ? AND state = ? "
            "AND applicable AND table_name = 'plan_series'", [version_id, level, PUBLISHED]).fetchone()
        if entry is None:
            self._require_version(con, version_id)  # an unknown version is a 404, not a bad level
            known = [r[0] for r in con.execute(
                "SELECT level FROM plan_levels WHERE version_id = ? AND state = ? AND applicable "
                "AND table_name = 'plan_series' ORDER BY level", [version_id, PUBLISHED]).fetchall()]
            raise PlanStoreError(
                f"plan version {version_id!r} has no published level {level!r}; its published levels: "
                f"{', '.join(known) or 'none (the version has not been planned)'}")
        columns = json.loads(entry[1])
        parts = _series_select_pairs(layout_for(level), columns, dialect_of(con))
        names = {c["name"] for c in columns}
        parts += [(f'"{name}"', source) for name, source in SERIES_KEY_COLUMNS if name not in names]
        return parts, entry[0]

    @staticmethod
    def _series_where(version_id: str, level: str, run: str, filters: dict[str, str | None]) -> tuple[str, list[Any]]:
        """The WHERE clause of a published level's rows and its arguments (positional: one text for both backends)."""
        where = ("WHERE version_id = ? AND level = ? AND source_run_id = ? "
                 "AND (?::VARCHAR IS NULL OR family_key = ?) AND (?::VARCHAR IS NULL OR item_key = ?) "
                 "AND (?::VARCHAR IS NULL OR time_bucket_key >= ?) AND (?::VARCHAR IS NULL OR time_bucket_key <= ?)")
        args: list[Any] = [version_id, level, run]
        for name in ("family", "sku", "week_from", "week_to"):
            args += [filters[name], filters[name]]
        return where, args

    def series_page(self, version_id: str, level: str, *, family: str | None = None, sku: str | None = None,
                    week_from: str | None = None, week_to: str | None = None, limit: int,
                    offset: int = 0) -> dict[str, Any]:
        """One page of a published level's rows (the level's frame columns plus ``family``, ``sku``,
        ``week``), filtered in DuckDB, in the order written; ``total`` matches the filters.
        ``rows_json`` is the page's rows as one JSON array, built by DuckDB (no Python object per
        row or value: the caller splices the text into its answer)."""
        _check_page(limit, offset)
        filters = {"family": family, "sku": sku, "week_from": week_from, "week_to": week_to}
        with self.connect() as con:
            pairs, run = self._series_source(con, version_id, level)
            where, args = self._series_where(version_id, level, run, filters)
            if is_postgres(con):  # the page's rows, then their JSON in DuckDB's spelling (_page_json)
                total = con.execute(f"SELECT count(*) FROM plan_series {where}", args).fetchone()[0]
                select = ", ".join(f"{expr} AS {name}" for name, expr in pairs)
                page = con.execute(f"SELECT {select} FROM plan_series {where} ORDER BY row_seq LIMIT ? OFFSET ?",
                                   [*args, limit, offset]).fetchall()
                return {"total": int(total), "rows_json": _page_json([n[1:-1] for n, _ in pairs], page)}
            row = ", ".join(f"{name} := {_json_number(expr)}" for name, expr in pairs)
            total, rows_json = con.execute(
                f"SELECT (SELECT count(*) FROM plan_series {where}), "
                f"(SELECT to_json(coalesce(list(struct_pack({row}) ORDER BY row_seq), []))::VARCHAR "
                f"FROM (SELECT * FROM plan_series {where} ORDER BY row_seq LIMIT ? OFFSET ?))",
                [*args, *args, limit, offset]).fetchone()
        return {"total": int(total), "rows_json": rows_json}

    def write_series_file(self, version_id: str, level: str, target: Path, file_format: str, *,
                          family: str | None = None, sku: str | None = None, week_from: str | None = None,
                          week_to: str | None = None, limit: int | None = None, offset: int = 0) -> Path:
        """Write a published level's rows (same columns, filters and order as :meth:`series_page`;
        every matching row unless ``limit``) to ``target`` as CSV (with header) or Parquet, by COPY."""
        if file_format not in SERIES_FILE_FORMATS:
            raise PlanStoreError(f"unknown format {file_format!r}; choose one of: json, {', '.join(SERIES_FILE_FORMATS)}")
        filters = {"family": family, "sku": sku, "week_from": week_from, "week_to": week_to}
        options = "FORMAT CSV, HEADER" if file_format == "csv" else "FORMAT PARQUET"
        with self.connect() as con:
            pairs, run = self._series_source(con, version_id, level)
            select = ", ".join(f"{expr} AS {name}" for name, expr in pairs)
            where, args = self._series_where(version_id, level, run, filters)
            query = f"SELECT {select} FROM plan_series {where} ORDER BY row_seq LIMIT ? OFFSET ?"
            if is_postgres(con):  # the rows typed as DuckDB types them, written by pandas / pyarrow
                _write_frame(con.execute(query, [*args, limit, offset]).df(), Path(target), file_format)
                return Path(target)
            path = str(Path(target)).replace("'", "''")
            con.execute(f"COPY ({query}) TO '{path}' ({options})", [*args, limit, offset])
        return Path(target)

    # ------------------------------------------------------------------ KPIs
    def kpi_rows(self, version_id: str, *, level: str | None = None, metric: str | None = None,
                 bucket_type: str | None = None, limit: int, offset: int = 0) -> dict[str, Any]:
        """The version's published KPI rows (:data:`KPI_ROW_COLUMNS`), filtered, in stored order;
        an unknown level is refused naming the version's KPI levels."""
        _check_page(limit, offset)
        with self.connect() as con:
            self._require_version(con, version_id)
            if level is not None:
                known = [r[0] for r in con.execute(
                    "SELECT level FROM plan_levels WHERE version_id = ? AND state = ? AND applicable "
                    "AND table_name = 'plan_kpis' ORDER BY level", [version_id, PUBLISHED]).fetchall()]
                if level not in known:
                    raise PlanStoreError(f"plan version {version_id!r} has no published KPI level {level!r}; "
                                         f"its KPI levels: {', '.join(known) or 'none'}")
            where = ("WHERE version_id = ? AND (?::VARCHAR IS NULL OR level = ?) "
                     "AND (?::VARCHAR IS NULL OR metric = ?) AND (?::VARCHAR IS NULL OR bucket_type = ?)")
            args = [version_id, level, level, metric, metric, bucket_type, bucket_type]
            total = int(con.execute(f"SELECT count(*) FROM plan_kpis_current {where}", args).fetchone()[0])
            table = _arrow(con, f"SELECT {', '.join(KPI_ROW_COLUMNS)} FROM plan_kpis_current {where} "
                           "ORDER BY level, row_seq LIMIT ? OFFSET ?", [*args, limit, offset])
        return {"total": total, "rows": table}
