"""The PostgreSQL backend of the plan store (``PLAN_STORE_URL=postgresql://...``), through psycopg 3.

* :class:`PgConnection` gives a psycopg connection the DuckDB connection interface the
  repositories use (``?`` placeholders, a write answering its row count, ``df()``), so a
  statement both dialects agree on is written once. It runs in autocommit mode: the store's
  ``BEGIN TRANSACTION`` / ``COMMIT`` / ``ROLLBACK`` (``store/connection.transaction``) are
  plain statements, exactly as on DuckDB.
* The schema has its own versioned, forward-only migrations (:data:`PG_MIGRATIONS`, recorded in
  the same ``schema_migrations`` table), built from the DuckDB migrations' table definitions
  (one home for every column) in PostgreSQL's spelling (``DOUBLE PRECISION``, ``JSONB``; a
  level's ``attrs_json`` is ``JSON`` since migration 2, so its keys keep their order).
* ``plan_series``' physical tables and ``plan_kpis`` are partitioned by ``LIST (version_id)``:
  every version has its own partition, created with the version row
  (:func:`ensure_version_partitions`, ``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE
  lock on the parent: writers of other versions go on), so replacing a level scans its version's
  partition only, and removing a version touches nothing of the others.
* Two writers of one version serialize on ``pg_advisory_xact_lock`` (:func:`lock_version`, taken
  first in every version write's transaction); writers of different versions never wait for
  each other (they take different advisory locks and row locks of different rows).
* Bulk rows (a plan level, an input set) go in with ``COPY ... FROM STDIN`` (:meth:`PgConnection.copy_rows`).
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import islice
from typing import TYPE_CHECKING, Any

from plan_pipeline.store.errors import PlanStoreBusyError, PlanStoreError
from plan_pipeline.store.rules import check_identifier
from plan_pipeline.store.schema import MIGRATIONS, SERIES_CURRENT_VIEW, _input_table_ddl
from plan_pipeline.store.series_tables import SERIES_TABLES, series_view_sql

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("plan_pipeline.store")

#: The tables partitioned by version (one partition per plan version).
PARTITIONED_TABLES = (*(t.name for t in SERIES_TABLES), "plan_kpis")


# ---------------------------------------------------------------------------------------- SQL text
@lru_cache(maxsize=2048)
def translate_placeholders(sql: str) -> str:
    """DuckDB's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled); ``?`` inside a
    quoted string or identifier is left alone."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _pg_spelling(ddl: str) -> str:
    """A DuckDB ``CREATE TABLE`` of the store in PostgreSQL's type names."""
    return re.sub(r"\bJSON\b", "JSONB", re.sub(r"\bDOUBLE\b", "DOUBLE PRECISION", ddl))


def _duckdb_statement(prefix: str) -> str:
    """The one statement of the DuckDB migrations starting with ``prefix`` (their table definitions
    are the home of the store's columns; released migrations never change)."""
    found = [s for _, _, statements in MIGRATIONS for s in statements if s.startswith(prefix)]
    if len(found) != 1:
        raise AssertionError(f"expected one DuckDB migration statement starting {prefix!r}, found {len(found)}")
    return found[0]


def _table(name: str, *, as_name: str | None = None) -> str:
    ddl = _pg_spelling(_duckdb_statement(f"CREATE TABLE {name} ("))
    return ddl.replace(f"CREATE TABLE {name} (", f"CREATE TABLE {as_name or name} (", 1)


#: ``list_contains(list, element)``, as DuckDB has it: the statements filtering on a bound list
#: (``list_contains(?::VARCHAR[], status)``) are then written once for both backends.
_LIST_CONTAINS = """CREATE FUNCTION list_contains(list anycompatiblearray, element anycompatible) RETURNS BOOLEAN
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$ SELECT element = ANY(list) $$"""


