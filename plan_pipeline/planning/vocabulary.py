"""The shared planning vocabulary: one home for every name, choice, bound and column list that
more than one module speaks (stages, the parameter model, store layouts, invariants, the legacy
mapping, exports).

Pure Python, no pandas: anything may import it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# ------------------------------------------------------------------------------------ bounds
#: The largest magnitude any planned quantity may have (demand, capacity, stock, order and
#: override quantities, lot sizes, costs). One trillion units keeps every sum the planner forms
#: (a family's demand over a 104-week horizon, a year of capacity) far inside float64's exact
#: integer range (2**53, about 9.0e15) and inside int64, so rounding to whole units stays exact
#: and no total overflows. Inputs, overrides and parameters beyond it are refused with a rule.
MAX_PLAN_QUANTITY = 1e12
#: The largest ratio parameter (``max_adjust_ratio``, ``tol_rel``): a million times a row's
#: value is no limit in practice (``max_adjust_ratio`` 0 already means "unlimited"), and it keeps
#: ``value x ratio`` finite for every plan quantity up to ``MAX_PLAN_QUANTITY``.
MAX_RATIO = 1e6

# ------------------------------------------------------------------------------------ choices
ROUND_MODES = ("none", "int", "dec1", "dec2")
LT_UNITS = ("day", "week")
BLEND_WEIGHT_MODES = ("tri", "lin", "quad")
CARRYOVER_MODES = ("none", "prev", "next", "auto", "both")
ANCHOR_POLICIES = ("DET_near", "AGG_far", "blend")
#: A preset fills the parameters left unset (see ``PlanningParameters.resolved``).
PRESETS = {
    "det_near": {"anchor_policy": "DET_near", "recon_window_days": 7},
    "agg_far": {"anchor_policy": "AGG_far", "recon_window_days": 7},
    "blend": {"anchor_policy": "blend", "recon_window_days": 14, "blend_weight_mode": "tri"},
}

# ------------------------------------------------------------------------------------ policies
#: Spellings of an anchor policy the reference accepts (case-insensitive, ``-`` or ``_``).
_POLICY_ALIASES = {
    "det_near": "DET_near",
    "det-near": "DET_near",
    "agg_far": "AGG_far",
    "agg-far": "AGG_far",
    "blend": "blend",
}
#: The algorithm each canonical policy selects (capacity leveling, anchor weights).
POLICY_KINDS = {"DET_near": "det_near", "AGG_far": "agg_far", "blend": "blend"}


def normalise_anchor_policy(value):
    """The canonical policy name of an alias; ``None``/``""`` -> ``None``; anything else as given
    (the parameter model refuses it with its rule)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value
    return _POLICY_ALIASES.get(value.strip().lower(), value)


def policy_kind(policy) -> str | None:
    """``det_near``, ``agg_far`` or ``blend`` for a policy in any accepted spelling, else ``None``."""
    return POLICY_KINDS.get(normalise_anchor_policy(policy))


# ------------------------------------------------------------------------------------ cutover
_CUTOVER_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CUTOVER_MONTH_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Cutover:
    """A parsed cutover: a day ``YYYY-MM-DD`` or a whole month ``YYYY-MM``."""

    month: str  # YYYY-MM, the boundary month
    day: date | None = None  # None for a month cutover

    @property
    def week_code(self) -> str | None:
        """ISO week code ``YYYY-Www`` of a day cutover."""
        if self.day is None:
            return None
        y, w, _ = self.day.isocalendar()
        return f"{y:04d}-W{w:02d}"

    @property
    def day_fraction(self) -> float | None:
        """Share of the boundary month before the cutover day (day 1 -> 0.0)."""
        if self.day is None:
            return None
        d = self.day
        nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return (d.day - 1) / (nxt - date(d.year, d.month, 1)).days


def parse_cutover(value) -> Cutover | None:
    """The one cutover parser: ``YYYY-MM-DD`` (a real date) or ``YYYY-MM`` (month 01-12), surrounding
    blanks ignored; anything else (and ``None``) -> ``None``."""
    if value is None:
        return None
    text = str(value).strip()
    if _CUTOVER_DAY_RE.fullmatch(text):
        try:
            return Cutover(text[:7], date.fromisoformat(text))
        except ValueError:
            return None
    if _CUTOVER_MONTH_RE.fullmatch(text):
        return Cutover(text)
    return None


