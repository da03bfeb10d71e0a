"""The physical tables behind the ``plan_series`` view (schema migration 7).

``plan_series`` was one wide table (41 columns) holding every level. Most of its columns are
constant or empty for the two big level families, and DuckDB pays per column on every insert
(a 795k-row MRP level: 0.53-0.71 s into the wide table, 0.19 s into a 12-column one;
docs/performance.md, "The narrow store"). Since migration 7 each level lives in the table of its
family, which stores only the columns that family writes:

* ``plan_series_detail``: ``det``, ``det_adjusted``;
* ``plan_series_mrp``: ``mrp``, ``mrp_adjusted``, ``mrp_final``, ``mrp_final_adjusted``;
* ``plan_series_wide``: every other (small) level, with every column of the old table.

``plan_series`` is a VIEW with exactly the old table's columns, order and types: a column a
family does not store is supplied by the view -- its old default, the level's constant from its
layout (``source``, ``time_bucket_type``), or the level's ``plan_levels.written_at`` (the rows'
``created_at`` / ``updated_at``: every write stamps its rows and its ``plan_levels`` row with the
same time). Readers (SQL users, DWH export, ``plan_series_current``, comparisons, PSI, the web
view, maintenance counts, archives and backups) keep reading ``plan_series``; writes and deletes go
to the physical tables through this module. A row moved in from the old table (or an archive)
that does not fit its family's table -- a column the table lacks holding something else than
what the view supplies -- goes whole to ``plan_series_wide`` instead, never changed
(:func:`load_series_statements`); a frame written whose values would not read back is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from plan_pipeline.store.layouts import LAYOUTS

#: The logical table every reader uses (a view since migration 7).
SERIES_VIEW = "plan_series"

# The columns of plan_series in order, with their declaration in the old table (migrations 1-2).
SERIES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("version_id", "TEXT NOT NULL"),
    ("level", "TEXT NOT NULL"),
    ("row_seq", "INTEGER NOT NULL"),
    ("time_bucket_type", "TEXT NOT NULL"),
    ("time_bucket_key", "TEXT NOT NULL"),
    ("period_key", "TEXT NOT NULL DEFAULT ''"),
    ("item_key", "TEXT NOT NULL"),
    ("family_key", "TEXT"),
    ("location_key", "TEXT NOT NULL DEFAULT 'global'"),
    ("location_type", "TEXT DEFAULT 'global'"),
    ("source", "TEXT"),
    ("policy", "TEXT"),
    ("cutover_flag", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("boundary_zone", "TEXT"),
    ("window_index", "INTEGER"),
    ("lock_flag", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("source_run_id", "TEXT"),
    ("demand", "DOUBLE NOT NULL DEFAULT 0"),
    ("supply", "DOUBLE NOT NULL DEFAULT 0"),
    ("backlog", "DOUBLE NOT NULL DEFAULT 0"),
    ("inventory_open", "DOUBLE NOT NULL DEFAULT 0"),
    ("inventory_close", "DOUBLE NOT NULL DEFAULT 0"),
    ("prod_qty", "DOUBLE NOT NULL DEFAULT 0"),
    ("ship_qty", "DOUBLE NOT NULL DEFAULT 0"),
    ("capacity_used", "DOUBLE NOT NULL DEFAULT 0"),
    ("cost_total", "DOUBLE NOT NULL DEFAULT 0"),
    ("spill_in", "DOUBLE"),
    ("spill_out", "DOUBLE"),
    ("adjustment", "DOUBLE"),
    ("carryover_in", "DOUBLE"),
    ("carryover_out", "DOUBLE"),
    ("scheduled_receipts", "DOUBLE"),
    ("planned_receipt", "DOUBLE"),
    ("planned_release", "DOUBLE"),
    ("lot_size", "DOUBLE"),
    ("min_order_qty", "DOUBLE"),
    ("lead_time_weeks", "INTEGER"),
    ("extra_json", "JSON NOT NULL DEFAULT '{}'"),
    ("created_at", "TIMESTAMP NOT NULL"),
    ("updated_at", "TIMESTAMP NOT NULL"),
    ("supply_plan", "DOUBLE"),
)
SERIES_COLUMN_NAMES = tuple(name for name, _ in SERIES_COLUMNS)
_DECLARED = dict(SERIES_COLUMNS)
# columns whose value the view takes from the level's layout / its plan_levels row
_PER_LEVEL = {"time_bucket_type": lambda layout: layout.bucket_type, "source": lambda layout: layout.source}
_STAMPS = ("created_at", "updated_at")


#: PostgreSQL's names of the DuckDB types the store declares (the rest are spelled the same).
PG_TYPES = {"DOUBLE": "DOUBLE PRECISION", "JSON": "JSONB"}


def pg_declaration(declaration: str) -> str:
    """A column declaration (``DOUBLE NOT NULL DEFAULT 0``) in PostgreSQL's spelling."""
    head, _, rest = declaration.partition(" ")
    return f"{PG_TYPES.get(head, head)} {rest}".rstrip()


