"""One process's kept-open handle on the plan store file, for many short requests (the Plans API).

Opening the DuckDB file costs ~20 ms (its catalog is read on every open); a request of the Plans
API needs a few milliseconds of queries. While this process holds one connection (the *keeper*),
DuckDB's instance cache makes every further ``duckdb.connect`` of the file ~0.4 ms. But DuckDB
lets one process hold the file: a plan run (another process) could never write while the API
kept it open. So the keeper steps aside:

* a process that fails to get the lock touches ``<file>.writer-waiting`` while it waits
  (``connection.open_connection``, every process of the project does it);
* when that marker is fresh, this process closes its keeper, lets its requests in flight finish,
  opens no new connection until the waiter got the file (it removes the marker) or the
  request's bounded wait runs out (``PlanStoreBusyError``: 503 + Retry-After), then opens per
  request again, waiting its turn like any other process;
* the keeper is also closed after ``IDLE_RELEASE_SECONDS`` without a request.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plan_pipeline.store.connection import NO_CHECKPOINT_VACUUM, open_connection, serve_read_write, writer_is_waiting
from plan_pipeline.store.errors import PlanStoreBusyError

log = logging.getLogger("plan_pipeline.store")

#: Close the keeper after this long without a request.
IDLE_RELEASE_SECONDS = 2.0
#: How often the watcher looks for a waiting writer (and for idleness) while a keeper is open.
WATCH_INTERVAL_SECONDS = 0.02


_open_databases: weakref.WeakSet[SharedDatabase] = weakref.WeakSet()


@atexit.register
def _close_open_databases() -> None:
    """Close every kept file before the interpreter tears down (a DuckDB connection destroyed
    during finalization, from a daemon thread's frame, aborts the process)."""
    for database in list(_open_databases):
        database.close()


class SharedDatabase:
    """Connections to one store file for a long-running process serving short requests."""

    def __init__(self, path: str | Path, *, lock_wait_seconds: float):
        self.path = Path(path).resolve()
        self.lock_wait_seconds = lock_wait_seconds
        #: The schema was brought up to date by one of this object's connections.
        self.migrated = False
        self._lock = threading.Lock()
        self._keeper: Any = None
        self._in_flight = 0
        self._last_used = 0.0
        self._watcher: threading.Thread | None = None
        self._closed = False
        serve_read_write(self.path)  # this process opens the file read-write only from now on
        _open_databases.add(self)

    # ------------------------------------------------------------------ requests
    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A read-write connection for one request: ~0.4 ms while the keeper is open."""
        deadline = time.monotonic() + self.lock_wait_seconds
        self._let_waiting_writer_in(deadline)
        con = open_connection(self.path, retry_seconds=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._in_flight += 1
            self._last_used = time.monotonic()
        try:
            self._keep_open()
            yield con
        finally:
            con.close()
            with self._lock:
                self._in_flight -= 1
                self._last_used = time.monotonic()

    def _let_waiting_writer_in(self, deadline: float) -> None:
        """While another process waits for the file: hold nothing, open nothing (bounded)."""
        while writer_is_waiting(self.path):
            with self._lock:
                self._release_keeper("another process waits for the plan store")
            if time.monotonic() >= deadline:
                raise PlanStoreBusyError(
                    f"the plan store {self.path} is wanted by another process (a plan run or a command) "
                    f"and did not come free within {self.lock_wait_seconds:g}s"
                )
            time.sleep(WATCH_INTERVAL_SECONDS)

    # ------------------------------------------------------------------ the keeper
    def _keep_open(self) -> None:
        with self._lock:
            if self._keeper is not None or self._closed or writer_is_waiting(self.path):
                return
            try:  # this process holds the file already: no wait, no catalog read
                self._keeper = open_connection(self.path, retry_seconds=0.0)
            except PlanStoreBusyError:
                return
            self._keeper.execute(NO_CHECKPOINT_VACUUM)  # global: every connection of the instance
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="plan-store-keeper", daemon=True)
                self._watcher.start()

    def _release_keeper(self, why: str) -> None:
        """Close the keeper (caller holds ``_lock``); connections in flight keep the file until
        they close."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
            log.debug("closed the kept plan store connection: %s", why)

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_SECONDS)
            with self._lock:
                if self._keeper is None:
                    self._watcher = None
                    return
                if writer_is_waiting(self.path):
                    self._release_keeper("another process waits for the plan store")
                elif self._in_flight == 0 and time.monotonic() - self._last_used > IDLE_RELEASE_SECONDS:
                    self._release_keeper("idle")

    @property
    def kept_open(self) -> bool:
        return self._keeper is not None

    def close(self) -> None:
        """Close the keeper for good (the server stops)."""
        with self._lock:
            self._closed = True
            self._release_keeper("closed")
        serve_read_write(self.path, serving=False)
