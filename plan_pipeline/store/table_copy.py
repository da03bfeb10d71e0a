"""Table <-> file copies on an open DuckDB connection (used by backup, archives and exports).

Rows leave the store as text through DuckDB's own writer (``COPY (<query>) TO ? (FORMAT csv |
json)``) and as Parquet through Arrow batches and pyarrow's writer, and come back through
DuckDB's reader (``INSERT ... SELECT ... FROM read_parquet(?)``), matched by column name. Every statement is parameterized: values and file paths are bound, and the only
names spliced into SQL are table, column and sequence names read from DuckDB's own catalog (or
the store's fixed table lists) and checked against a plain-identifier pattern.

Internal to ``plan_pipeline/store``: code outside the store calls the statement groups of the
unit of work (:mod:`plan_pipeline.store.unit_of_work`), never these functions. Where the files
go (staging, publishing, checksums) is :mod:`plan_pipeline.store.staging`.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.series_tables import SERIES_TABLE_NAMES, SERIES_VIEW, load_series_statements

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def scalar(con, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (the result is fetched to its end)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0][0] if rows else None


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier; refuses anything but a plain identifier."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PlanStoreError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


def user_tables(con) -> list[str]:
    """The store's logical tables, sorted: the physical tables behind the ``plan_series`` view
    (store/series_tables.py) are listed as ``plan_series``, whose rows backups and counts read
    through the view (the files keep the one ``plan_series`` layout of every schema)."""
    if is_postgres(con):  # tables and partitioned parents, not their partitions
        rows = con.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY c.relname"
        ).fetchall()
    else:
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal ORDER BY table_name"
        ).fetchall()
    names = [r[0] for r in rows]
    if any(n in SERIES_TABLE_NAMES for n in names):
        names = sorted({SERIES_VIEW if n in SERIES_TABLE_NAMES else n for n in names})
    return names


def table_columns(con, table: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of ``table`` in declaration order (PostgreSQL's types in DuckDB's names)."""
    if is_postgres(con):
        found = _pg_table_columns(con, table)
        if not found:
            raise PlanStoreError(f"table {table!r} does not exist in this plan store")
        return found
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
        "ORDER BY column_index",
        [table],
    ).fetchall()
    if not rows:
        raise PlanStoreError(f"table {table!r} does not exist in this plan store")
    return [(r[0], r[1]) for r in rows]


def sequence_state(con) -> dict[str, int | None]:
    """``{sequence: last value handed out}`` (``None`` = never used)."""
    if is_postgres(con):
        rows = con.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema() "
                           "ORDER BY sequencename").fetchall()
        return {r[0]: (int(r[1]) if r[1] is not None else None) for r in rows}
    rows = con.execute(
        "SELECT sequence_name, last_value FROM duckdb_sequences() WHERE schema_name = 'main' ORDER BY sequence_name"
    ).fetchall()
    return {r[0]: (int(r[1]) if r[1] is not None else None) for r in rows}


def advance_sequence(con, name: str, last_value: int | None) -> None:
    """Move a sequence forward until it has handed out ``last_value`` (never backwards)."""
    if last_value is None:
        return
    if is_postgres(con):
        if name not in sequence_state(con):
            raise PlanStoreError(f"sequence {name!r} does not exist in this plan store")
        current = sequence_state(con)[name]
        if current is None or current < int(last_value):
            con.execute("SELECT setval(?, ?)", [name, int(last_value)]).fetchall()
        return
    rows = con.execute(
        "SELECT start_value, last_value, increment_by FROM duckdb_sequences() WHERE sequence_name = ?", [name]
    ).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise PlanStoreError(f"sequence {name!r} does not exist in this plan store")
    start, current, step = int(row[0]), row[1], int(row[2])
    if step != 1:
        raise PlanStoreError(f"sequence {name!r} has increment {step}; only 1 is supported")
    current = start - 1 if current is None else int(current)
    missing = int(last_value) - current
    if missing > 0:
        con.execute("SELECT max(nextval(?)) FROM range(?)", [name, missing]).fetchall()
    after = sequence_state(con).get(name)
    if after is not None and after < int(last_value):
        raise PlanStoreError(f"sequence {name!r} stopped at {after}, expected {last_value}")


