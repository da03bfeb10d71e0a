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
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from plan_pipeline.store.errors import PlanStoreBusyError

log = logging.getLogger("plan_pipeline.store")

LOCK_RETRY_SECONDS = 120.0
#: A wait shorter than this is not reported (a server keeping the file hands it over in ms).
FIRST_REPORT_SECONDS = 1.0


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: Exception) -> str:
    """The lock holder DuckDB names in its message ("... held in <program> (PID N)")."""
    match = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    return f"process {match.group(2)} ({match.group(1)})" if match else "another process"


#: No *vacuuming* (merging row groups that have deletes or few rows) in the checkpoint DuckDB runs
#: when a writing connection closes: after a plan run it cost 0.25-0.5 s per detail-level write at
#: 5,000 SKUs and changes nothing stored (docs/performance.md); a global setting of the instance.
NO_CHECKPOINT_VACUUM = "SET max_vacuum_tasks = 0"

#: Suffix of the marker file a process touches while it waits for the store's lock.
WRITER_WAITING_SUFFIX = ".writer-waiting"
#: A marker older than this is stale (its waiter re-touches it at every retry, at least every 2 s).
WRITER_WAITING_FRESH_SECONDS = 10.0


def writer_waiting_marker(path: Path) -> Path:
    return path.with_name(path.name + WRITER_WAITING_SUFFIX)


def announce_waiting_writer(path: Path) -> None:
    """Say, beside the file, that a process waits for its lock (best effort: a read-only folder
    only means a process keeping the file open will not notice)."""
    with suppress(OSError):
        writer_waiting_marker(path).touch()


def withdraw_waiting_writer(path: Path) -> None:
    with suppress(OSError):
        writer_waiting_marker(path).unlink(missing_ok=True)


def writer_is_waiting(path: Path) -> bool:
    """Whether another process has waited for the file's lock in the last few seconds."""
    try:
        touched = writer_waiting_marker(path).stat().st_mtime
    except OSError:
        return False
    return time.time() - touched < WRITER_WAITING_FRESH_SECONDS


#: Store files a server of this process keeps open read-write (store/shared_database.py).
_served_paths: set[Path] = set()


def serve_read_write(path: Path, serving: bool = True) -> None:
    """Mark ``path`` as kept open read-write by this process (or no longer).

    DuckDB refuses a read-only connection to a file this process already holds read-write: while
    a server keeps the file, every connection this process opens to it is read-write, so the plan
    runs the server executes in-process can read the store too.
    """
    if serving:
        _served_paths.add(Path(path).resolve())
    else:
        _served_paths.discard(Path(path).resolve())


def open_connection(path: Path | str, read_only: bool = False, retry_seconds: float = LOCK_RETRY_SECONDS):
    """Open ``path``; while another process holds its lock, retry with backoff for ``retry_seconds``.

    The wait is reported (first after a second: handing the file over between processes takes
    less, then every 10 s, naming the holder), Ctrl-C stops it
    (``KeyboardInterrupt`` from the sleep), and when it runs out the error says what happened.
    """
    path = Path(path)
    started = time.monotonic()
    deadline = started + retry_seconds
    delay = 0.05
    said = -1e9
    waiting = False
    read_only = read_only and (not _served_paths or path.resolve() not in _served_paths)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            waiting = True
            announce_waiting_writer(path)  # a process keeping the file open (the Plans API) lets go
            waited = time.monotonic() - started
            if time.monotonic() >= deadline:
                withdraw_waiting_writer(path)
                raise PlanStoreBusyError(
                    f"gave up after {waited:.0f}s waiting for the plan store {path}: {_holder(exc)} holds its "
                    "lock (DuckDB allows one writer process; stop that process or wait for it, then retry)"
                ) from None
            if waited >= FIRST_REPORT_SECONDS and waited - said >= 10:
                log.warning("waiting for the plan store %s: %s holds its lock (waited %.0fs, gives up after %.0fs; "
                            "Ctrl-C to stop)", path, _holder(exc), waited, retry_seconds)
                said = waited
            time.sleep(min(delay * (0.5 + random.random()), max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
        else:
            if waiting:
                withdraw_waiting_writer(path)
            return con


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