# ------------------------------------------------------------------------------------ frames
#: Stage 1 (aggregate plan) rows.
AGGREGATE_COLUMNS = ["family", "period", "demand", "supply", "backlog", "capacity_total"]
#: Stage 2 (detail plan) rows; stage 6 (anchor) keeps the same layout.
DETAIL_COLUMNS = ["family", "period", "sku", "week", "demand", "supply", "supply_plan", "backlog"]
#: Stage 3 (MRP) rows.
MRP_COLUMNS = [
    "item", "sku", "week", "gross_req", "scheduled_receipts", "on_hand_start", "net_req",
    "planned_order_receipt", "planned_order_release", "lt_weeks", "lot", "moq", "on_hand_end",
]
#: Columns stage 4 (capacity) adds to the MRP rows.
ADJ_COLUMNS = ["planned_order_release_adj", "planned_order_receipt_adj"]
#: Stage 4 weekly summary, and the boundary annotation it gets with a cutover.
WEEKLY_COLUMNS = [
    "week", "capacity", "original_load", "carried_slack_in", "spill_in", "adjusted_load",
    "spill_out", "slack_carry_out",
]
BOUNDARY_COLUMNS = ["boundary_period", "boundary_index", "boundary_size", "in_window_pre", "in_window_post", "zone"]
#: The KPI frame the report stage computes (``plan_kpis``).
PLAN_KPI_COLUMNS = ["metric", "bucket_type", "bucket_key", "value", "unit"]
#: The stored KPI rows: the computed KPIs under a ``category`` (``plan``, ``legacy``, ...).
STORED_KPI_COLUMNS = ["category", *PLAN_KPI_COLUMNS]
# ------------------------------------------------------------------------------------ plan scorecard
@dataclass(frozen=True)
class ScorecardKpi:
    """One of the seven plan KPIs (``docs/kpis.md``): stored name, unit, label and meaning."""

    name: str
    unit: str
    label: str
    meaning: str


#: The plan level (``plan_kpis.level``) and category the scorecard KPIs are stored under.
SCORECARD_LEVEL = "scorecard"
SCORECARD_CATEGORY = "scorecard"
#: The seven KPIs computed from the final plan, in the order every reader shows them.
SCORECARD_KPIS = (
    ScorecardKpi("fill_rate", "ratio", "Fill rate", "planned supply / demand (1 where demand is 0, in [0, 1])"),
    ScorecardKpi("service_level", "ratio", "Service level",
                 "share of SKU x week buckets with demand that supply covers in full"),
    ScorecardKpi("backlog_days", "days", "Backlog days", "closing backlog / average daily demand"),
    ScorecardKpi("inventory_turns", "turns/year", "Inventory turns",
                 "annualized finished-goods gross requirement / average projected on hand"),
    ScorecardKpi("capacity_util", "ratio", "Capacity utilization", "leveled load / capacity"),
    ScorecardKpi("cost_variance", "ratio", "Cost variance",
                 "cost of the leveled receipts at their landing period's unit cost / cost at the periods "
                 "originally required - 1"),
    ScorecardKpi("on_time_rate", "ratio", "On-time rate",
                 "share of finished-goods planned receipt quantity landing no later than its original week"),
)
SCORECARD_KPI_NAMES = tuple(k.name for k in SCORECARD_KPIS)
#: The buckets every scorecard KPI is stored in (``plan_kpis.bucket_type``); ``total`` has bucket key
#: ``total``, the others the month (period) key, the week key, the family or the SKU.
SCORECARD_BUCKETS = ("total", "month", "week", "family", "sku")

#: The key columns of a detail row and of an MRP row.
DETAIL_KEY_COLUMNS = DETAIL_COLUMNS[:4]
MRP_KEY_COLUMNS = MRP_COLUMNS[:3]

