"""Reads the planner web view needs that the repositories do not offer (``plan_pipeline/api/web``).

Each function takes a store (a ``PlanStore``; inside a request its session connection) and runs
one aggregated, parameterized query: the scorecard totals of every version at once (the plan
list), the families and one family's slice of the published detail plan (the PSI grid), the
overrides of a set of SKUs and the newest audit events of a version. Every statement is one text
for DuckDB and PostgreSQL (a key's SKU by ``split_part``, which both have).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_LEVEL

if TYPE_CHECKING:  # pandas loads where a frame is built: the store opens without it
    import pandas as pd

    from plan_pipeline.store.base import PlanStoreBase

#: The plan level the PSI grid shows and edits (overrides target its SKU x week rows).
DETAIL_LEVEL = "det"
#: Columns of :func:`family_detail_rows`.
GRID_ROW_COLUMNS = ("sku", "week", "period", "demand", "supply", "backlog")


def scorecard_totals_by_version(store: PlanStoreBase) -> dict[str, dict[str, tuple[float, str]]]:
    """``{version: {kpi: (value, unit)}}``: the published scorecard's total bucket of every version
    (one query; versions without a published scorecard are absent)."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT version_id, metric, value, unit FROM plan_kpis_current "
            "WHERE level = ? AND category = ? AND bucket_type = 'total' ORDER BY version_id, row_seq",
            [SCORECARD_LEVEL, SCORECARD_CATEGORY],
        ).fetchall()
    totals: dict[str, dict[str, tuple[float, str]]] = {}
    for version_id, metric, value, unit in rows:
        totals.setdefault(version_id, {})[metric] = (float(value), unit)
    return totals


def detail_families(store: PlanStoreBase, version_id: str) -> list[str]:
    """The families of the version's published detail plan, sorted (empty before a plan)."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT family_key FROM plan_series_current WHERE version_id = ? AND level = ? "
            "AND family_key IS NOT NULL ORDER BY family_key",
            [version_id, DETAIL_LEVEL],
        ).fetchall()
    return [r[0] for r in rows]


def family_skus(store: PlanStoreBase, version_id: str, family: str) -> list[str]:
    """The SKUs of one family in the published detail plan, sorted."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT DISTINCT item_key FROM plan_series_current WHERE version_id = ? AND level = ? "
            "AND family_key = ? ORDER BY item_key",
            [version_id, DETAIL_LEVEL, family],
        ).fetchall()
    return [r[0] for r in rows]


def family_detail_rows(store: PlanStoreBase, version_id: str, family: str, skus: list[str]) -> pd.DataFrame:
    """The published detail rows of ``skus`` in ``family`` (:data:`GRID_ROW_COLUMNS`), in the plan's
    row order (a shared week's month fragments are separate rows)."""
    with store.connect() as con:
        return con.execute(
            "SELECT item_key AS sku, time_bucket_key AS week, period_key AS period, demand, supply, backlog "
            "FROM plan_series_current WHERE version_id = ? AND level = ? AND family_key = ? "
            "AND list_contains(?::VARCHAR[], item_key) ORDER BY row_seq",
            [version_id, DETAIL_LEVEL, family, skus],
        ).df()


def sku_overrides(store: PlanStoreBase, version_id: str, skus: list[str]) -> list[dict[str, Any]]:
    """The detail overrides of ``skus`` (key, payload, locked, locked_by, author), oldest first."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT key_hash, payload_json, lock_flag, locked_by, author FROM plan_overrides "
            "WHERE version_id = ? AND level = ? AND list_contains(?::VARCHAR[], split_part(split_part(key_hash, 'sku=', 2), ',', 1)) "
            "ORDER BY id",
            [version_id, DETAIL_LEVEL, skus],
        ).fetchall()
    return [{"key": r[0], "payload": json.loads(r[1]), "locked": bool(r[2]), "locked_by": r[3], "author": r[4]}
            for r in rows]


def recent_events(store: PlanStoreBase, version_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The version's newest audit events (edits, locks, lifecycle), newest first."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT event_ts, event_type, level, key_hash, actor, payload_json, notes FROM plan_override_events "
            "WHERE version_id = ? ORDER BY event_ts DESC, id DESC LIMIT ?",
            [version_id, int(limit)],
        ).fetchall()
    return [{"ts": r[0], "type": r[1], "level": r[2], "key": r[3], "actor": r[4], "payload": json.loads(r[5]),
             "notes": r[6]} for r in rows]
