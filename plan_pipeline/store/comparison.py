"""Version comparison: a version's baseline, and what changed between two versions' published plans.

* :meth:`ComparisonRepository.baseline_version`: the version a version is compared with by default
  (the one it was duplicated from, else the latest approved version of its input set);
* :meth:`ComparisonRepository.compare_versions`: one DuckDB query that rolls both published plans
  up to a bucket (``total``, ``family``, ``sku``, ``month``, ``week``) per metric and joins them
  (FULL OUTER JOIN on bucket and metric), keeping the rows that differ;
* :meth:`ComparisonRepository.level_row_diff`: the rows of one plan level whose measures differ
  (``plan-pipeline diff --level``);
* the stored summary of the ``baseline_comparison`` asset (``plan_kpis`` level
  :data:`COMPARISON_LEVEL`): written, replaced and read here.

The metrics (:data:`COMPARISON_METRICS`) and how each rolls up are documented in
``docs/architecture.md``, "Comparing versions".
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from plan_pipeline.planning.vocabulary import SCORECARD_CATEGORY, SCORECARD_LEVEL
from plan_pipeline.store.backends import is_postgres
from plan_pipeline.store.backends.postgres import lock_version
from plan_pipeline.store.base import PlanStoreBase
from plan_pipeline.store.comparison_metrics import (  # noqa: F401  (re-exported: the store's comparison API)
    COMPARISON_BUCKETS,
    COMPARISON_COLUMNS,
    COMPARISON_METRIC_NAMES,
    COMPARISON_METRICS,
    COMPARISON_TOLERANCE,
    ROW_DIFF_KEYS,
    ROW_DIFF_MEASURES,
    ComparisonMetric,
    row_diff_measures,
)
from plan_pipeline.store.errors import PlanConflictError, PlanNotFoundError, PlanStoreError
from plan_pipeline.store.layouts import LAYOUTS
from plan_pipeline.store.plan_levels import (
    _drop_published_level,
    direct_write_id,
    prepare_kpi_level,
    published_plan_rows,
)
from plan_pipeline.store.plan_rows import COMPARISON_LEVEL, PUBLISHED, _insert_kpi_level
from plan_pipeline.store.rules import is_frozen
from plan_pipeline.store.versions import version_state
from plan_pipeline.store.write_log import record_write
from plan_pipeline.timeutil import utc_now

if TYPE_CHECKING:  # pandas loads where a frame is built: the store (and the CLI's --help) opens without it
    import pandas as pd


_METRICS = {m.name: m for m in COMPARISON_METRICS}
_STORED_VALUES = ("baseline", "value", "delta")

# Bucket expression per source and ``by`` (fixed SQL fragments; nothing a caller gives is spliced).
_DET_BUCKET = {"total": "'total'", "family": "family", "sku": "sku", "month": "month", "week": "week"}
_MRP_BUCKET = {"total": "'total'", "family": "family", "sku": "sku", "month": "month", "week": "week"}
_WEEKLY_BUCKET = {"total": "'total'", "month": "month", "week": "week"}
#: The ``from`` field of a ``duplicate`` event's payload, per backend (a JSON path on DuckDB, a key on PostgreSQL).
_JSON_FROM = {"duckdb": "e.payload_json->>'$.from'", "postgres": "e.payload_json->>'from'"}
#: Family bucket of MRP items that are not finished goods of the detail plan (components).
COMPONENT_FAMILY = "(components)"


def check_comparison(by: str, metrics: list[str] | tuple[str, ...] | None) -> list[str]:
    """The metrics asked for (all when None), in :data:`COMPARISON_METRICS` order; an unknown
    bucket or metric is refused with the choices."""
    if by not in COMPARISON_BUCKETS:
        raise PlanStoreError(f"unknown comparison bucket {by!r}; choose one of: {', '.join(COMPARISON_BUCKETS)}")
    if metrics is None:
        return list(COMPARISON_METRIC_NAMES)
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown:
        raise PlanStoreError(f"unknown comparison metric(s) {', '.join(map(repr, unknown))}; choose from: "
                             f"{', '.join(COMPARISON_METRIC_NAMES)}")
    if not metrics:
        raise PlanStoreError("no comparison metric given")
    return [m for m in COMPARISON_METRIC_NAMES if m in set(metrics)]


def metric_unit(name: str) -> str:
    return _METRICS[name].unit


def _comparison_sql(by: str, metrics: list[str]) -> str:
    """The comparison query for one bucket and metric list. Named parameters (only those it uses, see
    :func:`_parameters`): $baseline, $version, $metrics (the metric list), $by (the KPI bucket type)."""
    sources = {_METRICS[m].source for m in metrics}
    need_weekly = "weekly_summary" in sources and by in _WEEKLY_BUCKET
    need_mrp = "mrp_final" in sources
    need_det = "det" in sources or (need_mrp and by in ("family", "month")) or (need_weekly and by == "month")
    ctes: list[str] = []
    parts: list[str] = []
    if need_det:
        ctes.append(
            "det AS (SELECT version_id, time_bucket_key AS week, period_key AS month, item_key AS sku, "
            "family_key AS family, demand, supply, backlog FROM plan_series_current "
            "WHERE level = 'det' AND version_id IN ($baseline, $version))")
        ctes.append("det_months AS (SELECT version_id, week, min(month) AS month FROM det GROUP BY 1, 2)")
        if "det" in sources:
            ctes.append(f"det_agg AS (SELECT version_id, {_DET_BUCKET[by]} AS bucket, sum(demand) AS demand, "
                        "sum(supply) AS supply, sum(backlog) AS backlog FROM det GROUP BY 1, 2)")
            parts += [f"SELECT version_id, bucket, '{m}' AS metric, {m} AS value FROM det_agg"
                      for m in ("demand", "supply", "backlog") if m in metrics]
    if need_mrp:
        joins, cols = "", ""
        if by == "family":
            ctes.append("det_families AS (SELECT DISTINCT version_id, sku, family FROM det)")
            joins += " LEFT JOIN det_families f ON f.version_id = m.version_id AND f.sku = m.item_key"
            cols += f", coalesce(f.family, '{COMPONENT_FAMILY}') AS family"
        if by == "month":
            joins += " LEFT JOIN det_months w ON w.version_id = m.version_id AND w.week = m.time_bucket_key"
            cols += ", coalesce(w.month, '') AS month"
        rows = (f"SELECT m.version_id, m.time_bucket_key AS week, m.item_key AS sku, m.supply AS receipts, "
                f"m.inventory_close AS on_hand{cols} FROM plan_series_current m{joins} "
                "WHERE m.level = 'mrp_final' AND m.version_id IN ($baseline, $version)")
        if by == "sku":  # one MRP row per item and week already: no per-week sum to form
            ctes.append(f"mrp_weeks AS (SELECT version_id, sku AS bucket, week, receipts, on_hand FROM ({rows}) AS r)")
        else:
            ctes.append(f"mrp_weeks AS (SELECT version_id, {_MRP_BUCKET[by]} AS bucket, week, sum(receipts) AS "
                        f"receipts, sum(on_hand) AS on_hand FROM ({rows}) AS r GROUP BY 1, 2, 3)")
        ctes.append("mrp_agg AS (SELECT version_id, bucket, sum(receipts) AS planned_receipts, "
                    "avg(on_hand) AS projected_on_hand FROM mrp_weeks GROUP BY 1, 2)")
        parts += [f"SELECT version_id, bucket, '{m}' AS metric, {m} AS value FROM mrp_agg"
                  for m in ("planned_receipts", "projected_on_hand") if m in metrics]
    if need_weekly:
        join = (" LEFT JOIN det_months w ON w.version_id = s.version_id AND w.week = s.time_bucket_key"
                if by == "month" else "")
        month = ", coalesce(w.month, '') AS month" if by == "month" else ""
        ctes.append(
            f"weekly AS (SELECT version_id, {_WEEKLY_BUCKET[by]} AS bucket, sum(load) AS leveled_load FROM "
            f"(SELECT s.version_id, s.time_bucket_key AS week, s.supply AS load{month} FROM plan_series_current s"
            f"{join} WHERE s.level = 'weekly_summary' AND s.version_id IN ($baseline, $version)) AS s GROUP BY 1, 2)")
        parts.append("SELECT version_id, bucket, 'leveled_load' AS metric, leveled_load AS value FROM weekly")
    if SCORECARD_LEVEL in sources:
        # a KPI is compared only where both versions store it (a plan from before the scorecard
        # existed would otherwise show every bucket as new)
        ctes.append(
            "kpi AS (SELECT version_id, bucket_key AS bucket, metric, value FROM plan_kpis_current "
            f"WHERE level = '{SCORECARD_LEVEL}' AND category = '{SCORECARD_CATEGORY}' AND bucket_type = $by "
            "AND version_id IN ($baseline, $version) AND list_contains($metrics::VARCHAR[], metric))")
        ctes.append("kpi_both AS (SELECT metric FROM kpi GROUP BY metric HAVING count(DISTINCT version_id) = 2)")
        parts.append("SELECT version_id, bucket, metric, value FROM kpi WHERE metric IN (SELECT metric FROM kpi_both)")
    if not parts:  # e.g. only leveled_load by family: nothing to compare
        parts.append("SELECT NULL::VARCHAR AS version_id, NULL::VARCHAR AS bucket, NULL::VARCHAR AS metric, "
                     "CAST(NULL AS DOUBLE PRECISION) AS value WHERE false")
    ctes.append("side AS (" + " UNION ALL ".join(parts) + ")")
    return (
        "WITH " + ",\n".join(ctes) + "\n"
        "SELECT * FROM (SELECT coalesce(b.bucket, v.bucket) AS bucket, coalesce(b.metric, v.metric) AS metric, "
        "b.value AS baseline, v.value AS value, "
        "CASE WHEN b.bucket IS NULL THEN v.value WHEN v.bucket IS NULL THEN -b.value "
        "ELSE v.value - b.value END AS delta "
        "FROM (SELECT bucket, metric, value FROM side WHERE version_id = $baseline) b "
        "FULL OUTER JOIN (SELECT bucket, metric, value FROM side WHERE version_id = $version) v "
        "ON b.bucket = v.bucket AND b.metric = v.metric "
        f"WHERE b.bucket IS NULL OR v.bucket IS NULL OR abs(v.value - b.value) > {COMPARISON_TOLERANCE!r} "
        "OR ((v.value IS NULL) <> (b.value IS NULL))) AS changed "
        "ORDER BY abs(delta) DESC NULLS LAST, metric, bucket"
    )


class ComparisonRepository(PlanStoreBase):
    def baseline_version(self, version_id: str) -> str | None:
        """The version ``version_id`` is compared with: the version it was duplicated from (its
        ``duplicate`` audit event), while that version exists; else the latest approved version of
        the same input set (by approval time), other than itself; else None."""
        with self.connect() as con:
            row = con.execute("SELECT input_set FROM plan_versions WHERE version_id = ?", [version_id]).fetchone()
            if row is None:
                raise PlanNotFoundError(f"unknown plan version {version_id!r}")
            source_of = _JSON_FROM["postgres" if is_postgres(con) else "duckdb"]
            source = con.execute(
                f"SELECT {source_of} FROM plan_override_events e JOIN plan_versions v "
                f"ON v.version_id = {source_of} WHERE e.version_id = ? AND e.event_type = 'duplicate' "
                "AND e.version_id <> v.version_id ORDER BY e.event_ts DESC, e.id DESC LIMIT 1",
                [version_id],
            ).fetchone()
            if source is not None:
                return str(source[0])
            if row[0] is None:
                return None
            approved = con.execute(
                "SELECT version_id FROM plan_versions WHERE input_set = ? AND status = 'approved' "
                "AND version_id <> ? ORDER BY updated_at DESC, version_id DESC LIMIT 1",
                [row[0], version_id],
            ).fetchone()
        return None if approved is None else str(approved[0])

    def comparable_baseline(self, version_id: str) -> tuple[str | None, str | None]:
        """``(baseline, why_not)``: the version's baseline (:meth:`baseline_version`) and, when there is
        nothing to compare with, one line saying why (no baseline, or a baseline without a published
        plan); ``why_not`` None: compare with ``baseline``. One rule for the ``baseline_comparison``
        asset and the plan report."""
        baseline = self.baseline_version(version_id)
        if baseline is None:
            return None, ("no baseline: it was not duplicated from a version and its input set has no other "
                          "approved version")
        with self.connect() as con:
            published = bool(published_plan_rows(con, baseline))
        if not published:
            return baseline, f"baseline {baseline!r} has no published plan to compare with"
        return baseline, None

    def compare_versions(self, baseline: str, version: str, by: str = "total",
                         metrics: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
        """What changed from ``baseline`` to ``version`` per bucket of ``by`` and metric.

        Columns ``bucket``, ``metric``, ``baseline``, ``value``, ``delta`` (= value - baseline; a
        bucket on one side only counts the other side as 0); only rows where the two differ by more
        than :data:`COMPARISON_TOLERANCE` or the bucket exists on one side only; biggest
        ``|delta|`` first. Both versions' *published* plans, rolled up in one DuckDB query.
        ``attrs["not_compared"]``: the metrics asked for that have no value to compare at this
        bucket (a scorecard KPI not stored for both versions; leveled load by family or SKU).
        """
        chosen = check_comparison(by, metrics)
        sql = _comparison_sql(by, chosen)
        with self.connect() as con:
            for v in (baseline, version):
                self._require_version(con, v)
            frame = con.execute(*_bound(con, sql, baseline=baseline, version=version, metrics=chosen, by=by)).df()
            kpis = [m for m in chosen if _METRICS[m].source == SCORECARD_LEVEL]
            stored = {r[0] for r in con.execute(
                "SELECT metric FROM plan_kpis_current WHERE level = ? AND category = ? AND bucket_type = ? "
                "AND version_id IN (?, ?) AND list_contains(?::VARCHAR[], metric) GROUP BY metric "
                "HAVING count(DISTINCT version_id) = 2",
                [SCORECARD_LEVEL, SCORECARD_CATEGORY, by, baseline, version, kpis]).fetchall()} if kpis else set()
        frame = frame[COMPARISON_COLUMNS].reset_index(drop=True)
        for col in ("bucket", "metric"):
            frame[col] = frame[col].astype(object)
        for col in ("baseline", "value", "delta"):
            frame[col] = frame[col].astype("float64")
        frame.attrs["not_compared"] = [m for m in chosen if (_METRICS[m].source == SCORECARD_LEVEL
                                       and m not in stored) or (m == "leveled_load" and by not in _WEEKLY_BUCKET)]
        return frame

    def level_row_diff(self, left: str, right: str, level: str,
                       tolerance: float = COMPARISON_TOLERANCE) -> pd.DataFrame:
        """Rows of ``level`` whose measures differ between two versions' published plans (full
        outer join on bucket, period and item): the key, ``<measure>_left``, ``<measure>_right``,
        ``<measure>_delta`` and ``presence`` (``both``, ``only <left>``, ``only <right>``).

        An unknown level, or one neither version publishes, is refused (naming the levels they have)."""
        if level not in LAYOUTS:
            raise PlanStoreError(f"unknown plan level {level!r}; choose one of: {', '.join(LAYOUTS)}")
        measures = row_diff_measures(level)
        cols = ", ".join([*ROW_DIFF_KEYS, *measures])
        with self.connect() as con:
            for v in (left, right):
                self._require_version(con, v)
            have = sorted(r[0] for r in con.execute(
                "SELECT DISTINCT level FROM plan_levels WHERE list_contains(?::VARCHAR[], version_id) AND state = ? "
                "AND table_name = 'plan_series' AND applicable", [[left, right], PUBLISHED]).fetchall())
            if level not in have:
                raise PlanStoreError(f"neither {left!r} nor {right!r} publishes level {level!r}; their levels: "
                                     f"{', '.join(have) or 'none (not planned yet)'}")
            a, b = (con.execute(f"SELECT {cols} FROM plan_series_current WHERE version_id = ? AND level = ?",
                                [v, level]).df() for v in (left, right))
        joined = a.merge(b, on=ROW_DIFF_KEYS, how="outer", suffixes=("_left", "_right"), indicator=True)
        changed = joined["_merge"] != "both"
        for m in measures:
            diff = joined[f"{m}_right"].fillna(0.0) - joined[f"{m}_left"].fillna(0.0)
            joined[f"{m}_delta"] = diff
            changed |= diff.abs() > tolerance
        out = joined[changed].copy()
        out["presence"] = out["_merge"].astype(str).map(
            {"both": "both", "left_only": f"only {left}", "right_only": f"only {right}"})
        return out.drop(columns="_merge").sort_values(ROW_DIFF_KEYS, kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ stored summary
    def write_baseline_comparison(self, version_id: str, baseline: str | None, frames: dict[str, pd.DataFrame],
                                  *, run_id: str | None = None) -> int:
        """Replace the version's stored comparison with its baseline in one transaction: ``frames``
        maps a bucket (``by``) to a :meth:`compare_versions` frame; ``baseline`` None stores "no
        baseline" (no rows). Returns the rows written. A frozen version is refused (checked inside
        the transaction: a version approved meanwhile keeps what it has)."""
        import pandas as pd
        long = []
        for by, frame in frames.items():
            check_comparison(by, None)
            for column in _STORED_VALUES:
                part = pd.DataFrame({"category": column, "metric": frame["metric"].astype(str),
                                     "bucket_type": by, "bucket_key": frame["bucket"].astype(str),
                                     "value": frame[column].astype("float64")})
                part["unit"] = part["metric"].map(metric_unit)
                long.append(part)
        rows = (pd.concat(long, ignore_index=True) if long else
                pd.DataFrame({c: pd.Series(dtype=object) for c in
                              ("category", "metric", "bucket_type", "bucket_key", "value", "unit")}))
        prepared = prepare_kpi_level(COMPARISON_LEVEL, rows, source=f"baseline:{baseline}" if baseline else "baseline:none")
        run = run_id or direct_write_id()
        attrs = json.dumps({"baseline": baseline, "buckets": list(frames)})
        with self.write(bulk=True) as con:
            lock_version(con, version_id)  # PostgreSQL: after the version's writer in progress, if any
            status, read_only = version_state(con, version_id)
            if is_frozen(status, read_only):
                raise PlanConflictError(f"plan version {version_id!r} is {status}: it is frozen, its stored comparison "
                                     "stays as it is")
            _drop_published_level(con, version_id, COMPARISON_LEVEL)
            _insert_kpi_level(con, version_id, prepared, run, PUBLISHED, utc_now())
            con.execute("UPDATE plan_levels SET attrs_json = ? WHERE version_id = ? AND level = ? AND run_id = ?",
                        [attrs, version_id, COMPARISON_LEVEL, run])
            record_write(con, self.write_source, "comparison", version_id, [(COMPARISON_LEVEL, prepared.row_count)],
                         run_id=run)
        return prepared.row_count

    def read_baseline_comparison(self, version_id: str) -> pd.DataFrame | None:
        """The stored comparison of a version with its baseline (None when none is stored): columns
        ``by`` + :data:`COMPARISON_COLUMNS`, per bucket type biggest ``|delta|`` first; ``attrs``
        ``baseline`` (None: the version had no baseline) and ``buckets``."""
        import pandas as pd
        with self.connect() as con:
            entry = con.execute(
                "SELECT run_id, attrs_json FROM plan_levels WHERE version_id = ? AND level = ? AND state = ?",
                [version_id, COMPARISON_LEVEL, PUBLISHED]).fetchone()
            if entry is None:
                return None
            long = con.execute(
                "SELECT category, metric, bucket_type, bucket_key, value FROM plan_kpis WHERE version_id = ? "
                "AND level = ? AND source_run_id = ? ORDER BY row_seq",
                [version_id, COMPARISON_LEVEL, entry[0]]).df()
        attrs = json.loads(entry[1] or "{}")
        wide = (long.pivot(index=["bucket_type", "bucket_key", "metric"], columns="category", values="value")
                .reindex(columns=list(_STORED_VALUES)).rename_axis(columns=None).reset_index()
                if len(long) else pd.DataFrame(columns=["bucket_type", "bucket_key", "metric", *_STORED_VALUES]))
        wide = wide.rename(columns={"bucket_type": "by", "bucket_key": "bucket"})
        order = {b: i for i, b in enumerate(COMPARISON_BUCKETS)}
        wide = (wide.assign(_b=wide["by"].map(order), _d=wide["delta"].abs())
                .sort_values(["_b", "_d", "metric", "bucket"], ascending=[True, False, True, True],
                             na_position="last", kind="stable")
                .drop(columns=["_b", "_d"]).reset_index(drop=True))
        out = wide[["by", *COMPARISON_COLUMNS]].copy()
        out.attrs.update(baseline=attrs.get("baseline"), buckets=attrs.get("buckets", []))
        return out


def _parameters(sql: str, **values) -> dict:
    """The named parameters ``sql`` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in values.items() if re.search(rf"\${name}\b", sql)}


_NAMED = re.compile(r"\$([a-z_]+)\b")


def _bound(con, sql: str, **values) -> tuple[str, dict | list]:
    """``sql`` with its named parameters (``$name``) and their values, for ``con``'s backend:
    DuckDB binds them by name; PostgreSQL's connection binds ``?`` in order, so each ``$name``
    becomes ``?`` and its value is repeated where it is used."""
    if not is_postgres(con):
        return sql, _parameters(sql, **values)
    order = _NAMED.findall(sql)
    return _NAMED.sub("?", sql), [values[name] for name in order]