# ------------------------------------------------------------------------------------ column meanings
#: What each plan frame column means, with its unit: one home for the column descriptions the Dagster
#: UI shows (``dagster/column_schema`` of every plan table) and any other reader of the frames.
#: "units" are planned quantity units; "ratio" is a fraction (0.925 = 92.5 %).
COLUMN_DESCRIPTIONS: dict[str, str] = {
    # keys
    "family": "Product family (demand and the aggregate plan are per family)",
    "period": "Planning period (month, YYYY-MM)",
    "sku": "Stock keeping unit (a finished good of the family)",
    "item": "MRP item: a finished good or a BOM component",
    "week": "ISO week (YYYY-Www); a week shared by two months keeps one row per month fragment",
    # aggregate and detail plans
    "demand": "Demand (units)",
    "supply": "Planned supply (units)",
    "supply_plan": "Planned supply as the PSI views read it (equal to supply; units)",
    "backlog": "Unmet demand of the bucket: demand - supply (units)",
    "capacity_total": "Pooled capacity of the period over every workcenter (units)",
    # MRP
    "gross_req": "Gross requirement: detail demand of a finished good, exploded need of a component (units)",
    "scheduled_receipts": "Open purchase/production orders due that week (units)",
    "on_hand_start": "Projected on hand at the start of the week (units)",
    "net_req": "Net requirement after on hand and scheduled receipts (units)",
    "planned_order_receipt": "Planned order receipt, sized to lot and MOQ (units)",
    "planned_order_release": "Planned order release: the receipt offset by the lead time (units)",
    "lt_weeks": "Lead time (weeks)",
    "lot": "Lot size multiple (units)",
    "moq": "Minimum order quantity (units)",
    "on_hand_end": "Projected on hand at the end of the week (units)",
    "planned_order_release_adj": "Release after capacity leveling (finished goods scaled by the week's factor; units)",
    "planned_order_receipt_adj": "Receipt of the leveled release, offset by the lead time (units)",
    # weekly capacity summary
    "capacity": "Pooled capacity of the week: the period capacity split over its weeks (units)",
    "original_load": "Finished-good release load before leveling (units)",
    "carried_slack_in": "Unused capacity carried in from earlier weeks, usable this week (units)",
    "spill_in": "Load pushed in from earlier weeks that exceeded their capacity (units)",
    "adjusted_load": "Load after leveling (rounded like the plan; units)",
    "spill_out": "Load pushed out to the next week (after the last week: left unplaced; units)",
    "slack_carry_out": "Unused capacity carried on to later weeks (units)",
    "boundary_period": "The week/row belongs to the cutover (boundary) month",
    "boundary_index": "Position of the week inside the boundary month (1 = first)",
    "boundary_size": "Number of weeks of the boundary month",
    "in_window_pre": "Inside the reconciliation window before the cutover",
    "in_window_post": "Inside the reconciliation window after the cutover",
    "zone": "Cutover zone of the week: pre, at or post",
    # KPIs
    "category": "KPI category (scorecard, capacity, service, plan, legacy)",
    "metric": "KPI name (fill_rate, backlog_days, backlog_total, utilization, ...)",
    "bucket_type": "KPI bucket: total, month, week, family or sku",
    "bucket_key": "The bucket: 'total', a month, a week, a family or a SKU",
    "value": "KPI value, in the row's unit",
    "unit": "Unit of the value: units, days, turns/year or ratio (0.925 = 92.5 %)",
    # level reconciliation (plus the per-metric columns below)
    "ok": "Every metric of the family x period is within tolerance",
    # anchor carryover
    "from_period": "Month the residual is taken from",
    "to_period": "Month the residual is carried into",
}
for _metric in ("demand", "supply", "backlog"):
    COLUMN_DESCRIPTIONS.update({
        f"agg_{_metric}": f"Aggregate plan {_metric} of the family x period (units)",
        f"det_{_metric}": f"Detail plan {_metric} rolled up to the family x period (units)",
        f"delta_{_metric}": f"{_metric.capitalize()} difference (units): detail minus aggregate in the level "
                            "reconciliation; the residual moved between months in the anchor carryover",
        f"rel_{_metric}": f"Detail minus aggregate {_metric}, relative to the aggregate (ratio)",
        f"ok_{_metric}": f"The {_metric} delta is within tolerance (tol_abs / tol_rel)",
    })
del _metric
