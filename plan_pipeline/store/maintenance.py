"""Store maintenance statements: what retention and the row guard read, and how versions and
aged rows leave the store (and an archived version comes back).

:class:`MaintenanceStatements` is one of the statement groups of
:class:`~plan_pipeline.store.unit_of_work.StoreTransaction` (``with store.transaction() as tx:
tx.remove_version(...)``); the policy (what to keep, archives, crash points) lives in
:mod:`plan_pipeline.operations.retention`. The module functions at the end measure a store and let
it give space back: :func:`store_size_bytes` / :func:`reclaim_store_space` on either backend (a
DuckDB file's size on disk and ``CHECKPOINT``; a PostgreSQL database's ``pg_database_size`` and
``VACUUM (ANALYZE)`` of the plan tables), :func:`store_file_bytes` / :func:`reclaim_space` on a
DuckDB file.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.backends.postgres import PARTITIONED_TABLES, lock_version, partition_name
from plan_pipeline.store.connection import open_connection
from plan_pipeline.store.errors import PlanNotFoundError
from plan_pipeline.store.schema import VERSION_CHILD_TABLES, current_schema_version
from plan_pipeline.store.series_tables import physical_tables
from plan_pipeline.store.table_copy import ident, scalar
from plan_pipeline.store.write_log import VERSION_LEVEL, record_write
from plan_pipeline.timeutil import utc_now


class _Store(Protocol):
    """What the store-level functions below use of a ``PlanStore``."""

    path: Path

    @property
    def is_postgres(self) -> bool: ...

    def connect(self, read_only: bool = False) -> AbstractContextManager[Any]: ...

# Every table holding a version's rows, parent first (the order a restore loads them in).
VERSION_TABLES = ("plan_versions", *VERSION_CHILD_TABLES)
# Tables whose rows are trimmed by age on their own: table -> (timestamp column, natural order).
AGED_ROW_TABLES = {
    "plan_kpis": ("created_at", "version_id, level, row_seq"),
    "plan_override_events": ("event_ts", "event_ts, id"),
}


def aged_rows_where(table: str) -> str:
    """Rows of ``table`` older than a cutoff (``?``) outside the versions listed in the second ``?``."""
    column = AGED_ROW_TABLES[table][0]
    return f"{ident(column)} < ? AND NOT list_contains(?::VARCHAR[], version_id)"


def insert_version_event(con, version_id: str, event_type: str, payload: dict[str, Any], *, actor: str,
                         notes: str | None = None, at: datetime | None = None) -> None:
    """Append a plan-level event (``delete``, ``restore``, ``export``, ``duplicate``) to a version's audit trail."""
    con.execute(
        "INSERT INTO plan_override_events (override_id, version_id, level, key_hash, event_type, event_ts, "
        "payload_json, actor, notes) VALUES (NULL, ?, 'version', 'version', ?, ?, ?, ?, ?)",
        [version_id, event_type, at or utc_now(), json.dumps(payload), actor, notes],
    )


def remove_version_in(
    con, version_id: str, *, actor: str, reason: str, archive_path: str | None = None, source: str
) -> dict[str, int]:
    """Delete a version's rows, children first, on an open transaction; leave its tombstone.

    The one place a version is removed (explicit delete, retention trim, row guard): the id gets
    a ``plan_version_tombstones`` row (so it is never silently reused) and the audit trail a
    ``delete`` event that survives the version; the write log (``source``: who removes) keeps
    the version's writes and adds the removal. Callers check frozen/active rules first.
    """
    head = con.execute(
        "SELECT status, input_set FROM plan_versions WHERE version_id = ?", [version_id]
    ).fetchone()
    if head is None:
        raise PlanNotFoundError(f"unknown plan version {version_id!r}")
    removed: dict[str, int] = {}
    for table in VERSION_CHILD_TABLES:  # DuckDB answers a DELETE with its row count
        removed[table] = sum(_remove_rows(con, physical, version_id) for physical in physical_tables(table))
    con.execute("DELETE FROM plan_versions WHERE version_id = ?", [version_id])
    removed["plan_versions"] = 1
    now = utc_now()
    con.execute(
        "INSERT INTO plan_version_tombstones VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version_id) DO UPDATE SET "
        "status = excluded.status, input_set = excluded.input_set, deleted_at = excluded.deleted_at, "
        "actor = excluded.actor, reason = excluded.reason, archive_path = excluded.archive_path",
        [version_id, head[0], head[1], now, actor, reason, archive_path],
    )
    insert_version_event(con, version_id, "delete", {"status": head[0], "archive": archive_path},
                         actor=actor, notes=reason, at=now)
    record_write(con, source, "delete", version_id, [(VERSION_LEVEL, sum(removed.values()))], at=now)
    return removed


