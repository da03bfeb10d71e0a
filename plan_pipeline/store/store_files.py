"""Whole-store copies: every table written to Parquet files on a consistent view, a new store
file built from such files, and another store file held (its write lock) while it is replaced.

Used by :mod:`plan_pipeline.operations.backup`, which keeps the policy (folder naming,
manifests, staging and publishing, pruning, guards, crash points) and never sees a connection.

Why not DuckDB's ``EXPORT DATABASE`` / ``IMPORT DATABASE``: both take the folder only as SQL
text (no bound parameter), ``IMPORT DATABASE`` runs the ``schema.sql`` / ``load.sql`` found in
the backup folder, and ``EXPORT DATABASE`` measured slower than the Arrow stream used here. A
restore builds the schema from this release's migrations and loads nothing but data
(``read_parquet(?)``, columns matched by name), refusing a backup whose tables differ; the
files are written one per table on one transaction (:func:`~plan_pipeline.store.table_copy.copy_query_to`,
docs/operations.md).

On PostgreSQL a backup is the same folder: every table read through the store on one snapshot
into the same per-table Parquet layout (``write_all_table_files`` works there unchanged), and a
restore (:func:`restore_into_postgres`) loads it into an empty database with ``COPY``. Not
``pg_dump``: the backup keeps one layout for both backends, is checked table by table against
its manifest, and needs no server programs next to the command.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from plan_pipeline.store.backends import dialect_of
from plan_pipeline.store.connection import open_connection, transaction
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.schema import apply_migrations
from plan_pipeline.store.table_copy import (
    advance_sequence,
    catch_up_sequences,
    copy_query_to,
    ident,
    load_parquet_into,
    scalar,
    sequence_state,
    user_tables,
)

# Bookkeeping of the schema itself: a store holding only these rows counts as empty.
SCHEMA_TABLES = ("schema_migrations",)
# What the engine under the store is, for a backup's manifest.
ENGINE = {"name": "duckdb", "version": duckdb.__version__}


class BackupStatements:
    """Every table to files (a mixin of ``StoreTransaction``; run it on ``store.snapshot()``)."""

    _con: Any

    def write_all_table_files(self, folder: Path) -> dict[str, tuple[Path, int]]:
        """Every table into ``folder/<table>.parquet``; returns ``{table: (path, rows)}``."""
        written = {}
        for table in user_tables(self._con):
            path = Path(folder) / f"{table}.parquet"
            written[table] = (path, copy_query_to(self._con, f"SELECT * FROM {ident(table)}", [], path))
        return written

    def sequence_state(self) -> dict[str, int | None]:
        """``{sequence: last value handed out}`` (``None`` = never used)."""
        return sequence_state(self._con)

    def engine(self) -> dict[str, str]:
        """The backend the store runs on, for a backup's manifest: ``{"backend", "name", "version"}``
        (DuckDB's library version; PostgreSQL's ``server_version``). A backup is restored into
        the same backend (the schema versions are numbered per backend)."""
        backend = dialect_of(self._con)
        if backend == "postgres":
            return {"backend": backend, "name": "postgresql", "version": str(scalar(self._con, "SHOW server_version"))}
        return {"backend": backend, **ENGINE}


def _row_counts(con) -> dict[str, int]:
    return {t: int(scalar(con, f"SELECT count(*) FROM {ident(t)}")) for t in user_tables(con)}


def data_rows(counts: Mapping[str, int]) -> int:
    """Rows of a store's tables that are data (not the schema's bookkeeping)."""
    return sum(n for t, n in counts.items() if t not in SCHEMA_TABLES)


def store_row_counts(db_path: Path) -> dict[str, int]:
    """Rows per table of an existing store file (opened briefly, read-only; fails if another
    process holds it). Any engine error is a :class:`PlanStoreError`."""
    try:
        con = open_connection(Path(db_path), read_only=True, retry_seconds=5.0)
        try:
            return _row_counts(con)
        finally:
            con.close()
    except duckdb.Error as exc:
        raise PlanStoreError(f"cannot open {db_path} to check that it is empty: {exc}") from None


def _require_backup_tables(con: Any, tables: Mapping[str, Any]) -> None:
    """Refuse a backup whose tables are not this release's schema (named: what is extra, what is missing)."""
    fresh, wanted = set(user_tables(con)), set(tables)
    if fresh != wanted:
        raise PlanStoreError(
            f"backup tables do not match this schema (only in backup: {sorted(wanted - fresh)}, "
            f"missing from backup: {sorted(fresh - wanted)})")


