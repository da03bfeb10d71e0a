"""Short-lived DuckDB connections with a bounded, logged, jittered retry on lock conflicts.

DuckDB allows one read-write process per file. Dagster serialises every store-touching
step through the ``duckdb`` concurrency pool; this retry covers what the pool cannot
see (a CLI command or a notebook holding the file for a moment).
"""
from __future__ import annotations

import logging
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

log = logging.getLogger("plan_pipeline.store")

LOCK_RETRY_SECONDS = 120.0


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def open_connection(path: Path, read_only: bool = False, retry_seconds: float = LOCK_RETRY_SECONDS):
    """Open ``path``; on a lock held by another process retry with backoff for ``retry_seconds``."""
    deadline = time.monotonic() + retry_seconds
    delay = 0.05
    attempt = 0
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                raise
            attempt += 1
            log.warning("plan store %s is locked by another process (attempt %d), retrying", path, attempt)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


@contextmanager
def transaction(con) -> Iterator[duckdb.DuckDBPyConnection]:
    """One explicit transaction: commit on success, roll back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception as rollback_error:  # never let a failed rollback hide the real error
            log.warning("rollback after a failed write also failed: %s", rollback_error)
        raise
    else:
        con.execute("COMMIT")