def _sql_type(column: str, dialect: str = "duckdb") -> str:
    head = _DECLARED[column].split()[0]
    return PG_TYPES.get(head, head) if dialect == "postgres" else head


def series_column_type(column: str) -> str:
    """The declared (DuckDB) type of a ``plan_series`` column: ``DOUBLE``, ``INTEGER``, ``TEXT`` ..."""
    return _sql_type(column)


def _literal(value: str | None, column: str, dialect: str = "duckdb") -> str:
    if value is None:
        return f"CAST(NULL AS {_sql_type(column, dialect)})"
    return f"CAST('{value}' AS {_sql_type(column, dialect)})"


@dataclass(frozen=True)
class SeriesTable:
    """One physical table of ``plan_series``: the levels it holds and the columns it stores."""

    name: str
    levels: tuple[str, ...]  # empty: every level no other table holds
    stored: tuple[str, ...]  # in plan_series order

    @property
    def wide(self) -> bool:
        return self.stored == SERIES_COLUMN_NAMES

    @property
    def stores_stamps(self) -> bool:
        """Rows carry their own ``created_at`` / ``updated_at`` (bound as ``$4`` / ``$5`` on insert)."""
        return "created_at" in self.stored

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c} {_DECLARED[c]}" for c in self.stored)
        return f"CREATE TABLE {self.name} (\n  {cols}\n)"

    def pg_ddl(self) -> str:
        """The PostgreSQL table: one partition per plan version (store/backends/postgres.py)."""
        cols = ",\n  ".join(f"{c} {pg_declaration(_DECLARED[c])}" for c in self.stored)
        return f"CREATE TABLE {self.name} (\n  {cols}\n) PARTITION BY LIST (version_id)"

    def supplied(self, column: str, dialect: str = "duckdb") -> str:
        """The SQL the view selects for ``column`` from a row ``s`` (joined to ``plan_levels l``)."""
        if column in self.stored:
            return f"s.{column}"
        if column in _STAMPS:
            return "l.written_at"
        if column in _PER_LEVEL:
            values = {lvl: _PER_LEVEL[column](LAYOUTS[lvl]) for lvl in self.levels}
            if len(set(values.values())) == 1:
                return _literal(next(iter(values.values())), column, dialect)
            whens = " ".join(f"WHEN '{lvl}' THEN {_literal(v, column, dialect)}" for lvl, v in values.items())
            return f"CASE s.level {whens} END"
        declared = _DECLARED[column]
        if " DEFAULT " in declared:
            return f"CAST({declared.split(' DEFAULT ', 1)[1]} AS {_sql_type(column, dialect)})"
        return _literal(None, column, dialect)

    def select_sql(self, dialect: str = "duckdb") -> str:
        """This table's rows with every plan_series column (one branch of the view)."""
        if self.wide:
            return f"SELECT {', '.join(SERIES_COLUMN_NAMES)} FROM {self.name}"
        cols = ", ".join(f"{self.supplied(c, dialect)} AS {c}" for c in SERIES_COLUMN_NAMES)
        join = (" LEFT JOIN plan_levels l ON l.version_id = s.version_id AND l.level = s.level "
                "AND l.run_id = s.source_run_id") if any(c not in self.stored for c in _STAMPS) else ""
        return f"SELECT {cols} FROM {self.name} s{join}"


_DETAIL_COLUMNS = ("version_id", "level", "row_seq", "time_bucket_key", "period_key", "item_key", "family_key",
                   "source_run_id", "demand", "supply", "backlog", "extra_json", "supply_plan")
_MRP_COLUMNS = ("version_id", "level", "row_seq", "time_bucket_key", "item_key", "source_run_id", "demand",
                "supply", "backlog", "inventory_open", "inventory_close", "prod_qty", "scheduled_receipts",
                "planned_receipt", "planned_release", "lot_size", "min_order_qty", "lead_time_weeks")

