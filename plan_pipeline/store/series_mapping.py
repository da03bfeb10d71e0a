"""How a stage frame is laid out in ``plan_series`` and read back exactly (columns, dtypes, order)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.layouts import SeriesLayout, dtype_tag
from plan_pipeline.store.rules import COLUMN_RE
from plan_pipeline.store.series_tables import series_column_type, series_read_source, series_table_for

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import numpy as np
    import pandas as pd


def _quote(name: str) -> str:
    if not COLUMN_RE.match(name):
        raise PlanStoreError(f"column name {name!r} is not a plain identifier")
    return f'"{name}"'


def _check_keys(layout: SeriesLayout, frame: pd.DataFrame) -> None:
    """Bucket and item keys are never empty, and the plan_series key (bucket, period, item) is
    unique within one (version, level).

    Checked in pandas before any transaction opens: each key column is factorized once
    (which also finds empty values), the codes are combined into one integer per row and
    counted (~0.05 s for a 795k-row MRP level). Only the error path looks for the
    duplicate's values to name it.
    """
    import numpy as np
    import pandas as pd

    from plan_pipeline.planning.keys import factorize_keys  # item-major keys: hashed once per run

    keys = [c for c in (layout.bucket_key, layout.period_key, layout.item_key) if c]
    combined: np.ndarray | None = None
    size = 1
    for col in keys:
        codes, uniques = factorize_keys(frame[col])
        codes = codes.astype(np.int64, copy=False)
        n = len(uniques)
        if col == layout.period_key:
            # no period and '' are the same period key in plan_series
            blank = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
            codes = np.where(codes < 0, blank[0] if len(blank) else n, codes)
            n += 1
        elif len(codes) and codes.min() < 0:
            raise PlanStoreError(f"level {layout.level!r}: key column {col!r} has empty values")
        if combined is None:
            combined, size = codes, max(n, 1)
        else:
            combined, size = combined * n + codes, size * max(n, 1)
            if size > 2**40:  # keep the combined code small: renumber it densely
                combined, dense = pd.factorize(combined)
                size = max(len(dense), 1)
    if combined is None or len(combined) < 2:
        return
    if size <= 8 * len(combined) + 1024:
        has_duplicate = bool(np.bincount(combined, minlength=size).max() > 1)
    else:
        has_duplicate = len(pd.unique(combined)) < len(combined)
    if not has_duplicate:
        return
    key_frame = frame[keys]
    if layout.period_key:
        key_frame = key_frame.assign(**{layout.period_key: key_frame[layout.period_key].astype(object)
                                        .where(key_frame[layout.period_key].notna(), "")})
    duplicated = key_frame.duplicated(keep=False).to_numpy()
    first = int(np.flatnonzero(duplicated)[0])
    values = key_frame.iloc[first]
    same = (key_frame == values).all(axis=1).sum()
    shown = ", ".join(f"{c}={values[c]!r}" for c in keys)
    raise PlanStoreError(f"level {layout.level!r}: duplicate key ({shown}) appears {int(same)} times; "
                         "each (bucket, period, item) must be unique")


def _same_values(a: pd.Series, b: pd.Series) -> bool:
    """``a`` equals ``b`` element-wise; free when both are the same array (MRP ``sku`` = ``item``)."""
    left, right = a.to_numpy(), b.to_numpy()
    if (left.shape == right.shape and left.strides == right.strides
            and left.__array_interface__["data"][0] == right.__array_interface__["data"][0]):
        return True
    return bool((left.astype(object, copy=False) == right.astype(object, copy=False)).all())


def _prepare_series(layout: SeriesLayout, frame: pd.DataFrame):
    """Validate ``frame`` for ``layout`` and build the INSERT ... SELECT statement."""
    import numpy as np
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PlanStoreError(f"level {layout.level!r} expects a pandas DataFrame, got {type(frame).__name__}")
    required = layout.key_columns() + [df_col for _, df_col in layout.measures if df_col not in layout.optional]
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise PlanStoreError(f"level {layout.level!r}: frame lacks column(s) {', '.join(missing)}")
    for col in frame.columns:
        _quote(col)
    _check_keys(layout, frame)
    columns_meta = [{"name": c, "dtype": dtype_tag(frame[c])} for c in frame.columns]
    # A shallow copy: the stage's column arrays are scanned by DuckDB in place, not copied.
    prepared = frame.copy(deep=False)
    prepared.index = pd.RangeIndex(len(prepared))
    prepared["__seq"] = np.arange(len(prepared), dtype=np.int64)

    for alias, original in layout.aliases:
        if alias in frame.columns and original in frame.columns and not _same_values(frame[alias], frame[original]):
            raise PlanStoreError(f"level {layout.level!r}: column {alias!r} must equal {original!r}")
    used = set(layout.key_columns()) | {df_col for _, df_col in layout.measures}
    used |= {alias for alias, original in layout.aliases if alias in frame.columns and original in frame.columns}
    if layout.zone:
        used.add(layout.zone)
    if layout.window_index:
        used.add(layout.window_index)
    extras = [c for c in frame.columns if c not in used]
    bucket = _quote(layout.bucket_key)
    if layout.bucket_type == "auto":
        bucket_type = (
            f"CASE WHEN regexp_matches(CAST({bucket} AS VARCHAR), '^[0-9]{{4}}-[0-9]{{2}}$') THEN 'month' "
            f"WHEN regexp_matches(CAST({bucket} AS VARCHAR), 'W[0-9]+$') THEN 'week' ELSE 'period' END"
        )
    else:
        bucket_type = f"'{layout.bucket_type}'"
    item = f"CAST({_quote(layout.item_key)} AS VARCHAR)" if layout.item_key else f"'{layout.item_const}'"
    period = f"coalesce(CAST({_quote(layout.period_key)} AS VARCHAR), '')" if layout.period_key else "''"
    family = f"CAST({_quote(layout.family_key)} AS VARCHAR)" if layout.family_key else "NULL"
    zone = (
        f"CAST({_quote(layout.zone)} AS VARCHAR)" if layout.zone and layout.zone in frame.columns else "NULL"
    )
    window = (
        f"CAST({_quote(layout.window_index)} AS INTEGER)"
        if layout.window_index and layout.window_index in frame.columns
        else "NULL"
    )
    measure_cols = [s for s, _ in layout.measures]
    measure_vals = [f"CAST({_quote(d)} AS DOUBLE)" if d in frame.columns else "NULL" for _, d in layout.measures]
    if extras:
        pairs = ", ".join(f"'{c}', {_quote(c)}" for c in extras)
        extra = f"json_object({pairs})"
    else:
        extra = "'{}'"
    target_cols = [
        "version_id", "level", "row_seq", "time_bucket_type", "time_bucket_key", "period_key", "item_key",
        "family_key", "source", "boundary_zone", "window_index", "source_run_id", *measure_cols, "extra_json",
        "created_at", "updated_at",
    ]
    source = f"'{layout.source}'" if layout.source else "NULL"
    select = [
        "$1", "$2", '"__seq"', bucket_type, f"CAST({bucket} AS VARCHAR)", period, item, family, source, zone,
        window, "$3", *measure_vals, extra, "$4", "$5",
    ]
    table = series_table_for(layout.level)
    if not table.wide:
        # the level's family table stores only what varies; the view supplies the rest
        # (store/series_tables.py): a frame whose values would not read back is refused
        unstored = {c for c in target_cols if c not in table.stored}
        if "extra_json" in unstored and extras:
            raise PlanStoreError(f"level {layout.level!r}: column(s) {', '.join(extras)} have no place in "
                                 f"{table.name} (its levels store no extra fields)")
        kept = [(c, v) for c, v in zip(target_cols, select, strict=True) if c not in unstored]
        target_cols, select = [c for c, _ in kept], [v for _, v in kept]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(target_cols)}) SELECT {', '.join(select)} "
        "FROM incoming_series"
    )
    return prepared, columns_meta, sql


def _read_series_sql(layout: SeriesLayout, columns: list[dict[str, str]], dialect: str = "duckdb", *,
                     row_range: bool = False) -> str:
    """The read of one level as written (bound: version, level, run; with ``row_range`` also the
    first and the end ``row_seq`` of a slice of rows): ``$n`` on DuckDB, ``?`` on PostgreSQL (its
    connection turns them into psycopg's placeholders)."""
    bound = ("$1", "$2", "$3", "$4", "$5") if dialect == "duckdb" else ("?",) * 5
    source = series_read_source(layout.level)
    if dialect == "postgres" and source.startswith("("):
        source += " AS level_rows"  # PostgreSQL names every subquery in FROM
    rows = f"AND row_seq >= {bound[3]} AND row_seq < {bound[4]} " if row_range else ""
    return (
        f"SELECT {', '.join(_series_select_list(layout, columns, dialect))} FROM {source} "
        f"WHERE version_id = {bound[0]} "
        f"AND level = {bound[1]} AND source_run_id = {bound[2]} {rows}ORDER BY row_seq"
    )


def _series_select_list(layout: SeriesLayout, columns: list[dict[str, str]], dialect: str = "duckdb") -> list[str]:
    """``CAST(<plan_series column or extra_json field> AS <type>) AS "<frame column>"`` for each
    column of the frame as it was written (the read of a level, whole or sliced)."""
    return [f"{expr} AS {quoted}" for quoted, expr in _series_select_pairs(layout, columns, dialect)]


#: The SQL type a frame column's dtype tag is read back as, per dialect.
_READ_CASTS = {
    "duckdb": {"float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "str": "VARCHAR"},
    "postgres": {"float": "DOUBLE PRECISION", "int": "BIGINT", "bool": "BOOLEAN", "str": "VARCHAR"},
}


def _series_select_pairs(layout: SeriesLayout, columns: list[dict[str, str]],
                         dialect: str = "duckdb") -> list[tuple[str, str]]:
    """``("<frame column>" quoted, CAST(<plan_series column or extra_json field> AS <type>))`` for
    each column of the frame as it was written."""
    source_of: dict[str, str] = {}
    key_map = {
        layout.bucket_key: "time_bucket_key",
        layout.item_key: "item_key",
        layout.period_key: "period_key",
        layout.family_key: "family_key",
    }
    for df_col, series_col in key_map.items():
        if df_col:
            source_of.setdefault(df_col, series_col)
    for series_col, df_col in layout.measures:
        source_of.setdefault(df_col, series_col)
    if layout.zone:
        source_of.setdefault(layout.zone, "boundary_zone")
    if layout.window_index:
        source_of.setdefault(layout.window_index, "window_index")
    for alias, original in layout.aliases:
        if original in source_of:
            source_of.setdefault(alias, source_of[original])
    casts = _READ_CASTS[dialect]
    measures = {series_col for series_col, _ in layout.measures}
    parts = []
    for meta in columns:
        name, tag = meta["name"], meta["dtype"]
        quoted = _quote(name)
        if name in source_of:
            expr = source_of[name]
            if name == layout.period_key:
                expr = "nullif(period_key, '')"
            elif dialect == "postgres" and tag == "bool" and expr in measures:
                expr = f"CAST({expr} AS INTEGER)"  # PostgreSQL casts no DOUBLE PRECISION to BOOLEAN
            parts.append((quoted, f"CAST({expr} AS {casts[tag]})"))
        elif dialect == "postgres":
            parts.append((quoted, f"CAST(extra_json->>'{name}' AS {casts[tag]})"))
        else:
            parts.append((quoted, f"CAST(extra_json->>'$.{name}' AS {casts[tag]})"))
    return parts


def _restore_dtypes(frame: pd.DataFrame, columns: list[dict[str, str]]) -> pd.DataFrame:
    for meta in columns:
        name, tag = meta["name"], meta["dtype"]
        col = frame[name]
        if tag == "float":
            frame[name] = col.astype("float64")
        elif tag == "int":
            frame[name] = col.astype("int64") if col.notna().all() else col.astype("Int64")
        elif tag == "bool":
            frame[name] = col.astype(bool) if col.notna().all() else col.astype("boolean")
        else:
            frame[name] = col.astype(object).where(col.notna(), None)
    return frame


def _frame_from_arrow(table, columns: list[dict[str, str]]) -> pd.DataFrame:
    """The frame of a level read as Arrow (typed by :func:`_series_select_pairs`' casts): the
    frame :func:`_restore_dtypes` makes of DuckDB's ``.df()`` (same values and dtypes), without
    its copies of every column. Arrow gives float64, int64, bool and object strings (None for
    NULL) as they are; an int or bool column holding NULL becomes ``Int64`` / ``boolean``."""
    import pandas as pd
    import pyarrow as pa

    frame = table.to_pandas()
    nullable = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    for index, meta in enumerate(columns):
        column = table.column(index)
        if meta["dtype"] in ("int", "bool") and column.null_count:
            frame[meta["name"]] = column.to_pandas(types_mapper=nullable.get)
    return frame


def _round_half_away(value: float) -> int:
    """A DOUBLE stored into an INTEGER column, rounded as DuckDB does (half away from zero)."""
    import math

    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


_MONTH_RE = r"^[0-9]{4}-[0-9]{2}$"
_WEEK_RE = r"W[0-9]+$"


def _text_values(column: pd.Series) -> list[str | None]:
    """``CAST(column AS VARCHAR)`` in Python: missing values stay None."""
    import pandas as pd

    return [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in column.tolist()]


def series_copy_columns(layout: SeriesLayout, prepared: pd.DataFrame, *, version_id: str, run_id: str,
                        now: Any) -> dict[str, Any]:
    """The physical table's columns of a prepared level (``_prepare_series``' frame), each a list
    or one value for every row: what the DuckDB ``INSERT ... SELECT`` of :func:`_prepare_series`
    computes in SQL, computed in Python for PostgreSQL's ``COPY`` (store/backends/postgres.py)."""
    import json
    import re

    import pandas as pd

    frame_columns = set(prepared.columns) - {"__seq"}
    n = len(prepared)
    values: dict[str, Any] = {"version_id": version_id, "level": layout.level,
                              "row_seq": prepared["__seq"].tolist()}
    bucket = _text_values(prepared[layout.bucket_key])
    if layout.bucket_type == "auto":
        month, week = re.compile(_MONTH_RE), re.compile(_WEEK_RE)
        values["time_bucket_type"] = [
            "month" if b is not None and month.search(b) else "week" if b is not None and week.search(b) else "period"
            for b in bucket]
    else:
        values["time_bucket_type"] = layout.bucket_type
    values["time_bucket_key"] = bucket
    values["period_key"] = ([p or "" for p in _text_values(prepared[layout.period_key])]
                            if layout.period_key else "")
    values["item_key"] = _text_values(prepared[layout.item_key]) if layout.item_key else layout.item_const
    values["family_key"] = _text_values(prepared[layout.family_key]) if layout.family_key else None
    values["source"] = layout.source or None
    values["boundary_zone"] = (_text_values(prepared[layout.zone])
                               if layout.zone and layout.zone in frame_columns else None)
    values["window_index"] = ([None if pd.isna(v) else int(v) for v in prepared[layout.window_index].tolist()]
                              if layout.window_index and layout.window_index in frame_columns else None)
    values["source_run_id"] = run_id
    for series_col, df_col in layout.measures:
        if df_col not in frame_columns:
            values[series_col] = None
        elif series_column_type(series_col) == "INTEGER":  # DuckDB: CAST(x AS DOUBLE) into an INTEGER column
            values[series_col] = [None if pd.isna(v) else _round_half_away(float(v)) for v in prepared[df_col].tolist()]
        else:
            values[series_col] = [None if pd.isna(v) else float(v) for v in prepared[df_col].tolist()]
    used = set(layout.key_columns()) | {df_col for _, df_col in layout.measures}
    used |= {alias for alias, original in layout.aliases if alias in frame_columns and original in frame_columns}
    used |= {c for c in (layout.zone, layout.window_index) if c}
    extras = [c for c in prepared.columns if c not in used and c != "__seq"]
    if extras:
        columns = [[None if not isinstance(v, str) and pd.isna(v) else v for v in prepared[c].tolist()]
                   for c in extras]
        values["extra_json"] = [json.dumps(dict(zip(extras, row)), default=str) for row in zip(*columns)]
    else:
        values["extra_json"] = "{}"
    values["created_at"] = values["updated_at"] = now
    table = series_table_for(layout.level)
    out = {c: values[c] for c in table.stored if c in values}  # the rest: the table's defaults
    assert all(not isinstance(v, list) or len(v) == n for v in out.values())
    return out