COPY_FORMATS = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true"}
#: The parts after the first of one file (:func:`copy_parts_to`): its header row is written once.
_COPY_LATER_PARTS = {"csv": "FORMAT csv, HEADER false", "json": COPY_FORMATS["json"]}
BATCH_ROWS = 100_000


def copy_query_to(con, sql: str, params: Sequence[Any], path: Path, fmt: str = "parquet") -> int:
    """Write a query's rows to one file; returns the row count.

    CSV (with a header row) and JSON (one array of objects) are written by DuckDB's own writer
    (``COPY (<query>) TO ?``). Parquet is streamed as Arrow batches into pyarrow's writer: on
    the 3.8 M-row benchmark store that was faster than ``COPY ... (FORMAT parquet)`` and
    ``EXPORT DATABASE`` (docs/operations.md), and it keeps the files of earlier releases'
    schema; the schema is kept even with no rows. Written to a temporary name and renamed, so
    a file that exists is complete.
    """
    if is_postgres(con):
        return _pg_copy_parts(con, [(sql, params)], Path(path), fmt, (b"", b""))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        # DuckDB 2 refuses a relation while an execute() result is not fully fetched (a
        # fetchone() elsewhere); a finished statement clears that state.
        con.execute("SELECT 1").fetchall()
        reader = con.sql(sql, params=list(params)).to_arrow_reader(BATCH_ROWS)
        rows = 0
        with pq.ParquetWriter(str(tmp), reader.schema) as writer:
            for batch in reader:
                if batch.num_rows:
                    writer.write_batch(batch)
                    rows += batch.num_rows
    else:
        result = con.execute(f"COPY ({sql}) TO ? ({COPY_FORMATS[fmt]})", [*params, str(tmp)]).fetchall()
        rows = int(result[0][0]) if result else 0
    os.replace(tmp, path)
    return rows


#: What DuckDB's JSON array writer puts around the rows (``[\n\t`` + rows joined by ``,\n\t`` +
#: ``\n]\n``): a file of several parts keeps one array.
_JSON_ARRAY_OPEN, _JSON_ROW_SEPARATOR, _JSON_ARRAY_CLOSE = b"[\n\t", b",\n\t", b"\n]\n"


def copy_parts_to(
    con,
    parts: Sequence[tuple[str, Sequence[Any]]],
    path: Path,
    fmt: str = "parquet",
    envelope: tuple[bytes, bytes] = (b"", b""),
) -> int:
    """Write the rows of several queries, one query after the other, into one file; returns
    the row count.

    The file is the one :func:`copy_query_to` writes for a query that returns those rows in
    that order (CSV and JSON byte for byte: one header row, one JSON array; Parquet the same
    schema and rows), but each query is copied on its own, so DuckDB orders one part at a
    time: a plan copied level by level needs memory for its largest level, not for all of
    them (an ``ORDER BY level, row_seq`` of a whole plan is sorted in memory). CSV and JSON
    parts are written by DuckDB next to ``path`` and appended to it one by one (the kernel
    copies the bytes), each removed as soon as it is appended. ``envelope`` (text formats):
    bytes written before and after the rows (a document around the JSON array). On PostgreSQL
    the rows are read through the connection and written by :func:`_pg_copy_parts`.
    """
    if is_postgres(con):
        return _pg_copy_parts(con, parts, Path(path), fmt, envelope)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    rows = 0
    try:
        if fmt == "parquet":
            con.execute("SELECT 1").fetchall()  # see copy_query_to
            readers = (con.sql(sql, params=list(params)).to_arrow_reader(BATCH_ROWS) for sql, params in parts)
            rows = _write_parquet_parts(tmp, path.name, ((reader.schema, reader) for reader in readers))
        else:
            part = path.with_name(f".{path.name}.part")
            with open(tmp, "wb", buffering=0) as out:
                _write_all(out, envelope[0])
                if fmt == "json":
                    _write_all(out, _JSON_ARRAY_OPEN)
                for number, (sql, params) in enumerate(parts):
                    options = COPY_FORMATS[fmt] if number == 0 else _COPY_LATER_PARTS[fmt]
                    try:
                        result = con.execute(f"COPY ({sql}) TO ? ({options})", [*params, str(part)]).fetchall()
                        count = int(result[0][0]) if result else 0
                        size = part.stat().st_size
                        if fmt == "json":  # the part's rows without its own array brackets
                            if count and rows:
                                _write_all(out, _JSON_ROW_SEPARATOR)
                            start, end = len(_JSON_ARRAY_OPEN), size - len(_JSON_ARRAY_CLOSE)
                            if count:
                                _append_range(out, part, start, end)
                        else:
                            _append_range(out, part, 0, size)
                    finally:
                        part.unlink(missing_ok=True)
                    rows += count
                if fmt == "json":
                    _write_all(out, _JSON_ARRAY_CLOSE)
                _write_all(out, envelope[1])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _append_range(out, source: Path, start: int, end: int) -> None:
    """Append bytes ``start:end`` of ``source`` to the unbuffered binary file ``out`` (in the
    kernel where it can: ``copy_file_range``)."""
    with open(source, "rb") as src:
        offset = start
        if hasattr(os, "copy_file_range"):
            try:
                while offset < end:
                    copied = os.copy_file_range(src.fileno(), out.fileno(), end - offset, offset)
                    if copied == 0:
                        break
                    offset += copied
            except OSError:  # a file system that cannot: copy the rest through a buffer
                pass
        src.seek(offset)
        remaining = end - offset
        while remaining > 0:
            chunk = src.read(min(remaining, 1 << 20))
            if not chunk:
                break
            _write_all(out, chunk)
            remaining -= len(chunk)
        if remaining:
            raise PlanStoreError(f"{source.name} ended before its {end - start} bytes were copied")