#: The physical tables of plan_series, the wide one (every other level) last.
SERIES_TABLES: tuple[SeriesTable, ...] = (
    SeriesTable("plan_series_detail", ("det", "det_adjusted"), _DETAIL_COLUMNS),
    SeriesTable("plan_series_mrp", ("mrp", "mrp_adjusted", "mrp_final", "mrp_final_adjusted"), _MRP_COLUMNS),
    SeriesTable("plan_series_wide", (), SERIES_COLUMN_NAMES),
)
SERIES_TABLE_NAMES = tuple(t.name for t in SERIES_TABLES)
_WIDE = SERIES_TABLES[-1]
_TABLE_OF = {lvl: t for t in SERIES_TABLES for lvl in t.levels}


def series_table_for(level: str) -> SeriesTable:
    """The physical table holding ``level``'s rows."""
    return _TABLE_OF.get(level, _WIDE)


def series_tables_of(level: str | None = None) -> tuple[str, ...]:
    """The physical tables a statement on ``level`` (``None``: any level) must touch: a narrow
    family's levels may also have rows in the wide table (rows that did not fit when loaded)."""
    if level is None:
        return SERIES_TABLE_NAMES
    table = series_table_for(level)
    return (table.name,) if table.wide else (table.name, _WIDE.name)


def series_read_source(level: str) -> str:
    """What a read of one level selects ``FROM``: its family table (with the wide table's rows of
    the level, if any did not fit), every column the family stores."""
    table = series_table_for(level)
    if table.wide:
        return table.name
    cols = ", ".join(table.stored)
    return f"(SELECT {cols} FROM {table.name} UNION ALL SELECT {cols} FROM {_WIDE.name})"


def physical_tables(table: str, level: str | None = None) -> tuple[str, ...]:
    """``table`` itself, or for ``plan_series`` the physical table(s) behind the view."""
    return series_tables_of(level) if table == SERIES_VIEW else (table,)


def _narrow_where(table: SeriesTable) -> str:
    if table.levels:
        return f"s.level IN ({', '.join(repr(lvl) for lvl in table.levels)})"
    narrow = [lvl for t in SERIES_TABLES for lvl in t.levels]
    return f"s.level NOT IN ({', '.join(repr(lvl) for lvl in narrow)})"


def series_view_sql(dialect: str = "duckdb") -> str:
    return f"CREATE VIEW {SERIES_VIEW} AS\n" + "\nUNION ALL\n".join(t.select_sql(dialect) for t in SERIES_TABLES)


def _misfit(table: SeriesTable, dialect: str = "duckdb") -> str:
    """A row ``s`` (joined to ``plan_levels l``) holds, in a column ``table`` does not store,
    something else than what the view would show there."""
    return " OR ".join(f"(s.{c} IS DISTINCT FROM {table.supplied(c, dialect)})"
                       for c in SERIES_COLUMN_NAMES if c not in table.stored)


def load_series_statements(source: str, dialect: str = "duckdb") -> list[str]:
    """Statements moving rows shaped like ``plan_series`` (every column, by name) from ``source``
    (a table) into the physical tables, losing nothing.

    A row of a narrow family goes to its family table when every column the table does not store
    holds exactly what the view shows there (a timestamp that is its level's
    ``plan_levels.written_at`` included); otherwise (a row of an older release with, say, another
    ``source`` or its own timestamps) it goes whole to ``plan_series_wide``, which reads of the
    level and the view include. The ``plan_levels`` rows of the loaded levels must be in place.
    """
    join = ("LEFT JOIN plan_levels l ON l.version_id = s.version_id AND l.level = s.level "
            "AND l.run_id = s.source_run_id")
    statements = []
    misfits = []
    for table in SERIES_TABLES:
        if table.wide:
            continue
        family = _narrow_where(table)
        statements.append(
            f"INSERT INTO {table.name} ({', '.join(table.stored)}) SELECT {', '.join(f's.{c}' for c in table.stored)} "
            f"FROM {source} s {join} WHERE {family} AND NOT ({_misfit(table, dialect)})"
        )
        misfits.append(f"({family} AND ({_misfit(table, dialect)}))")
    statements.append(
        f"INSERT INTO {_WIDE.name} ({', '.join(SERIES_COLUMN_NAMES)}) "
        f"SELECT {', '.join(f's.{c}' for c in SERIES_COLUMN_NAMES)} FROM {source} s {join} "
        f"WHERE {_narrow_where(_WIDE)} OR {' OR '.join(misfits)}"
    )
    return statements
