"""What ``GET /metrics`` reads from the store at scrape time, in three aggregate queries on one
connection (no per-version loop): write totals from ``plan_write_log`` (store/write_log.py), the
published plan rows of every version (``plan_levels`` row counts: no scan of ``plan_series``),
the runs of ``plan_jobs`` by job and status; and the store file's size on disk."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.maintenance import database_size_bytes, store_file_bytes
from plan_pipeline.store.plan_rows import DERIVED_LEVELS, PUBLISHED

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

#: ``job`` of a ``plan_jobs`` row that names no job.
UNKNOWN_JOB = "unknown"


@dataclass(frozen=True)
class WriteTotal:
    """Every write of one (source, operation, level) since the store began."""

    source: str
    operation: str
    level: str
    writes: int
    rows: int
    last_write_epoch_seconds: float


@dataclass(frozen=True)
class StoreMetrics:
    writes: list[WriteTotal]
    #: ``(version_id, status, rows of its published plan_series levels)``, every version (0: no plan)
    version_rows: list[tuple[str, str, int]]
    #: ``(job name, status, runs)`` of ``plan_jobs``
    runs: list[tuple[str, str, int]]
    size_bytes: int


_WRITE_TOTALS_SQL = (
    "SELECT source, operation, level, count(*), sum(rows), epoch(max(ts)) FROM plan_write_log "
    "GROUP BY source, operation, level ORDER BY source, operation, level"
)
_VERSION_ROWS_SQL = (
    "SELECT v.version_id, v.status, coalesce(p.n, 0) FROM plan_versions v LEFT JOIN ("
    "  SELECT version_id, sum(row_count) AS n FROM plan_levels WHERE state = ? AND applicable"
    "  AND table_name = 'plan_series' AND NOT list_contains(?::VARCHAR[], level) GROUP BY version_id"
    ") p USING (version_id) ORDER BY v.version_id"
)
_RUNS_SQL = (
    "SELECT coalesce(job_name, ?), status, count(*) FROM plan_jobs GROUP BY ALL ORDER BY 1, 2"
)
#: PostgreSQL's spelling of the two statements above that use DuckDB-only SQL (``epoch()``, ``GROUP BY ALL``).
_PG_WRITE_TOTALS_SQL = _WRITE_TOTALS_SQL.replace("epoch(max(ts))", "extract(epoch FROM max(ts))")
_PG_RUNS_SQL = _RUNS_SQL.replace("GROUP BY ALL", "GROUP BY 1, 2")


class StoreMetricsRepository(PlanStoreBase):
    def store_metrics(self) -> StoreMetrics:
        """Everything ``/metrics`` reports about the store, read on one connection (the request's
        session when there is one)."""
        with self.connect() as con:
            pg = is_postgres(con)
            writes = [WriteTotal(r[0], r[1], r[2], int(r[3]), int(r[4] or 0), float(r[5] or 0.0))
                      for r in con.execute(_PG_WRITE_TOTALS_SQL if pg else _WRITE_TOTALS_SQL).fetchall()]
            versions = [(r[0], r[1], int(r[2]))
                        for r in con.execute(_VERSION_ROWS_SQL, [PUBLISHED, list(DERIVED_LEVELS)]).fetchall()]
            runs = [(r[0], r[1], int(r[2])) for r in (
                con.execute(_PG_RUNS_SQL, [UNKNOWN_JOB]) if pg else con.execute(_RUNS_SQL, [UNKNOWN_JOB])
            ).fetchall()]
            # the database's size on the server, or the DuckDB file's on disk
            size = database_size_bytes(con) if pg \
                else store_file_bytes(self.path)
        return StoreMetrics(writes, versions, runs, size)

    def read_write_log(self, version_id: str | None = None) -> pd.DataFrame:
        """The write log (one version's rows, or all), oldest first."""
        sql = "SELECT ts, source, operation, version_id, level, rows, run_id FROM plan_write_log"
        args: list[str] = []
        if version_id is not None:
            sql += " WHERE version_id = ?"
            args.append(version_id)
        with self.connect() as con:
            return con.execute(sql + " ORDER BY ts, operation, level", args).df()