def _load_backup_rows(con: Any, folder: Path, tables: Mapping[str, Mapping[str, Any]], order: list[str],
                      sequences: Mapping[str, int | None]) -> dict[str, int]:
    """Inside the caller's transaction: empty every schema table, load each backup table's file in
    ``order`` (checked against the manifest's row count), move the sequences on. Rows per table."""
    rows: dict[str, int] = {}
    for table in SCHEMA_TABLES:
        con.execute(f"DELETE FROM {ident(table)}")
    for table in order:
        entry = tables[table]
        rows[table] = load_parquet_into(con, table, Path(folder) / entry["file"])
        if rows[table] != entry["rows"]:
            raise PlanStoreError(f"{table}: loaded {rows[table]} rows, manifest lists {entry['rows']}")
    for sequence, last_value in sequences.items():
        ident(sequence)
        advance_sequence(con, sequence, last_value)
    catch_up_sequences(con)
    return rows


def build_store_file(db_path: Path, folder: Path, tables: Mapping[str, Mapping[str, Any]],
                     sequences: Mapping[str, int | None]) -> dict[str, int]:
    """Build a new store file at ``db_path``: this release's schema, then every table's rows from
    ``folder/<entry["file"]>`` (``tables``: ``{table: {"file", "rows"}}``, loaded in that order and
    checked against ``rows``), then the sequences moved to ``sequences`` (and past every stored id),
    all in one transaction; then a ``CHECKPOINT`` and the file is closed with no write-ahead log.
    Returns rows loaded per table."""
    rows: dict[str, int] = {}
    con = duckdb.connect(str(db_path))
    try:
        apply_migrations(con)
        _require_backup_tables(con, tables)
        with transaction(con):
            rows = _load_backup_rows(con, folder, tables, list(tables), sequences)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    Path(f"{db_path}.wal").unlink(missing_ok=True)  # empty after the CHECKPOINT and close
    return rows


#: What a PostgreSQL restore loads first: versions (their partitions are created with them), then
#: the levels (``plan_series`` rows are routed to their physical tables by their level rows).
_PG_LOAD_FIRST = ("plan_versions", "plan_levels")


def restore_into_postgres(dsn: str, folder: Path, tables: Mapping[str, Mapping[str, Any]],
                          sequences: Mapping[str, int | None]) -> dict[str, int]:
    """The PostgreSQL restore of a backup folder (what :func:`build_store_file` is for a DuckDB file):
    into the *empty* database ``dsn`` (its schema created or checked by this release's PostgreSQL
    migrations), every table's rows loaded from ``folder/<entry["file"]>`` with ``COPY ... FROM
    STDIN`` and checked against the manifest's ``rows``, the sequences moved to ``sequences`` and
    past every stored id, all in one transaction (a failure leaves the database empty). A
    database that holds data is refused: there is no file to swap in, so restoring over a live
    store is a new database plus a change of ``PLAN_STORE_URL`` (docs/operations.md). The backup
    must come from a PostgreSQL store (the schema versions are numbered per backend)."""
    from plan_pipeline.store.backends.postgres import apply_pg_migrations, open_pg_connection

    rows: dict[str, int] = {}
    con = open_pg_connection(dsn)
    try:
        apply_pg_migrations(con)
        _require_backup_tables(con, tables)
        with transaction(con):
            held = data_rows(_row_counts(con))
            if held:
                raise PlanStoreError(f"the PostgreSQL database holds {held} rows: a backup is restored into an "
                                     "empty database (create one, restore, then point PLAN_STORE_URL at it)")
            order = [t for t in _PG_LOAD_FIRST if t in tables] + [t for t in tables if t not in _PG_LOAD_FIRST]
            rows = _load_backup_rows(con, folder, tables, order, sequences)
    finally:
        con.close()
    return rows


class HeldStore:
    """A store file whose write lock this process holds (see :func:`hold_store_file`)."""

    def __init__(self, path: Path, con):
        self.path, self._con = path, con

    def data_rows(self) -> int:
        return data_rows(_row_counts(self._con))

    def checkpoint(self) -> None:
        """Write everything into the file itself: afterwards no write-ahead log is left for a file
        put in its place to pick up."""
        self._con.execute("CHECKPOINT")
        if Path(f"{self.path}.wal").exists():
            raise PlanStoreError(f"{self.path}.wal is still there after a CHECKPOINT; not replacing {self.path}")


@contextmanager
def hold_store_file(db_path: Path) -> Iterator[HeldStore]:
    """Hold ``db_path``'s write lock (a writer that starts meanwhile waits, then opens whatever
    file is at the path when it gets the lock)."""
    con = open_connection(Path(db_path))
    try:
        yield HeldStore(Path(db_path), con)
    finally:
        con.close()
