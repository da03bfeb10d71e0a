"""Plan levels: staging a run's frames, publishing a whole run, reading the published plan."""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plan_pipeline.faults import crash_point, pause_point
from plan_pipeline.planning.vocabulary import STORED_KPI_COLUMNS
from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.layouts import layout_for
from plan_pipeline.store.plan_rows import (
    DERIVED_LEVELS,
    PLAN_TABLES,
    PUBLISHED,
    STAGED,
    PreparedLevel,
    _insert_kpi_level,
    _insert_series_level,
)
from plan_pipeline.store.rules import KPI_KEY
from plan_pipeline.store.run_ledger import _active_jobs, _upsert_jobs
from plan_pipeline.store.series_mapping import _frame_from_arrow, _prepare_series, _read_series_sql, _restore_dtypes
from plan_pipeline.store.series_tables import SERIES_COLUMN_NAMES, physical_tables
from plan_pipeline.store.versions import _require_replannable
from plan_pipeline.store.write_log import record_write
from plan_pipeline.timeutil import utc_now as _now

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

#: Rows per slice of :meth:`PlanLevelRepository.read_series_batches`: a slice of the widest level
#: (15 columns) is ~8 MB as a frame. The reference export of 5,000 SKUs peaks at ~375 MB with it
#: (840 MB reading whole levels; 32,768 rows: ~355 MB, same time; docs/performance.md).
SERIES_BATCH_ROWS = 65_536


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (datetime,)):
        return value.isoformat()
    raise TypeError(f"frame attribute of type {type(value).__name__} is not JSON serialisable")


def attrs_json(attrs: dict) -> str:
    """A frame's ``attrs`` (stage metadata such as summaries) as JSON, stored beside its rows."""
    return json.dumps(attrs or {}, ensure_ascii=False, default=_json_default)


def direct_write_id() -> str:
    """Run id stamped on a level written outside a Dagster run."""
    return f"direct-{uuid.uuid4()}"


@dataclass(frozen=True)
class Publication:
    """What :meth:`PlanStore.publish_run` switched."""

    version_id: str
    run_id: str
    runs: list[str]
    levels: dict[str, int]
    not_applicable: list[str]
    removed: dict[str, int]
    published_at: datetime


def prepare_series_level(level: str, frame: pd.DataFrame) -> PreparedLevel:
    prepared, columns_meta, sql = _prepare_series(layout_for(level), frame)
    return PreparedLevel(level, "plan_series", prepared, len(prepared), json.dumps(columns_meta),
                         attrs_json(frame.attrs), sql)


