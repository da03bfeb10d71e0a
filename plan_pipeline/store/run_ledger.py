"""The run ledger (``plan_jobs``): one row per Dagster run of the code location (``job_id`` = run id).

``version_id`` is the run's plan version where it has one (NULL for trim, backup, exports, ...); it
is not checked against ``plan_versions``: a run refused for an unknown version keeps its row."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.rules import ACTIVE_JOB_STATUSES, JOB_STATUSES
from plan_pipeline.timeutil import utc_now as _now

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

JOB_COLUMNS = [
    "job_id", "version_id", "job_name", "status", "trigger", "submitted_at", "started_at",
    "finished_at", "duration_ms", "error", "tags_json",
]


def _upsert_jobs(con, jobs: list[dict[str, Any]]) -> int:
    now = _now()
    written = 0
    updates = ", ".join(f"{c} = excluded.{c}" for c in JOB_COLUMNS[1:])
    for job in jobs:
        if job.get("status") not in JOB_STATUSES:
            raise PlanStoreError(f"invalid job status {job.get('status')!r}")
        values = [job.get(c) for c in JOB_COLUMNS[:-1]] + [json.dumps(job.get("tags") or {}, sort_keys=True)]
        con.execute(
            f"INSERT INTO plan_jobs ({', '.join(JOB_COLUMNS)}, updated_at) "
            f"VALUES ({', '.join('?' * len(JOB_COLUMNS))}, ?) "
            f"ON CONFLICT (job_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
            [*values, now],
        )
        written += 1
    return written


def _active_jobs(con, version_id: str, exclude: list[str] | tuple = ()) -> list[str]:
    rows = con.execute(
        "SELECT job_id FROM plan_jobs WHERE version_id = ? AND list_contains(?::VARCHAR[], status) "
        "AND NOT list_contains(?::VARCHAR[], job_id) ORDER BY submitted_at NULLS LAST, job_id",
        [version_id, list(ACTIVE_JOB_STATUSES), list(exclude)],
    ).fetchall()
    return [r[0] for r in rows]


class RunLedgerRepository(PlanStoreBase):
    def upsert_jobs(self, jobs: list[dict[str, Any]]) -> int:
        """Insert or update ``plan_jobs`` rows (job_id = Dagster run id), in one short transaction."""
        if not jobs:
            return 0
        with self.write() as con:
            return _upsert_jobs(con, jobs)

    def list_jobs(self, version_id: str | None = None) -> pd.DataFrame:
        sql = "SELECT * FROM plan_jobs"
        args: list[Any] = []
        if version_id:
            sql += " WHERE version_id = ?"
            args.append(version_id)
        sql += " ORDER BY submitted_at DESC NULLS LAST, job_id"
        with self.connect() as con:
            return con.execute(sql, args).df()

    def open_jobs(self) -> list[str]:
        """Run ids of every ``plan_jobs`` row still queued or started."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT job_id FROM plan_jobs WHERE list_contains(?::VARCHAR[], status) ORDER BY job_id",
                [list(ACTIVE_JOB_STATUSES)],
            ).fetchall()
        return [r[0] for r in rows]

    def close_jobs(self, job_ids: list[str], status: str, error: str) -> int:
        """Give still-open ``plan_jobs`` rows a final status and error text (crash recovery)."""
        if status not in JOB_STATUSES or status in ACTIVE_JOB_STATUSES:
            raise PlanStoreError(f"close_jobs needs a final status, got {status!r}")
        with self.write() as con:
            return len(con.execute(
                "UPDATE plan_jobs SET status = ?, error = coalesce(error, ?), finished_at = coalesce(finished_at, ?), "
                "updated_at = ? WHERE list_contains(?::VARCHAR[], job_id) AND list_contains(?::VARCHAR[], status) "
                "RETURNING 1",
                [status, error, _now(), _now(), list(job_ids), list(ACTIVE_JOB_STATUSES)],
            ).fetchall())

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.connect() as con:
            cur = con.execute("SELECT * FROM plan_jobs WHERE job_id = ?", [job_id])
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return dict(zip(names, row)) if row else None

    def active_jobs(self, version_id: str) -> list[str]:
        """Run ids of the version's plan_jobs rows that are queued or started."""
        with self.connect() as con:
            return _active_jobs(con, version_id)
