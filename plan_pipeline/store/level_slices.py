"""A slice of a published plan level: some of its frame's columns, optionally only some items.

For readers that need a few columns of a large level, not the whole frame (``exports/plan_review.py``
sums three measures of the detail plan and draws ten SKUs' stock): at 50,000 SKUs x 104 weeks the
whole ``mrp_final`` frame is 15.75 M rows x 13 columns, several GB once read, while the ten SKUs'
rows are a few thousand. The values, dtypes and row order are exactly those of
:meth:`PlanStore.read_series <plan_pipeline.store.plan_levels.PlanLevelRepository.read_series>`
restricted to the slice.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.errors import PlanStoreError
from plan_pipeline.store.layouts import layout_for
from plan_pipeline.store.series_mapping import _frame_from_arrow, _restore_dtypes, _series_select_list
from plan_pipeline.store.series_tables import series_read_source

if TYPE_CHECKING:  # pandas loads where a frame is built or read: the store opens without it
    import pandas as pd

    from plan_pipeline.store.repository import PlanStore


def read_series_slice(store: PlanStore, version_id: str, level: str, columns: Sequence[str], *,
                      items: Sequence[str] | None = None) -> pd.DataFrame:
    """``columns`` (in that order) of the published frame of (version, level), in its row order;
    with ``items``, only the rows whose item key (the level's item column, e.g. ``sku`` or
    ``item``) is one of them. Refuses a column the level's frame does not have."""
    layout = layout_for(level)
    with store.connect() as con:
        entry = store._rows_entry(con, version_id, level)
        stored = {meta["name"]: meta for meta in json.loads(entry[3])}
        missing = [c for c in columns if c not in stored]
        if missing:
            raise PlanStoreError(f"level {level!r} of plan version {version_id!r} has no column(s) {', '.join(missing)}")
        wanted = [stored[c] for c in columns]
        if is_postgres(con):
            return _read_slice_postgres(con, layout, wanted, [version_id, level, entry[0]], items)
        sql = (f"SELECT {', '.join(_series_select_list(layout, wanted))} FROM {series_read_source(level)} "
               "WHERE version_id = $1 AND level = $2 AND source_run_id = $3")
        args: list[object] = [version_id, level, entry[0]]
        if items is not None:
            if not layout.item_key:
                raise PlanStoreError(f"level {level!r} has no item column to select items by")
            sql += " AND list_contains($4::VARCHAR[], item_key)"
            args.append([str(i) for i in items])
        table = con.sql(sql + " ORDER BY row_seq", params=args).to_arrow_table()
    return _frame_from_arrow(table, wanted)


def _read_slice_postgres(con, layout, wanted: list[dict[str, str]], args: list[object],
                         items: Sequence[str] | None) -> pd.DataFrame:
    """The slice on PostgreSQL: the same select in its spelling (``?`` placeholders, a named
    subquery, ``list_contains`` as the schema defines it), typed like :meth:`read_series`."""
    import pandas as pd

    source = series_read_source(layout.level)
    if source.startswith("("):
        source += " AS level_rows"  # PostgreSQL names every subquery in FROM
    sql = (f"SELECT {', '.join(_series_select_list(layout, wanted, 'postgres'))} FROM {source} "
           "WHERE version_id = ? AND level = ? AND source_run_id = ?")
    if items is not None:
        if not layout.item_key:
            raise PlanStoreError(f"level {layout.level!r} has no item column to select items by")
        sql += " AND list_contains(?::VARCHAR[], item_key)"
        args = [*args, [str(i) for i in items]]
    rows = con.execute(sql + " ORDER BY row_seq", args).fetchall()
    frame = pd.DataFrame.from_records(rows, columns=[m["name"] for m in wanted])
    return _restore_dtypes(frame, wanted)