def prepare_kpi_level(level: str, frame: pd.DataFrame, *, source: str | None = None) -> PreparedLevel:
    """Check a KPI frame (columns, non-empty unique keys, numeric values) and lay it out."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PlanStoreError(f"KPI level {level!r} expects a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in STORED_KPI_COLUMNS if c not in frame.columns]
    if missing:
        raise PlanStoreError(f"KPI frame for level {level!r} lacks column(s): {', '.join(missing)}")
    incoming = frame[STORED_KPI_COLUMNS].copy().reset_index(drop=True)
    for col in KPI_KEY:
        if incoming[col].isna().any():
            raise PlanStoreError(f"KPI column {col!r} has empty values (level {level!r})")
        incoming[col] = incoming[col].astype(str)
    duplicated = incoming.duplicated(KPI_KEY)
    if duplicated.any():
        first = incoming.loc[duplicated.idxmax(), KPI_KEY]
        raise PlanStoreError(f"KPI level {level!r}: duplicate key ({', '.join(f'{c}={first[c]!r}' for c in KPI_KEY)})")
    incoming["value"] = pd.to_numeric(incoming["value"], errors="raise").astype("float64")
    incoming["unit"] = incoming["unit"].astype(object).where(incoming["unit"].notna(), None)
    incoming.insert(0, "row_seq", range(len(incoming)))
    return PreparedLevel(level, "plan_kpis", incoming, len(incoming), None, "{}", source=source or level)


def _drop_run_level(con, version_id: str, level: str, run_id: str) -> None:
    """Remove what ``run_id`` staged earlier for (version, level) (a step retried in the same run)."""
    state = con.execute(
        "SELECT state FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, run_id]
    ).fetchone()
    if state is None:
        return
    if state[0] == PUBLISHED:
        raise PlanStoreError(f"run {run_id} already published level {level!r} of plan version {version_id!r}")
    for table in PLAN_TABLES:
        for physical in physical_tables(table, level):
            con.execute(f"DELETE FROM {physical} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                        [version_id, level, run_id])
    con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, run_id])


def _drop_published_level(con, version_id: str, level: str) -> None:
    row = con.execute(
        "SELECT run_id FROM plan_levels WHERE version_id = ? AND level = ? AND state = ?", [version_id, level, PUBLISHED]
    ).fetchone()
    if row is None:
        return
    for table in PLAN_TABLES:
        for physical in physical_tables(table, level):
            con.execute(f"DELETE FROM {physical} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                        [version_id, level, row[0]])
    con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?", [version_id, level, row[0]])


def published_plan_rows(con, version_id: str) -> list[tuple]:
    """The version's ``plan_levels`` rows (level, run_id, table_name, state, applicable, row_count,
    written_at, published_at) of its published plan: the levels derived from it after publication
    (:data:`DERIVED_LEVELS`) left out. Empty: the version has no published plan."""
    return [r for r in con.execute(
        "SELECT level, run_id, table_name, state, applicable, row_count, written_at, published_at "
        "FROM plan_levels WHERE version_id = ? AND state = ? ORDER BY level, run_id",
        [version_id, PUBLISHED],
    ).fetchall() if r[0] not in DERIVED_LEVELS]


class PlanLevelRepository(PlanStoreBase):
    #
    # A plan run *stages* every level it computes: its rows go into plan_series / plan_kpis
    # stamped with the run id, next to the version's published rows, and a plan_levels row
    # says (version, level, run) is staged. Nothing a reader sees changes. When the run has
    # staged every level of the plan, publish_run switches the version's published levels to
    # that run's in ONE transaction and drops every other run's rows of the version. A run
    # that fails or dies half-way leaves the previous plan published and readable.

    def stage_series(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        job: dict[str, Any] | None = None,
        _fault: Callable[[Any], None] | None = None,
    ) -> int:
        """Stage the rows of one (version, level) written by plan run ``run_id`` (one transaction).

        Refused when the version is frozen (approved, superseded, imported). ``job``: the run's
        ``plan_jobs`` row, upserted in the same transaction. ``_fault``: a test hook called
        after the rows are inserted, before the commit.
        """
        prepared = prepare_series_level(level, frame)
        with self.write(bulk=True) as con:
            lock_version(con, version_id)
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            _insert_series_level(con, version_id, prepared, run_id, STAGED, _now())
            record_write(con, self.write_source, "stage", version_id, [(level, prepared.row_count)], run_id=run_id)
            if _fault is not None:
                _fault(con)
            if job is not None:
                _upsert_jobs(con, [job])
        crash_point(f"stage.after_commit:{level}")
        pause_point(f"stage.after_commit:{level}")
        return prepared.row_count

    def stage_kpis(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        source: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> int:
        """Stage the KPI rows of one (version, level) written by plan run ``run_id`` (one transaction)."""
        prepared = prepare_kpi_level(level, frame, source=source)
        with self.write(bulk=True) as con:
            lock_version(con, version_id)
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            _insert_kpi_level(con, version_id, prepared, run_id, STAGED, _now())
            record_write(con, self.write_source, "stage", version_id, [(level, prepared.row_count)], run_id=run_id)
            if job is not None:
                _upsert_jobs(con, [job])
        crash_point(f"stage.after_commit:{level}")
        return prepared.row_count

    def stage_not_applicable(
        self, version_id: str, level: str, table: str, *, run_id: str, job: dict[str, Any] | None = None
    ) -> None:
        """Record that a stage does not apply to this version in run ``run_id`` (no rows).

        Publication then removes the level from the version's plan (e.g. an anchored branch a
        version no longer has).
        """
        if table not in PLAN_TABLES:
            raise PlanStoreError(f"unknown plan table {table!r}")
        with self.write() as con:
            lock_version(con, version_id)
            _require_replannable(con, version_id)
            _drop_run_level(con, version_id, level, run_id)
            con.execute(
                "INSERT INTO plan_levels (version_id, level, run_id, table_name, state, applicable, columns_json, "
                "attrs_json, row_count, written_at) VALUES (?, ?, ?, ?, ?, FALSE, NULL, '{}', 0, ?)",
                [version_id, level, run_id, table, STAGED, _now()],
            )
            record_write(con, self.write_source, "stage", version_id, [(level, 0)], run_id=run_id)
            if job is not None:
                _upsert_jobs(con, [job])

    def publish_run(self, version_id: str, run_ids: list[str], required_levels: list[str]) -> Publication:
        """Make the levels staged by ``run_ids`` the version's plan, in one transaction.

        ``run_ids``: the publishing run first, then the runs it re-executes (parent, grandparent,
        ...); for each level the first of them that staged it wins. Every level in
        ``required_levels`` must have been staged (possibly as not applicable), otherwise nothing
        changes: a plan is published whole. The version is re-checked: a version approved (or
        otherwise frozen) while the run was computing is refused. Everything else of the version
        -- the previous plan, levels of other finished runs -- is removed in the same transaction;
        levels staged by other runs still in progress are kept.
        """
        if not run_ids:
            raise PlanStoreError("publish_run needs the publishing run id")
        crash_point("publish.before_transaction")
        now = _now()
        with self.write(bulk=True) as con:
            lock_version(con, version_id)
            _require_replannable(con, version_id)
            staged = con.execute(
                "SELECT level, run_id, table_name, applicable, row_count FROM plan_levels "
                "WHERE version_id = ? AND state = ? AND list_contains(?::VARCHAR[], run_id)",
                [version_id, STAGED, list(run_ids)],
            ).fetchall()
            rank = {run: i for i, run in enumerate(run_ids)}
            chosen: dict[str, tuple] = {}
            for level, run, table, applicable, count in sorted(staged, key=lambda r: rank[r[1]]):
                chosen.setdefault(level, (run, table, bool(applicable), int(count)))
            missing = [lvl for lvl in required_levels if lvl not in chosen]
            if missing:
                raise PlanStoreError(
                    f"run {run_ids[0]} did not write level(s) {', '.join(missing)} of plan version {version_id!r}: "
                    "a plan is published whole, so the version keeps its previous plan. Materialize every plan "
                    "asset of the version (plan_job, or 'plan-pipeline materialize V')"
                )
            keep_runs = set(_active_jobs(con, version_id, exclude=run_ids))
            entries = con.execute(
                "SELECT level, run_id, state FROM plan_levels WHERE version_id = ?", [version_id]
            ).fetchall()
            chosen_pairs = {(level, c[0]) for level, c in chosen.items()}
            dropped = [(level, run) for level, run, state in entries if (level, run) not in chosen_pairs
                       and not (state == STAGED and run in keep_runs)]
            # rows go by run where a run loses every level, else by (level, run): plain filtered
            # scans (no join), so the delete stays within the write memory limit at any size
            kept_by_run = {run for _, run in chosen_pairs} | keep_runs
            whole_runs = sorted({run for _, run in dropped if run not in kept_by_run})
            partial = sorted({(level, run) for level, run in dropped if run in kept_by_run})
            removed = dict.fromkeys(PLAN_TABLES, 0)
            for table in PLAN_TABLES:
                if whole_runs:
                    for physical in physical_tables(table):
                        removed[table] += con.execute(
                            f"DELETE FROM {physical} WHERE version_id = ? AND list_contains(?::VARCHAR[], "
                            "source_run_id)", [version_id, whole_runs],
                        ).fetchone()[0]
                for level, run in partial:
                    for physical in physical_tables(table, level):
                        removed[table] += con.execute(
                            f"DELETE FROM {physical} WHERE version_id = ? AND level = ? AND source_run_id = ?",
                            [version_id, level, run],
                        ).fetchone()[0]
            for level, run in dropped:
                con.execute("DELETE FROM plan_levels WHERE version_id = ? AND level = ? AND run_id = ?",
                            [version_id, level, run])
            con.executemany(
                "UPDATE plan_levels SET state = ?, published_at = ? WHERE version_id = ? AND level = ? AND run_id = ?",
                [[PUBLISHED, now, version_id, level, run] for level, run in sorted(chosen_pairs)],
            )
            record_write(con, self.write_source, "publish", version_id,
                         [(level, c[3]) for level, c in sorted(chosen.items()) if c[2]], run_id=run_ids[0], at=now)
            crash_point("publish.before_commit")
        crash_point("publish.after_commit")
        levels = {lvl: c[3] for lvl, c in chosen.items() if c[2]}
        return Publication(version_id, run_ids[0], sorted({c[0] for c in chosen.values()}), levels,
                           sorted(lvl for lvl, c in chosen.items() if not c[2]), removed, now)

    def replace_series(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str | None = None,
        job: dict[str, Any] | None = None,
        _fault: Callable[[Any], None] | None = None,
    ) -> int:
        """Write and publish one level directly, outside a plan run (administration, imports, tests).

        The level's previous published rows are replaced atomically; other levels are untouched.
        ``_fault`` is a test hook called after the new rows are inserted, before the commit.
        """
        prepared = prepare_series_level(level, frame)
        with self.write(bulk=True) as con:
            lock_version(con, version_id)
            self._require_version(con, version_id)
            _drop_published_level(con, version_id, level)
            run = run_id or direct_write_id()
            _insert_series_level(con, version_id, prepared, run, PUBLISHED, _now())
            record_write(con, self.write_source, "replace", version_id, [(level, prepared.row_count)], run_id=run)
            if _fault is not None:
                _fault(con)
            if job is not None:
                _upsert_jobs(con, [job])
        return prepared.row_count

    def replace_kpis(
        self,
        version_id: str,
        level: str,
        frame: pd.DataFrame,
        *,
        run_id: str | None = None,
        source: str | None = None,
        job: dict[str, Any] | None = None,
    ) -> int:
        """Write and publish one KPI level directly, outside a plan run (see :meth:`replace_series`)."""
        prepared = prepare_kpi_level(level, frame, source=source)
        with self.write(bulk=True) as con:
            lock_version(con, version_id)
            self._require_version(con, version_id)
            _drop_published_level(con, version_id, level)
            run = run_id or direct_write_id()
            _insert_kpi_level(con, version_id, prepared, run, PUBLISHED, _now())
            record_write(con, self.write_source, "replace", version_id, [(level, prepared.row_count)], run_id=run)
            if job is not None:
                _upsert_jobs(con, [job])
        return prepared.row_count

    def _level_entry(self, con, version_id: str, level: str, run_id: str | None) -> tuple | None:
        # fetched to its end: a relation (read_series' Arrow read) is refused while a result is open
        if run_id is None:
            rows = con.execute(
                "SELECT run_id, table_name, applicable, columns_json, attrs_json, state, row_count FROM plan_levels "
                "WHERE version_id = ? AND level = ? AND state = ?",
                [version_id, level, PUBLISHED],
            ).fetchall()
        else:
            rows = con.execute(
                "SELECT run_id, table_name, applicable, columns_json, attrs_json, state, row_count FROM plan_levels "
                "WHERE version_id = ? AND level = ? AND run_id = ?",
                [version_id, level, run_id],
            ).fetchall()
        return rows[0] if rows else None

    def _rows_entry(self, con, version_id: str, level: str, run_id: str | None = None,
                    table: str = "plan_series") -> tuple:
        """The ``plan_levels`` row of a level with rows in ``table`` (as :meth:`_level_entry`), or a
        :class:`PlanStoreError` saying the published plan (or the run) has none."""
        entry = self._level_entry(con, version_id, level, run_id)
        if entry is None or not entry[2] or entry[1] != table:
            which = "published plan" if run_id is None else f"run {run_id}"
            what = "rows" if table == "plan_series" else "KPIs"
            raise PlanStoreError(f"plan version {version_id!r} has no {what} at level {level!r} in its {which}")
        return entry

    def level_state(self, version_id: str, level: str, run_id: str | None = None) -> str | None:
        """``'staged'`` / ``'published'`` / ``'not_applicable'`` for (version, level[, run]); None if absent.

        Without ``run_id``: the published level.
        """
        with self.connect() as con:
            entry = self._level_entry(con, version_id, level, run_id)
        if entry is None:
            return None
        return entry[5] if entry[2] else "not_applicable"

    def publication(self, version_id: str) -> dict[str, Any]:
        """The version's published plan (runs, time, levels with rows) and the runs staged beside it.

        Levels written *about* the published plan after it was published (:data:`DERIVED_LEVELS`, the
        baseline comparison) are not part of it."""
        with self.connect() as con:
            published = published_plan_rows(con, version_id)
            staged_rows = con.execute(
                "SELECT DISTINCT run_id FROM plan_levels WHERE version_id = ? AND state = ?", [version_id, STAGED],
            ).fetchall()
        staged = sorted(r[0] for r in staged_rows)
        return {
            "complete": bool(published),
            "runs": sorted({r[1] for r in published}),
            "published_at": max((r[7] for r in published if r[7] is not None), default=None),
            "levels": {r[0]: int(r[5]) for r in published if r[4] and r[2] == "plan_series"},
            "kpi_levels": {r[0]: int(r[5]) for r in published if r[4] and r[2] == "plan_kpis"},
            "not_applicable": [r[0] for r in published if not r[4]],
            "staged_runs": staged,
        }

    def series_levels(self, version_id: str) -> dict[str, int]:
        """The published plan_series levels of a version with their row counts."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT level, row_count FROM plan_levels WHERE version_id = ? AND state = ? "
                "AND table_name = 'plan_series' AND applicable ORDER BY level",
                [version_id, PUBLISHED],
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def has_series(self, version_id: str, level: str) -> bool:
        return level in self.series_levels(version_id)

    def read_series(self, version_id: str, level: str, *, run_id: str | None = None) -> pd.DataFrame:
        """The frame of (version, level): same columns, dtypes and row order as written.

        Without ``run_id`` the published level; with it, the level as that run wrote it
        (staged or published).
        """
        layout = layout_for(level)
        with self.connect() as con:
            entry = self._rows_entry(con, version_id, level, run_id)
            columns = json.loads(entry[3])
            if is_postgres(con):
                import pandas as pd

                rows = con.execute(_read_series_sql(layout, columns, "postgres"), [version_id, level, entry[0]])
                frame = pd.DataFrame.from_records(rows.fetchall(), columns=[m["name"] for m in columns])
                frame = _restore_dtypes(frame, columns)
                frame.attrs.update(json.loads(entry[4]))
                return frame
            sql = _read_series_sql(layout, columns)
            # Arrow, typed by the query's casts, then pandas: ~3x faster than ``.df()`` and a
            # dtype fix-up copying every column (docs/performance.md, exports at disk speed)
            table = con.sql(sql, params=[version_id, level, entry[0]]).to_arrow_table()
        frame = _frame_from_arrow(table, columns)
        del table
        frame.attrs.update(json.loads(entry[4]))
        return frame

    def level_attrs(self, version_id: str, level: str) -> dict[str, Any]:
        """The ``attrs`` a published level's frame carries (what :meth:`read_series` sets on it)."""
        with self.connect() as con:
            return json.loads(self._rows_entry(con, version_id, level)[4])

    def read_series_batches(self, version_id: str, level: str, *,
                            batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The published frame of (version, level) in slices of at most ``batch_rows`` rows (default
        :data:`SERIES_BATCH_ROWS`), in its row order: concatenated they are :meth:`read_series`'
        frame (same columns, values and dtypes; each slice has its own ``RangeIndex`` and no
        ``attrs``, see :meth:`level_attrs`).

        For a reader that writes a level out as it reads it (the reference export): it holds one
        slice at a time, not the level (15.75 M rows at 50,000 SKUs). On DuckDB each slice is its
        own query on its range of ``row_seq`` (inside :meth:`reading` they all read one snapshot);
        on PostgreSQL one query whose rows arrive in chunks (the connection serves nothing else
        until the slices are read or the iterator closed). An int or bool column with NULLs is
        ``Int64`` / ``boolean`` in the slices that hold one.
        """
        batch_rows = SERIES_BATCH_ROWS if batch_rows is None else batch_rows
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        layout = layout_for(level)
        with self.connect() as con:
            entry = self._rows_entry(con, version_id, level)
            columns, total = json.loads(entry[3]), int(entry[6])
            if is_postgres(con):  # one query, its rows received in chunks
                import pandas as pd

                names = [m["name"] for m in columns]
                sql = _read_series_sql(layout, columns, "postgres")
                for rows in con.stream_rows(sql, [version_id, level, entry[0]], batch_rows):
                    yield _restore_dtypes(pd.DataFrame.from_records(rows, columns=names), columns)
                return
            # a query per slice of row_seq (a level's rows are numbered 0..n-1): DuckDB skips the
            # row groups outside it by their min/max, and sorts one slice, not the level
            sql = _read_series_sql(layout, columns, row_range=True)
            for start in range(0, total, batch_rows):
                args = [version_id, level, entry[0], start, start + batch_rows]
                yield _frame_from_arrow(con.sql(sql, params=args).to_arrow_table(), columns)

    def read_series_rows(self, version_id: str, level: str | None = None) -> pd.DataFrame:
        """Raw published ``plan_series`` rows (for exports and inspection) in natural order."""
        columns = ", ".join(c for c in SERIES_COLUMN_NAMES if c not in ("created_at", "updated_at"))
        sql = f"SELECT {columns} FROM plan_series_current WHERE version_id = ?"
        args: list[Any] = [version_id]
        if level:
            sql += " AND level = ?"
            args.append(level)
        sql += " ORDER BY level, row_seq"
        with self.connect() as con:
            return con.execute(sql, args).df()

    def read_kpis(self, version_id: str, level: str | None = None, *, run_id: str | None = None) -> pd.DataFrame:
        """Published KPI rows of a version (one level or all); with ``run_id`` that run's level."""
        columns = "level, category, metric, bucket_type, bucket_key, value, unit, source, source_run_id"
        with self.connect() as con:
            if level is None:
                return con.execute(
                    f"SELECT {columns} FROM plan_kpis_current WHERE version_id = ? ORDER BY level, row_seq",
                    [version_id],
                ).df()
            entry = self._rows_entry(con, version_id, level, run_id, table="plan_kpis")
            return con.execute(
                f"SELECT {columns} FROM plan_kpis WHERE version_id = ? AND level = ? AND source_run_id = ? "
                "ORDER BY row_seq",
                [version_id, level, entry[0]],
            ).df()

    def has_kpis(self, version_id: str, level: str) -> bool:
        with self.connect() as con:
            entry = self._level_entry(con, version_id, level, None)
        return entry is not None and bool(entry[2]) and entry[1] == "plan_kpis"
