"""The version comparison's vocabulary: its buckets, metrics, columns and row-diff measures.

Pure Python (no pandas, no DuckDB), so the CLI can offer the choices in ``--help`` without loading
the store; :mod:`plan_pipeline.store.comparison` holds the queries.
"""
from __future__ import annotations

from dataclasses import dataclass

from plan_pipeline.planning.vocabulary import SCORECARD_BUCKETS, SCORECARD_KPIS, SCORECARD_LEVEL


@dataclass(frozen=True)
class ComparisonMetric:
    """A metric a comparison reports: where it comes from and how a bucket rolls it up."""

    name: str
    unit: str
    source: str  # "det" | "mrp_final" | "weekly_summary" | "scorecard"
    meaning: str


#: The bucket a comparison rolls the plan up to (the scorecard's bucket types, in the same order).
COMPARISON_BUCKETS = SCORECARD_BUCKETS
#: Numbers closer than this are equal.
COMPARISON_TOLERANCE = 1e-9
#: Plan measures of the final (plain-chain) plan, then the seven scorecard KPIs.
COMPARISON_METRICS: tuple[ComparisonMetric, ...] = (
    ComparisonMetric("demand", "units", "det", "detail plan demand (sum)"),
    ComparisonMetric("supply", "units", "det", "detail plan supply (sum)"),
    ComparisonMetric("backlog", "units", "det", "detail plan backlog, unmet demand of each row (sum)"),
    ComparisonMetric("planned_receipts", "units", "mrp_final",
                     "capacity-leveled planned order receipts of every MRP item (sum)"),
    ComparisonMetric("projected_on_hand", "units", "mrp_final",
                     "projected on hand at week end, summed over the bucket's items, averaged over its weeks"),
    ComparisonMetric("leveled_load", "units", "weekly_summary",
                     "leveled load of the weekly capacity plan (sum; total, month and week buckets only)"),
    *(ComparisonMetric(k.name, k.unit, SCORECARD_LEVEL, f"scorecard KPI: {k.meaning} (stored value, never summed)")
      for k in SCORECARD_KPIS),
)
COMPARISON_METRIC_NAMES = tuple(m.name for m in COMPARISON_METRICS)
#: Columns of a comparison frame.
COMPARISON_COLUMNS = ["bucket", "metric", "baseline", "value", "delta"]

#: Row diff (``--level``): the measures compared per level (others: demand, supply, backlog).
ROW_DIFF_MEASURES = {
    "aggregate": ["demand", "supply", "backlog", "capacity_used"],
    "det": ["demand", "supply", "backlog"],
    "mrp": ["demand", "supply", "backlog", "inventory_open", "inventory_close", "prod_qty"],
    "mrp_final": ["demand", "supply", "backlog", "inventory_open", "inventory_close", "prod_qty"],
    "weekly_summary": ["demand", "supply", "backlog", "capacity_used"],
}
ROW_DIFF_KEYS = ["time_bucket_key", "period_key", "item_key"]


def row_diff_measures(level: str) -> list[str]:
    """The measures ``--level`` compares row by row at ``level``."""
    return ROW_DIFF_MEASURES.get(level, ["demand", "supply", "backlog"])