def _remove_rows(con, table: str, version_id: str) -> int:
    """Remove the version's rows of ``table``; returns how many. On PostgreSQL a table partitioned by
    version loses its rows by ``TRUNCATE`` of the version's partition (no per-row work, the space
    is free at once; the partition stays attached, so a restored version finds it)."""
    if is_postgres(con) and table in PARTITIONED_TABLES:
        partition = partition_name(table, version_id)
        if con.execute("SELECT 1 FROM pg_class WHERE relname = ? AND relkind = 'r'", [partition]).fetchone():
            count = int(con.execute(f'SELECT count(*) FROM "{partition}"').fetchone()[0])
            con.execute(f'TRUNCATE "{partition}"')
            return count
    return int(con.execute(f"DELETE FROM {table} WHERE version_id = ?", [version_id]).fetchone()[0])


def revive_version_in(con, version_id: str, *, actor: str, archive_path: str) -> None:
    """A version restored from its archive gets its id back (the one explicit way: restore-archived);
    the audit trail records the ``restore`` after the ``delete``."""
    con.execute("DELETE FROM plan_version_tombstones WHERE version_id = ?", [version_id])
    insert_version_event(con, version_id, "restore", {"archive": archive_path}, actor=actor)


class MaintenanceStatements:
    """Retention reads, removals and restores of archived versions (a mixin of ``StoreTransaction``)."""

    _con: Any
    write_source: str

    def schema_version(self) -> int:
        return current_schema_version(self._con)

    # ---------------------------------------------------------------- versions
    def version_heads(self) -> list[tuple[str, str, bool, datetime]]:
        """``(version_id, status, read_only, created_at)`` of every version, oldest first."""
        rows = self._con.execute(
            "SELECT version_id, status, read_only, created_at FROM plan_versions ORDER BY created_at, version_id"
        ).fetchall()
        return [(r[0], r[1], bool(r[2]), r[3]) for r in rows]

    def version_head(self, version_id: str) -> tuple[str, bool, datetime]:
        """``(status, read_only, created_at)`` of one version; an unknown version is an error."""
        rows = self._con.execute(
            "SELECT status, read_only, created_at FROM plan_versions WHERE version_id = ?", [version_id]).fetchall()
        if not rows:
            raise PlanNotFoundError(f"unknown plan version {version_id!r}")
        return rows[0][0], bool(rows[0][1]), rows[0][2]

    def version_exists(self, version_id: str) -> bool:
        return bool(scalar(self._con, "SELECT count(*) FROM plan_versions WHERE version_id = ?", [version_id]))

    def input_set_exists(self, label: str) -> bool:
        return bool(scalar(self._con, "SELECT count(*) FROM input_sets WHERE label = ?", [label]))

    def version_row_counts(self, version_id: str) -> dict[str, int]:
        """Rows of ``version_id`` per table of :data:`VERSION_TABLES`."""
        return {
            table: int(scalar(self._con, f"SELECT count(*) FROM {ident(table)} WHERE version_id = ?", [version_id]))
            for table in VERSION_TABLES
        }

    def plan_series_rows(self) -> int:
        return int(scalar(self._con, "SELECT count(*) FROM plan_series"))

    def plan_series_rows_per_version(self) -> list[tuple[str, str, bool, datetime, int]]:
        """``(version_id, status, read_only, created_at, plan_series rows)`` of every version, oldest first."""
        rows = self._con.execute(
            "SELECT v.version_id, v.status, v.read_only, v.created_at, coalesce(s.n, 0) FROM plan_versions v "
            "LEFT JOIN (SELECT version_id, count(*) AS n FROM plan_series GROUP BY version_id) s USING (version_id) "
            "ORDER BY v.created_at, v.version_id"
        ).fetchall()
        return [(r[0], r[1], bool(r[2]), r[3], int(r[4])) for r in rows]

    def remove_version(self, version_id: str, *, actor: str, reason: str, archive_path: str | None) -> dict[str, int]:
        """Remove one version (children first, tombstone, ``delete`` event); rows removed per table of
        :data:`VERSION_TABLES`."""
        lock_version(self._con, version_id)  # PostgreSQL: after the version's writer in progress, if any
        removed = remove_version_in(self._con, version_id, actor=actor, reason=reason, archive_path=archive_path,
                                    source=self.write_source)
        return {table: int(removed.get(table, 0)) for table in VERSION_TABLES}

    def revive_version(self, version_id: str, *, actor: str, archive_path: str) -> None:
        revive_version_in(self._con, version_id, actor=actor, archive_path=archive_path)
        record_write(self._con, self.write_source, "restore", version_id,
                     [(VERSION_LEVEL, sum(self.version_row_counts(version_id).values()))])

    # ---------------------------------------------------------------- aged rows
    def count_aged_rows(self, table: str, cutoff: datetime | None, keep_versions: Sequence[str]) -> int:
        """Rows of ``table`` (one of :data:`AGED_ROW_TABLES`) older than ``cutoff`` outside
        ``keep_versions``; 0 when the rule is off (``cutoff`` None)."""
        if cutoff is None:
            return 0
        return int(scalar(self._con, f"SELECT count(*) FROM {ident(table)} WHERE {aged_rows_where(table)}",
                          [cutoff, list(keep_versions)]))

    def delete_aged_rows(self, table: str, cutoff: datetime, keep_versions: Sequence[str]) -> int:
        """Delete what :meth:`count_aged_rows` counts; returns the rows deleted."""
        deleted = int(scalar(self._con, f"DELETE FROM {ident(table)} WHERE {aged_rows_where(table)}",
                             [cutoff, list(keep_versions)]))
        if deleted:
            record_write(self._con, self.write_source, "trim", None, [(table, deleted)])
        return deleted


