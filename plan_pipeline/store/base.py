"""The connection handling every table group's repository shares (``PlanStoreBase``).

Each public write opens a short connection, runs in **one transaction** and closes; any
exception rolls the whole write back, so the previous rows stay intact.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from plan_pipeline.store.connection import LOCK_RETRY_SECONDS, NO_CHECKPOINT_VACUUM, open_connection, transaction
from plan_pipeline.store.errors import PlanNotFoundError, PlanStoreError
from plan_pipeline.store.rules import bulk_write_memory_limit, default_db_path
from plan_pipeline.store.schema import (
    apply_migrations,
    current_schema_version,
)
from plan_pipeline.store.shared_database import SharedDatabase
from plan_pipeline.store.table_copy import user_tables
from plan_pipeline.store.unit_of_work import StoreTransaction
from plan_pipeline.store.write_log import DEFAULT_WRITE_SOURCE, check_write_source


class PlanStoreBase:
    """One DuckDB file: connections, transactions, the unit of work. Opens nothing until used."""

    def __init__(self, path: str | Path | None = None, *, lock_wait_seconds: float = LOCK_RETRY_SECONDS,
                 write_source: str = DEFAULT_WRITE_SOURCE, database: SharedDatabase | None = None):
        self.path = Path(path).resolve() if path else default_db_path()
        #: A long-running server's kept-open handle on the file (store/shared_database.py): its
        #: connections cost ~0.4 ms instead of ~20 ms, and step aside for a waiting writer.
        self.database = database
        #: How long opening the file waits while another process holds its lock, then
        #: ``PlanStoreBusyError`` (the API answers 503 + Retry-After; the CLI waits longer).
        self.lock_wait_seconds = lock_wait_seconds
        #: Who writes through this object (cli, dagster, api, backfill): every write records it in
        #: ``plan_write_log`` (store/write_log.py), which ``GET /metrics`` counts.
        self.write_source = check_write_source(write_source)
        self._migrated = False
        self._session_con: Any = None
        self._session_reads_snapshot = False  # the session is a read-only snapshot (``reading``)

    def writing_as(self, source: str) -> Self:
        """This store (same file, lock wait and open session, if any) with another write source:
        the legacy backfill runs inside a Dagster op but records its writes as ``backfill``."""
        other = copy.copy(self)
        other.write_source = check_write_source(source)
        return other

    # ------------------------------------------------------------------ connections
    @contextmanager
    def session(self) -> Iterator[PlanStoreBase]:
        """Every call on this store object in this block shares one read-write connection.

        Opening the DuckDB file costs ~20 ms; a request of the Plans API makes several store
        calls, so it opens the file once (``api/dependencies.get_store``, one store object per
        request: a session belongs to its object and is not for concurrent use). Each write
        still runs in its own transaction; reads see the latest committed state. A nested
        session reuses the outer connection.
        """
        if self._session_con is not None:
            yield self
            return
        with self.connect() as con:
            self._session_con = con
            try:
                yield self
            finally:
                self._session_con = None

    @contextmanager
    def reading(self) -> Iterator[PlanStoreBase]:
        """Every call on this store object in this block reads one consistent state of the store
        through one read-only connection and transaction (a writing call fails).

        For a reader that makes many calls, such as the reference export (a dozen levels, each
        call would otherwise open the file, ~20-45 ms, and could see a newer plan than the
        previous call). Inside a :meth:`session` it uses that session's connection; a
        :meth:`snapshot` inside it is this snapshot.
        """
        if self._session_con is not None:
            yield self
            return
        if not self._migrated and self.database is None:
            self.initialise()  # a read-only connection cannot upgrade an older store
        with self.connect(read_only=True) as con, transaction(con):
            self._session_con, self._session_reads_snapshot = con, True
            try:
                yield self
            finally:
                self._session_con, self._session_reads_snapshot = None, False

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        if self._session_con is not None:
            yield self._session_con
            return
        if read_only and not self.path.exists():
            raise PlanStoreError(f"plan store {self.path} does not exist yet (import an input set first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.database is not None:
            # A server holds read-write connections only (DuckDB refuses to mix read-only and
            # read-write connections to one file in one process).
            with self.database.connection() as con:
                if not self.database.kept_open:  # the keeper set it for the whole instance
                    con.execute(NO_CHECKPOINT_VACUUM)
                if not self.database.migrated:
                    apply_migrations(con)
                    self.database.migrated = True
                yield con
            return
        con = open_connection(self.path, read_only=read_only, retry_seconds=self.lock_wait_seconds)
        try:
            if not read_only:
                # No *vacuuming* (merging row groups that have deletes or few rows) in the
                # checkpoint DuckDB runs when a writing connection closes: after a plan run it
                # cost 0.25-0.5 s per detail-level write, or 0.6 s on the next write, at 5,000
                # SKUs, and changes nothing that is stored. Space is still reused (re-running a
                # version keeps the file size); the trim job's CHECKPOINT compacts with
                # DuckDB's defaults (docs/performance.md, docs/operations.md).
                con.execute(NO_CHECKPOINT_VACUUM)
            if not read_only and not self._migrated:
                apply_migrations(con)
                self._migrated = True
            yield con
        finally:
            con.close()

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Any]:
        """A read-write connection inside one transaction.

        ``bulk``: a plan-level rewrite (hundreds of thousands of rows) under a DuckDB memory
        limit (``$PLAN_PIPELINE_WRITE_MEMORY_LIMIT``, default 256MB): DuckDB's parallel
        insert otherwise buffers ~290 MB for one 795k-row MRP level; with the limit it
        flushes row groups earlier, at no measured cost in time. Reads keep DuckDB's default
        limit (a large ordered read cannot spill its result).
        """
        with self.connect() as con:
            if bulk:
                con.execute("SET memory_limit = ?", [bulk_write_memory_limit()])
            try:
                with transaction(con):
                    yield con
            finally:
                if bulk and self._session_con is con:
                    # the session's connection goes on: later reads get DuckDB's default limit back
                    con.execute("RESET memory_limit")

    @contextmanager
    def transaction(self, *, bulk: bool = False) -> Iterator[StoreTransaction]:
        """A unit of work: every statement called on the yielded object commits together."""
        with self.write(bulk=bulk) as con:
            yield StoreTransaction(con, read_only=False, write_source=self.write_source)

    @contextmanager
    def snapshot(self) -> Iterator[StoreTransaction]:
        """A read-only unit of work: every read sees the same consistent state of the store (inside
        :meth:`reading`, that snapshot)."""
        if self._session_reads_snapshot:
            yield StoreTransaction(self._session_con, read_only=True, write_source=self.write_source)
            return
        with self.connect(read_only=True) as con, transaction(con):
            yield StoreTransaction(con, read_only=True, write_source=self.write_source)

    def initialise(self) -> int:
        """Create or upgrade the schema; returns the schema version."""
        with self.connect() as con:
            return current_schema_version(con)

    def schema_version(self) -> int:
        with self.connect() as con:
            return current_schema_version(con)

    @staticmethod
    def _require_version(con, version_id: str) -> None:
        if not con.execute("SELECT 1 FROM plan_versions WHERE version_id = ?", [version_id]).fetchone():
            raise PlanNotFoundError(f"unknown plan version {version_id!r}")

    def table_counts(self) -> dict[str, int]:
        with self.connect() as con:
            # logical tables: the physical tables behind the plan_series view count as plan_series
            return {n: int(con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in user_tables(con)}