def _initial_schema() -> list[str]:
    plan_jobs = _table("plan_jobs").replace("version_id TEXT NOT NULL,", "version_id TEXT,", 1)  # DuckDB migration 4
    plan_kpis = _table("plan_kpis_v3", as_name="plan_kpis").rstrip().removesuffix(")") + ") PARTITION BY LIST (version_id)"
    return [
        _LIST_CONTAINS,
        _table("input_sets"),
        *(_pg_spelling(ddl) for ddl in _input_table_ddl()),
        _table("plan_versions"),
        _duckdb_statement("CREATE INDEX idx_plan_versions_input_set "),
        _table("plan_levels"),
        *(t.pg_ddl() for t in SERIES_TABLES),
        plan_kpis,
        "CREATE INDEX idx_plan_kpis_metric_bucket ON plan_kpis(metric, bucket_type, bucket_key)",
        "CREATE SEQUENCE seq_plan_overrides START 1",
        _table("plan_overrides"),
        "CREATE SEQUENCE seq_plan_override_events START 1",
        _table("plan_override_events"),
        _duckdb_statement("CREATE INDEX idx_plan_override_events_version_ts "),
        plan_jobs,
        "CREATE INDEX idx_plan_jobs_version ON plan_jobs(version_id)",
        "CREATE INDEX idx_plan_jobs_status_submitted ON plan_jobs(status, submitted_at)",
        _table("plan_backfill_runs"),
        _table("plan_artifacts"),
        _table("plan_version_tombstones"),
        _table("plan_api_keys"),
        _table("plan_write_log"),
        series_view_sql("postgres"),
        SERIES_CURRENT_VIEW,
        _duckdb_statement("CREATE VIEW plan_kpis_current AS"),
    ]


#: PostgreSQL's own migrations (numbered on their own: 1 is the DuckDB store's schema 7 as one step).
#: Forward only; a released migration never changes, a schema change appends one.
PG_MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "plan store on PostgreSQL (the DuckDB schema 7), plan tables partitioned by version", _initial_schema()),
    # JSONB keeps an object's keys in its own order (shorter keys first), so a level's attributes
    # (the MRP summary, the inputs summary) came back in another order than written and the
    # reference files of a PostgreSQL store differed from the DuckDB store's in key order. JSON
    # keeps the text as written, as DuckDB's JSON does. (Rows stored before keep JSONB's order.)
    (2, "plan_levels.attrs_json as JSON: a level's attributes keep their key order", [
        "ALTER TABLE plan_levels ALTER COLUMN attrs_json DROP DEFAULT",
        "ALTER TABLE plan_levels ALTER COLUMN attrs_json TYPE JSON USING attrs_json::text::json",
        "ALTER TABLE plan_levels ALTER COLUMN attrs_json SET DEFAULT '{}'",
    ]),
]
PG_SCHEMA_VERSION = PG_MIGRATIONS[-1][0]

#: First key of the store's advisory locks (the second is the version's hash, or 0: migrations).
_LOCK_SPACE = 0x504C414E  # "PLAN"


