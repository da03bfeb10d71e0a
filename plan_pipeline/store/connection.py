"""Short-lived DuckDB connections with a bounded, logged, jittered retry on lock conflicts.

DuckDB allows one read-write process per file. Dagster serialises every store-touching
step through the ``duckdb`` concurrency pool; this retry covers what the pool cannot
see (a CLI command or a notebook holding the file for a moment).
"""
from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from plan_pipeline.store.errors import PlanStoreBusyError

log = logging.getLogger("plan_pipeline.store")

LOCK_RETRY_SECONDS = 120.0


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: Exception) -> str:
    """The lock holder DuckDB names in its message ("... held in <program> (PID N)")."""
    match = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    return f"process {match.group(2)} ({match.group(1)})" if match else "another process"


def open_connection(path: Path, read_only: bool = False, retry_seconds: float = LOCK_RETRY_SECONDS):
    """Open ``path``; while another process holds its lock, retry with backoff for ``retry_seconds``.

    The wait is reported (first at once, then every 10 s, naming the holder), Ctrl-C stops it
    (``KeyboardInterrupt`` from the sleep), and when it runs out the error says what happened.
    """
    started = time.monotonic()
    deadline = started + retry_seconds
    delay = 0.05
    said = -1e9
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            waited = time.monotonic() - started
            if time.monotonic() >= deadline:
                raise PlanStoreBusyError(
                    f"gave up after {waited:.0f}s waiting for the plan store {path}: {_holder(exc)} holds its "
                    "lock (DuckDB allows one writer process; stop that process or wait for it, then retry)"
                ) from None
            if waited - said >= 10:
                log.warning("waiting for the plan store %s: %s holds its lock (waited %.0fs, gives up after %.0fs; "
                            "Ctrl-C to stop)", path, _holder(exc), waited, retry_seconds)
                said = waited
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