# ---------------------------------------------------------------------------------- store files
def store_file_bytes(db_path: Path) -> int:
    """Bytes on disk of a store: the file plus its write-ahead log."""
    total = 0
    for p in (Path(db_path), Path(f"{db_path}.wal")):
        if p.exists():
            total += p.stat().st_size
    return total


def reclaim_space(db_path: Path) -> None:
    """Let the store give the space of deleted rows back (DuckDB: a ``CHECKPOINT`` with its defaults)."""
    with open_connection(Path(db_path)) as con:
        con.execute("CHECKPOINT")


#: How :func:`reclaim_store_space` gives space back, per backend (said in trim's report).
RECLAIM_METHOD = {"duckdb": "CHECKPOINT", "postgres": "VACUUM (ANALYZE)"}


def database_size_bytes(con) -> int:
    """Bytes of the PostgreSQL database ``con`` is connected to (``pg_database_size``)."""
    return int(scalar(con, "SELECT pg_database_size(current_database())"))


def store_size_bytes(store: _Store) -> int:
    """The store's size: a DuckDB file's bytes on disk (with its write-ahead log; 0 before it
    exists), a PostgreSQL database's size on the server."""
    if store.is_postgres:
        with store.connect() as con:
            return database_size_bytes(con)
    return store_file_bytes(store.path)


def reclaim_store_space(store: _Store) -> str:
    """Let the store give the space of removed rows back; returns how (:data:`RECLAIM_METHOD`).

    DuckDB: a ``CHECKPOINT`` with its defaults (:func:`reclaim_space`). PostgreSQL: a removed
    version's partitions were emptied by ``TRUNCATE`` (their space is free at once); ``VACUUM
    (ANALYZE)`` of every plan table (partitioned parents recurse into their partitions) makes the
    space of deleted rows (aged KPI rows and audit events, removed versions' rows of the other
    tables) reusable and refreshes the planner's statistics. It is not ``VACUUM FULL``: it takes no
    lock a reader or a run's writer waits for, and the database file rarely shrinks (autovacuum
    would do the same later). Runs outside a transaction (``VACUUM`` cannot run inside one).
    """
    if not store.is_postgres:
        reclaim_space(store.path)
        return RECLAIM_METHOD["duckdb"]
    with store.connect() as con:  # autocommit: each VACUUM is its own statement
        tables = [r[0] for r in con.execute(  # physical tables and partitioned parents (not the plan_series view)
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY c.relname").fetchall()]
        for table in tables:
            con.execute(f"VACUUM (ANALYZE) {ident(table)}")
    return RECLAIM_METHOD["postgres"]