def apply_pg_migrations(con: PgConnection, migrations: Sequence[tuple[int, str, list[str]]] | None = None) -> list[int]:
    """Apply every missing migration, together in one transaction (PostgreSQL's DDL is
    transactional: a failing migration leaves the database as it was) under an advisory lock, so
    two processes opening a new database at once migrate it once. Returns the applied numbers."""
    applied: list[int] = []
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("SELECT pg_advisory_xact_lock(?, 0)", [_LOCK_SPACE])
        con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TIMESTAMP NOT NULL
)""")
        done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for number, name, statements in (PG_MIGRATIONS if migrations is None else migrations):
            if number in done:
                continue
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [number, name])
            applied.append(number)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return applied


# ------------------------------------------------------------------------------------- partitions
def partition_name(table: str, version_id: str) -> str:
    """``<table>_v_<16 hex of md5(version id)>``: a version id may be 64 characters, an identifier 63."""
    return f"{table}_v_{hashlib.md5(version_id.encode()).hexdigest()[:16]}"


def ensure_version_partitions(con: PgConnection, version_id: str) -> None:
    """The version's partition of every partitioned table (created and attached if missing), on the
    caller's transaction (the version row's insert)."""
    from psycopg import sql

    check_identifier("version id", version_id)
    for table in PARTITIONED_TABLES:
        part = partition_name(table, version_id)
        if con.execute("SELECT 1 FROM pg_class WHERE relname = ? AND relkind = 'r'", [part]).fetchone():
            continue
        con.execute_composed(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
            sql.Identifier(part), sql.Identifier(table)))
        con.execute_composed(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(table), sql.Identifier(part), sql.Literal(version_id)))


def lock_version(con: Any, version_id: str) -> None:
    """Serialize writers of one version until the transaction ends (PostgreSQL; DuckDB has one
    writer process and needs none)."""
    if getattr(con, "dialect", "duckdb") != "postgres":
        return
    con.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", [_LOCK_SPACE, version_id])


# ------------------------------------------------------------------------------------- connection
class PgResult:
    """A statement's answer, as DuckDB gives it: rows, ``description``, ``df()``; a statement that
    returns no rows (a write) answers one row holding the number of rows it changed."""

    def __init__(self, cursor: Any):
        self.description = cursor.description
        if cursor.description is None:
            self._rows: list[tuple] = [(cursor.rowcount,)] if cursor.rowcount >= 0 else []
            self._types: list[int] = []
        else:
            self._rows = cursor.fetchall()
            self._types = [column.type_code for column in cursor.description]
        self._next = 0

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    def df(self) -> pd.DataFrame:
        """The rows as a frame typed like DuckDB's ``.df()``: floats float64, BIGINT int64 and
        INTEGER int32 (Int64 / Int32 with NULLs), booleans bool (boolean with NULLs), timestamps datetime64, the rest objects."""
        import pandas as pd

        names = [column.name for column in self.description or []]
        frame = pd.DataFrame.from_records(self.fetchall(), columns=names)
        for name, oid in zip(names, self._types):
            if oid in _FLOAT_OIDS:
                frame[name] = frame[name].astype("float64")
            elif oid in _INT_OIDS:  # with NULLs pandas' nullable Int64 / Int32, as DuckDB gives them
                dtype = _INT_OIDS[oid]
                frame[name] = frame[name].astype(dtype.capitalize() if frame[name].isna().any() else dtype)
            elif oid == _BOOL_OID:
                frame[name] = frame[name].astype("boolean" if frame[name].isna().any() else "bool")
            elif oid == _TIMESTAMP_OID:
                frame[name] = pd.to_datetime(frame[name])
        return frame


_FLOAT_OIDS = {700, 701, 1700}  # float4, float8, numeric
_INT_OIDS = {20: "int64", 21: "int32", 23: "int32"}  # BIGINT, SMALLINT, INTEGER as DuckDB's df() types them
_TIMESTAMP_OID = 1114
_BOOL_OID = 16


class PgConnection:
    """A psycopg 3 connection with the DuckDB connection interface the store's repositories use."""

    dialect = "postgres"

    def __init__(self, raw: Any):
        self.raw = raw

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> PgResult:
        with self.raw.cursor() as cursor:
            if params is None:
                cursor.execute(statement)
            else:
                cursor.execute(translate_placeholders(statement), list(params))
            return PgResult(cursor)

    def execute_composed(self, statement: Any) -> PgResult:
        """A statement composed with ``psycopg.sql`` (identifiers, literals of DDL)."""
        with self.raw.cursor() as cursor:
            cursor.execute(statement)
            return PgResult(cursor)

    def stream_rows(self, statement: str, params: Sequence[Any], size: int) -> Iterator[list[tuple]]:
        """The rows of a query in lists of at most ``size`` rows, received from the server in
        chunks (psycopg's chunked-rows mode): the client holds one chunk, not the whole result.
        The connection serves nothing else until the rows are read or the iterator is closed."""
        with self.raw.cursor() as cursor:
            rows = cursor.stream(translate_placeholders(statement), list(params), size=size)
            try:
                while batch := list(islice(rows, size)):
                    yield batch
            finally:
                rows.close()  # an iterator closed early: psycopg ends the query, the connection is free again

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(translate_placeholders(statement), [list(r) for r in rows])

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """``COPY table (columns) FROM STDIN`` of ``rows`` (Python values); returns the row count."""
        count = 0
        with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def copy_frame(self, table: str, frame: pd.DataFrame) -> int:
        """``frame``'s rows (its columns named like the table's) through :meth:`copy_rows`; NaN and
        pandas' missing values become NULL."""
        columns = [_python_values(frame[c]) for c in frame.columns]
        return self.copy_rows(table, list(frame.columns), zip(*columns)) if len(frame) else 0

    def close(self) -> None:
        self.raw.close()


