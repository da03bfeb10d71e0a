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

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.backends.postgres import apply_pg_migrations, open_pg_connection
from plan_pipeline.store.connection import LOCK_RETRY_SECONDS, NO_CHECKPOINT_VACUUM, open_connection, transaction
from plan_pipeline.store.errors import PlanNotFoundError, PlanStoreError
from plan_pipeline.store.rules import (
    StoreLocation,
    bulk_write_memory_limit,
    duckdb_location,
    project_home,
    store_location,
)
from plan_pipeline.store.schema import (
    apply_migrations,
    current_schema_version,
)
from plan_pipeline.store.shared_database import SharedDatabase
from plan_pipeline.store.table_copy import user_tables
from plan_pipeline.store.unit_of_work import StoreTransaction, transaction_class
from plan_pipeline.store.write_log import DEFAULT_WRITE_SOURCE, check_write_source


class PlanStoreBase:
    """One plan store (a DuckDB file, or a PostgreSQL database): connections, transactions, the
    unit of work. Opens nothing until used.

    ``path``: a DuckDB file; ``location``: where the store is (``rules.StoreLocation``, e.g.
    ``parse_store_url(...)``); neither: ``$PLAN_STORE_URL``, unset the default DuckDB file.
    """

    def __init__(self, path: str | Path | None = None, *, location: StoreLocation | None = None,
                 lock_wait_seconds: float = LOCK_RETRY_SECONDS,
                 write_source: str = DEFAULT_WRITE_SOURCE, database: SharedDatabase | None = None):
        if path and location is not None:
            raise PlanStoreError("a plan store is given a DuckDB path or a location, not both")
        self.location = location or (duckdb_location(path) if path else store_location())
        #: The DuckDB file; on PostgreSQL a path naming the database that no file has (``exists()`` is
        #: False): the features that work on files (backups, archives) are DuckDB-only so far.
        self.path = self.location.path if self.location.path is not None else Path(self.location.describe())
        if self.location.is_postgres and database is not None:
            raise PlanStoreError("a kept-open DuckDB database (SharedDatabase) cannot serve a PostgreSQL store")
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
        if not self._migrated and self.database is None and not self.location.is_postgres:
            self.initialise()  # a read-only connection cannot upgrade an older store
        with self.connect(read_only=True) as con, transaction(con):
            _snapshot_isolation(con)
            self._session_con, self._session_reads_snapshot = con, True
            try:
                yield self
            finally:
                self._session_con, self._session_reads_snapshot = None, False

    @property
    def is_postgres(self) -> bool:
        return self.location.is_postgres

    @property
    def files_home(self) -> Path:
        """The folder the store's companion files go in (the plan review reports): the DuckDB file's
        folder; for a PostgreSQL store, which has no file, the project home (``$PLAN_PIPELINE_HOME``)."""
        return project_home() if self.location.is_postgres else self.path.resolve().parent

    def exists(self) -> bool:
        """Whether the store has been created: the DuckDB file exists; a PostgreSQL database is
        always there (its tables are created on first use). Checks nothing over the network."""
        return self.location.is_postgres or self.path.exists()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        if self._session_con is not None:
            yield self._session_con
            return
        if self.location.is_postgres:
            # PostgreSQL has no file lock and no read-only connection mode: a reader's consistency
            # comes from its transaction (``reading``/``snapshot``); migrations run on first use.
            assert self.location.dsn is not None
            pg = open_pg_connection(self.location.dsn)
            try:
                if not self._migrated:
                    apply_pg_migrations(pg)
                    self._migrated = True
                yield pg
            finally:
                pg.close()
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
            bulk = bulk and not self.location.is_postgres  # a DuckDB setting
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
            yield transaction_class(con)(con, read_only=False, write_source=self.write_source)

    @contextmanager
    def snapshot(self) -> Iterator[StoreTransaction]:
        """A read-only unit of work: every read sees the same consistent state of the store (inside
        :meth:`reading`, that snapshot)."""
        if self._session_reads_snapshot:
            yield transaction_class(self._session_con)(self._session_con, read_only=True,
                                                       write_source=self.write_source)
            return
        with self.connect(read_only=True) as con, transaction(con):
            _snapshot_isolation(con)
            yield transaction_class(con)(con, read_only=True, write_source=self.write_source)

    def initialise(self) -> int:
        """Create or upgrade the schema; returns the schema version (PostgreSQL numbers its
        migrations on its own: store/backends/postgres.py)."""
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


def _snapshot_isolation(con) -> None:
    """A read-only unit of work reads one state of the store: DuckDB's transactions are snapshots;
    PostgreSQL's default (READ COMMITTED) is not, its REPEATABLE READ is (first in the transaction)."""
    if is_postgres(con):
        con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