def _write_all(out, data: bytes) -> None:
    """All of ``data`` to the unbuffered file ``out`` (a raw write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[out.write(view):]


def load_parquet_into(con, table: str, path: Path) -> int:
    """Insert every row of a Parquet file into ``table`` (columns matched by name); returns rows.

    The file must have exactly the table's columns: a backup or archive of another schema is
    refused instead of being loaded half-way.
    """
    import pyarrow.parquet as pq

    columns = [c for c, _ in table_columns(con, table)]
    file_columns = pq.ParquetFile(str(path)).schema_arrow.names
    if sorted(file_columns) != sorted(columns):
        missing = sorted(set(columns) - set(file_columns))
        extra = sorted(set(file_columns) - set(columns))
        raise PlanStoreError(
            f"{Path(path).name} does not match table {table!r} (missing columns: {', '.join(missing) or '-'}; "
            f"unknown columns: {', '.join(extra) or '-'})"
        )
    names = ", ".join(ident(c) for c in columns)
    before = scalar(con, f"SELECT count(*) FROM {ident(table)}")
    if is_postgres(con):
        _pg_load_parquet(con, table, columns, path)
    elif table == SERIES_VIEW:  # rows go to the physical table of their level (checked to fit)
        con.execute(f"CREATE TEMP TABLE incoming_plan_series AS SELECT {names} FROM read_parquet(?)", [str(path)])
        try:
            for statement in load_series_statements("incoming_plan_series"):
                con.execute(statement).fetchall()
        finally:  # an aborted transaction refuses this; the temp table dies with the connection anyway
            with contextlib.suppress(Exception):
                con.execute("DROP TABLE IF EXISTS incoming_plan_series")
    else:
        con.execute(f"INSERT INTO {ident(table)} ({names}) SELECT {names} FROM read_parquet(?)",
                    [str(path)]).fetchall()
    after = scalar(con, f"SELECT count(*) FROM {ident(table)}")
    return int(after - before)


_NEXTVAL_RE = re.compile(r"^nextval\('([A-Za-z_][A-Za-z0-9_]*)'(?:::regclass)?\)$")


def sequence_columns(con) -> list[tuple[str, str, str]]:
    """(table, column, sequence) for every column whose default is ``nextval('sequence')``."""
    if is_postgres(con):
        rows = con.execute(
            "SELECT c.table_name, c.column_name, c.column_default FROM information_schema.columns c "
            "JOIN pg_class t ON t.relname = c.table_name AND t.relkind IN ('r', 'p') AND NOT t.relispartition "
            "WHERE c.table_schema = current_schema() AND c.column_default IS NOT NULL "
            "ORDER BY c.table_name, c.ordinal_position").fetchall()
    else:
        rows = con.execute(
        "SELECT table_name, column_name, column_default FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND column_default IS NOT NULL ORDER BY table_name, column_index"
        ).fetchall()
    found = []
    for table, column, default in rows:
        match = _NEXTVAL_RE.match(str(default).strip())
        if match:
            found.append((table, column, match.group(1)))
    return found


def catch_up_sequences(con) -> None:
    """Make every id sequence hand out values above the ids already stored (after loading rows)."""
    for table, column, sequence in sequence_columns(con):
        top = scalar(con, f"SELECT max({ident(column)}) FROM {ident(table)}")
        if top is not None:
            current = sequence_state(con).get(sequence)
            if current is None or current < int(top):
                advance_sequence(con, sequence, int(top))


# --------------------------------------------------------------------------------------- PostgreSQL
#: PostgreSQL's type names (information_schema) as DuckDB names them: the export's projection and
#: the backup's column checks read one vocabulary.
_PG_TYPE_NAMES = {
    "double precision": "DOUBLE", "real": "FLOAT", "text": "VARCHAR", "character varying": "VARCHAR",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "boolean": "BOOLEAN", "jsonb": "JSON",
    "json": "JSON", "date": "DATE",
}
#: Arrow types of PostgreSQL result columns (by type OID), as DuckDB hands the same columns over.
_PG_ARROW_TYPES = {701: "float64", 700: "float32", 1700: "float64", 20: "int64", 23: "int32", 21: "int16",
                   16: "bool_", 1114: "timestamp", 1184: "timestamptz", 25: "string", 1043: "string",
                   3802: "string", 114: "string", 1082: "date32"}
_PG_FLOAT_OIDS = {700, 701, 1700}
_PG_JSON_OIDS = {114, 3802}


def _pg_table_columns(con, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
    return [(r[0], _PG_TYPE_NAMES.get(r[1], r[1].upper())) for r in rows]


def _arrow_type(oid: int) -> Any:
    import pyarrow as pa

    name = _PG_ARROW_TYPES.get(oid, "string")
    if name == "timestamp":
        return pa.timestamp("us")
    if name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)()


def json_float(value: float) -> str:
    """A finite float as DuckDB's JSON writer (yyjson) spells it: the shortest round-trip digits,
    in plain notation for exponents -6 to 20 (``100000000000000000000.0``, ``0.000001``), else
    ``1e21`` / ``2.5e-7``."""
    if value == 0:
        return "0.0"
    text = repr(abs(value))
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + fraction) - len((whole + fraction).lstrip("0")))
    digits = digits.rstrip("0") or "0"
    sign = "-" if value < 0 else ""
    if -6 <= point - 1 <= 20:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{point - 1}"


def _json_text(value: Any) -> str:
    """``value`` (a Python value or parsed JSON) as DuckDB's JSON writer writes it: compact,
    UTF-8, NaN and infinities null."""
    import math

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value) if math.isfinite(value) else "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_text(str(k))}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    import json

    return json.dumps(str(value), ensure_ascii=False)


def _text_value(value: Any, oid: int, fmt: str) -> Any:
    """A value of a PostgreSQL row as the export's text formats write it (``exports._projection``):
    timestamps ``YYYY-MM-DD HH:MM:SS[.ffffff]``, NaN (and in JSON infinities) NULL, an empty
    string NULL in CSV, JSON columns embedded in JSON."""
    import datetime as dt
    import json
    import math

    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S") + ("" if value.microsecond == 0 else value.strftime(".%f"))
    if oid in _PG_FLOAT_OIDS:
        value = float(value)
        if math.isnan(value) or (fmt == "json" and math.isinf(value)):
            return None
        return value
    if fmt == "csv" and value == "" and isinstance(value, str):
        return None
    if fmt == "json" and oid in _PG_JSON_OIDS:
        return json.loads(value)
    return value


def _write_parquet_parts(tmp: Path, name: str, parts: Iterable[tuple[Any, Iterable[Any]]]) -> int:
    """Write one Parquet file ``tmp`` from ``parts``, each a pyarrow schema and its record
    batches (or tables), taken one part after the other; every part must have the first one's
    columns. Returns the row count. ``name``: the file's name for messages."""
    import pyarrow.parquet as pq

    writer = None
    rows = 0
    try:
        for schema, chunks in parts:
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), schema)
            elif not schema.equals(writer.schema):
                raise PlanStoreError(f"{name}: the parts of one file have different columns")
            for chunk in chunks:
                if chunk.num_rows:
                    writer.write(chunk)
                    rows += chunk.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise PlanStoreError(f"{name}: nothing to write (no parts)")
    return rows