def _python_values(column: pd.Series) -> list[Any]:
    """A column as Python values (numpy scalars unboxed), missing values as None."""
    import pandas as pd

    if column.dtype.kind in "fc":
        values = column.astype(object).where(column.notna(), None).tolist()
        return [float(v) if v is not None else None for v in values]
    if column.dtype.kind in "iub":
        return column.tolist()
    return [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in column.tolist()]


def open_pg_connection(dsn: str, *, application_name: str = "plan_pipeline") -> PgConnection:
    """A new autocommit connection with the session in UTC (the store keeps naive UTC timestamps);
    a server that cannot be reached is :class:`PlanStoreBusyError` naming it (no password)."""
    import psycopg
    from psycopg.types.string import TextLoader

    from plan_pipeline.store.rules import StoreLocation

    try:
        raw = psycopg.connect(dsn, autocommit=True, application_name=application_name, options="-c TimeZone=UTC")
    except psycopg.OperationalError as exc:
        where = StoreLocation("postgres", dsn=dsn).describe()
        raise PlanStoreBusyError(f"cannot reach the PostgreSQL plan store {where}: {exc}".strip()) from None
    # JSON values come back as their text, like DuckDB's JSON columns (the repositories json.loads them)
    for name in ("json", "jsonb"):
        raw.adapters.register_loader(name, TextLoader)
    return PgConnection(raw)


def not_on_postgres(feature: str) -> PlanStoreError:
    """The error of a store feature the PostgreSQL backend does not have yet (docs/operations.md)."""
    return PlanStoreError(f"{feature} is not yet available on PostgreSQL (PLAN_STORE_URL=postgresql://...): "
                          "use the DuckDB store for it (docs/operations.md, 'Choosing the store backend')")


# ------------------------------------------------------------------------------------- databases
def _database_url(server_url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def create_database(server_url: str, database: str) -> str:
    """Create an empty database on the server ``server_url`` points at (connecting to its
    ``postgres`` maintenance database); returns the URL of the new database. For tests and a
    first setup: the store itself creates its tables on first use."""
    from psycopg import sql

    check_identifier("database name", database)
    admin = open_pg_connection(_database_url(server_url, "postgres"))
    try:
        admin.execute_composed(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    finally:
        admin.close()
    return _database_url(server_url, database)


def copy_database(server_url: str, template: str, database: str) -> str:
    """Create ``database`` as a copy of ``template`` on the same server (``CREATE DATABASE ...
    TEMPLATE``, a file copy: fast for a test's planned store); nobody may be connected to
    ``template`` meanwhile (the store opens a connection per call and closes it). Returns the URL
    of the new database."""
    from psycopg import sql

    check_identifier("database name", database)
    check_identifier("database name", template)
    admin = open_pg_connection(_database_url(server_url, "postgres"))
    try:
        admin.execute_composed(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(database), sql.Identifier(template)))
    finally:
        admin.close()
    return _database_url(server_url, database)


def drop_database(server_url: str, database: str) -> None:
    """Drop a database made by :func:`create_database` (its connections are ended first)."""
    from psycopg import sql

    check_identifier("database name", database)
    admin = open_pg_connection(_database_url(server_url, "postgres"))
    try:
        admin.execute_composed(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    finally:
        admin.close()