def _pg_arrow_part(con, sql: str, params: Sequence[Any]) -> tuple[Any, list[Any]]:
    """PostgreSQL: one part's rows read through the connection as an Arrow schema and table."""
    import pyarrow as pa

    result = con.execute(sql, list(params))
    schema = pa.schema([(c.name, _arrow_type(c.type_code)) for c in result.description or []])
    data = result.fetchall()
    if not data:
        return schema, []
    columns = list(zip(*data))
    return schema, [pa.Table.from_arrays(
        [pa.array([float(v) if v is not None and field.type == pa.float64() else v for v in col], type=field.type)
         for col, field in zip(columns, schema)], schema=schema)]


def _pg_copy_parts(con, parts: Sequence[tuple[str, Sequence[Any]]], path: Path, fmt: str,
                   envelope: tuple[bytes, bytes]) -> int:
    """PostgreSQL: :func:`copy_parts_to`'s file (the same bytes for CSV and JSON, the same Parquet
    schema and rows), each part's rows read through the connection and written here."""
    import csv
    import io

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    rows = 0
    try:
        if fmt == "parquet":
            rows = _write_parquet_parts(tmp, path.name, (_pg_arrow_part(con, sql, params) for sql, params in parts))
        else:
            with open(tmp, "wb") as out:
                out.write(envelope[0])
                if fmt == "json":
                    out.write(_JSON_ARRAY_OPEN)
                for number, (sql, params) in enumerate(parts):
                    result = con.execute(sql, list(params))
                    described = result.description or []
                    names, oids = [c.name for c in described], [c.type_code for c in described]
                    buffer = io.StringIO()
                    if fmt == "csv":
                        writer_csv = csv.writer(buffer, lineterminator="\n")
                        if number == 0:
                            writer_csv.writerow(names)
                    for row in result.fetchall():
                        values = [_text_value(v, oid, fmt) for v, oid in zip(row, oids)]
                        if fmt == "csv":
                            writer_csv.writerow(["true" if v is True else "false" if v is False else v
                                                 for v in values])
                        else:
                            if rows:
                                buffer.write(_JSON_ROW_SEPARATOR.decode())
                            buffer.write("{" + ",".join(f"{_json_text(n)}:{_json_text(v)}"
                                                        for n, v in zip(names, values)) + "}")
                        rows += 1
                    out.write(buffer.getvalue().encode())
                if fmt == "json":
                    out.write(_JSON_ARRAY_CLOSE)
                out.write(envelope[1])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _pg_load_parquet(con, table: str, columns: list[str], path: Path) -> None:
    """PostgreSQL: a Parquet file's rows into ``table`` by ``COPY ... FROM STDIN`` (columns by name).
    ``plan_versions`` rows get their partitions first (a version's rows of the partitioned tables
    go to its own); ``plan_series`` rows go through a temporary table into the physical tables
    (:func:`~plan_pipeline.store.series_tables.load_series_statements`)."""
    import json

    import pyarrow.parquet as pq

    from plan_pipeline.store.backends.postgres import ensure_version_partitions, lock_version

    data = pq.read_table(str(path), columns=columns)
    kinds = dict(_pg_table_columns(con, table))
    values = []
    for name in columns:
        column = data.column(name).to_pylist()
        if kinds.get(name) == "JSON":  # a JSON value as its text (DuckDB's files hold text)
            column = [v if v is None or isinstance(v, str) else json.dumps(v) for v in column]
        values.append(column)
    rows = list(zip(*values)) if values else []
    if table == "plan_versions":  # loaded first: the versions' writers wait for this transaction
        for version_id in data.column("version_id").to_pylist():
            lock_version(con, version_id)
            ensure_version_partitions(con, version_id)
    if table == SERIES_VIEW:
        con.execute("CREATE TEMP TABLE incoming_plan_series AS SELECT * FROM plan_series WHERE FALSE")
        try:
            con.copy_rows("incoming_plan_series", [ident(c) for c in columns], rows)
            for statement in load_series_statements("incoming_plan_series", "postgres"):
                con.execute(statement)
        finally:  # an aborted transaction refuses this; the temp table dies with the connection anyway
            with contextlib.suppress(Exception):
                con.execute("DROP TABLE IF EXISTS incoming_plan_series")
    else:
        con.copy_rows(ident(table), [ident(c) for c in columns], rows)
