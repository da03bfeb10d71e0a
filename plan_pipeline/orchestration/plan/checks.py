"""Asset checks: the planning conservation laws (ERROR severity) and the business checks against
the plan targets (WARN severity, see below).

Checks are declared on the stage assets (``check_specs``) and evaluated inside the
stage's step on the frame that was just stored: the IO manager's round trip is exact,
so this is what readers see, and it costs no extra step or pool slot. Blocking checks
stop downstream stages when a law is broken.
"""
import dagster as dg
import numpy as np
import pandas as pd

from plan_pipeline.orchestration.plan.partitions import plan_version_partitions
from plan_pipeline.orchestration.plan.planner_metadata import (
    SUMMARY_DESCRIPTIONS,
    column_schema,
    percent,
    percent_text,
    period_supply_summary,
    table,
    units,
)
from plan_pipeline.planning.keys import isin_keys
from plan_pipeline.planning.report import plan_kpis
from plan_pipeline.planning.rounding import round6
from plan_pipeline.planning.vocabulary import COLUMN_DESCRIPTIONS


def spec(name: str, asset: str, description: str, blocking: bool = True) -> dg.AssetCheckSpec:
    """A check of one stage asset, partitioned like it: results belong to a plan version."""
    return dg.AssetCheckSpec(name=name, asset=asset, blocking=blocking, description=description,
                             partitions_def=plan_version_partitions)


def check_result(spec_: dg.AssetCheckSpec, violations: pd.DataFrame, **metadata) -> dg.AssetCheckResult:
    passed = violations.empty
    meta = {"violations": dg.MetadataValue.int(len(violations)), **metadata}
    if not passed:
        meta["first_violations"] = dg.MetadataValue.md(
            "```\n" + violations.head(20).to_string(index=False) + "\n```"
        )
    return dg.AssetCheckResult(
        check_name=spec_.name,
        asset_key=spec_.asset_key,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=spec_.description if passed else f"{len(violations)} violation(s): {spec_.description}",
        metadata=meta,
    )


# ---------------------------------------------------------------------------------- business checks
# WARN severity, never blocking: they judge the plan against the targets of the ``plan_targets``
# resource (:class:`~plan_pipeline.orchestration.plan.targets.PlanTargets`); passed=False (a warning
# in the UI) when the condition holds. They never change a number.
def warn_spec(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    return spec(name, asset, description, blocking=False)


def warn_result(spec_: dg.AssetCheckSpec, holds: bool, finding: str, metadata: dict) -> dg.AssetCheckResult:
    """``holds``: the warning's condition holds (the check fails with severity WARN); ``finding``: what
    was found, in words (the result's description)."""
    return dg.AssetCheckResult(
        check_name=spec_.name, asset_key=spec_.asset_key, passed=not holds,
        severity=dg.AssetCheckSeverity.WARN, description=finding, metadata=metadata,
    )


def fill_rate_result(spec_: dg.AssetCheckSpec, aggregate: pd.DataFrame, target: float) -> dg.AssetCheckResult:
    """The plan's fill rate (total supply / total demand, the ``fill_rate`` KPI) against ``target``;
    the months below the target are listed."""
    kpis = plan_kpis(aggregate)
    total = kpis[kpis["bucket_type"] == "total"].set_index("metric")["value"]
    rate = float(total.get("fill_rate", 1.0))
    holds = rate < target
    periods = period_supply_summary(aggregate)
    below = periods[periods["fill_rate_percent"] < round(100.0 * target, 2)]
    finding = (f"plan fill rate {percent_text(rate)} is below the target {percent_text(target)}"
               if holds else f"plan fill rate {percent_text(rate)} meets the target {percent_text(target)}")
    if len(below):
        finding += f"; {len(below)} period(s) below target: {', '.join(below['period'])}"
    return warn_result(spec_, holds, finding, {
        **percent("fill_rate", rate),
        **percent("target", target),
        **units("demand_total", float(total.get("demand_total", 0.0))),
        **units("supply_total", float(total.get("supply_total", 0.0))),
        **units("backlog_total", float(total.get("backlog_total", 0.0))),
        "periods_below_target": dg.MetadataValue.int(len(below)),
        "periods_below_target_table": table(below, column_schema(below, SUMMARY_DESCRIPTIONS)),
    })


def longest_growth(values: np.ndarray) -> tuple[int, int]:
    """(length, end index) of the longest run of consecutive increases in ``values``
    (length 0, end 0 when nothing increases)."""
    rising = np.diff(values) > 1e-9
    best, best_end, run = 0, 0, 0
    for i, up in enumerate(rising):  # one step per period: a horizon has at most a few hundred
        run = run + 1 if up else 0
        if run > best:
            best, best_end = run, i + 1
    return best, best_end


def backlog_growth_result(spec_: dg.AssetCheckSpec, aggregate: pd.DataFrame, periods: int) -> dg.AssetCheckResult:
    """Warns when the plan's total backlog (all families) rises in ``periods`` consecutive periods."""
    per_period = period_supply_summary(aggregate)
    backlog = per_period["backlog_units"].to_numpy(float)
    length, end = longest_growth(backlog)
    start = end - length
    holds = length >= periods
    span = f"{per_period['period'].iloc[start]} -> {per_period['period'].iloc[end]}" if length else ""
    if length:
        finding = (f"backlog rises in {length} consecutive period(s), {span}: {backlog[start]:g} -> "
                   f"{backlog[end]:g} units (warns from {periods})")
    else:
        finding = f"backlog never rises from one period to the next (warns from {periods} consecutive rises)"
    return warn_result(spec_, holds, finding, {
        "longest_growth_periods": dg.MetadataValue.int(length),
        "growth_span": dg.MetadataValue.text(span or "none"),
        **units("backlog_growth", float(backlog[end] - backlog[start]) if length else 0.0),
        **units("backlog_first_period", float(backlog[0]) if len(backlog) else 0.0),
        **units("backlog_last_period", float(backlog[-1]) if len(backlog) else 0.0),
        "threshold_periods": dg.MetadataValue.int(periods),
        "backlog_by_period": table(per_period, column_schema(per_period, SUMMARY_DESCRIPTIONS)),
    })


OVER_UTILIZATION_DESCRIPTIONS = {
    **COLUMN_DESCRIPTIONS,
    "capacity_units": "The week's own capacity (units)",
    "adjusted_load_units": "Load after leveling (units)",
    "utilization_percent": "Adjusted load / the week's capacity (percent)",
    "carried_slack_in_units": "Unused capacity of earlier weeks available this week (units)",
    "spill_in_units": "Load pushed in from earlier weeks (units)",
    "over_capacity_units": "Adjusted load above the week's own capacity (units)",
    "covered_by_slack_units": "Part of the excess placed on slack carried from earlier weeks (units)",
    "covered_by_rounding_units": "Part of the excess from rounding the adjusted releases (units)",
    "fg_items_released": "Finished goods released that week (each rounds by at most half a step)",
    "reason": "Why the week may exceed its own capacity",
}


def utilization_result(spec_: dg.AssetCheckSpec, weekly: pd.DataFrame, rows: pd.DataFrame, fg_items,
                       max_utilization: float, unplaced_load: float) -> dg.AssetCheckResult:
    """Weeks whose utilization after leveling (adjusted load / the week's own capacity, as the report
    computes it) is above ``max_utilization``, each with the reason it is allowed: forward leveling
    carries unused capacity of earlier weeks without bound (spec §9.2), and the adjusted releases are
    rounded per item. The conservation checks judge load against capacity + carried slack (+ half a
    rounding step per item), so they pass on such weeks; this check says so in numbers."""
    cap = weekly["capacity"].to_numpy(float)
    adjusted = weekly["adjusted_load"].to_numpy(float)
    slack = weekly["carried_slack_in"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap > 0, round6(adjusted / np.where(cap > 0, cap, 1.0)), 0.0)
    over = util > max_utilization + 1e-9
    excess = np.maximum(adjusted - cap, 0.0)
    by_slack = np.minimum(excess, np.maximum(slack, 0.0))
    by_rounding = np.maximum(excess - by_slack, 0.0)
    released = isin_keys(rows["item"], set(fg_items)) & (rows["planned_order_release_adj"].to_numpy() != 0)
    n_items = pd.Series(rows["week"].to_numpy()[released]).value_counts()
    weeks = weekly["week"].astype(str).to_numpy()
    reason = np.select(
        [excess <= 1e-9, by_rounding <= 1e-6, by_slack <= 1e-6],
        ["within the week's capacity (above the target only)",
         "slack carried from earlier weeks",
         "rounding of the adjusted releases to the plan's rounding step"],
        default="slack carried from earlier weeks + rounding of the adjusted releases",
    )
    table_frame = pd.DataFrame({
        "week": weeks[over],
        "capacity_units": np.round(cap[over], 6),
        "adjusted_load_units": np.round(adjusted[over], 6),
        "utilization_percent": np.round(100.0 * util[over], 2),
        "carried_slack_in_units": np.round(slack[over], 6),
        "spill_in_units": np.round(weekly["spill_in"].to_numpy(float)[over], 6),
        "over_capacity_units": np.round(excess[over], 6),
        "covered_by_slack_units": np.round(by_slack[over], 6),
        "covered_by_rounding_units": np.round(by_rounding[over], 6),
        "fg_items_released": [int(n_items.get(w, 0)) for w in weeks[over]],
        "reason": reason[over],
    })
    count = int(over.sum())
    slack_weeks = int((over & (by_slack > 1e-6)).sum())
    rounding_weeks = int((over & (by_rounding > 1e-6)).sum())
    peak = float(util.max()) if len(util) else 0.0
    peak_week = str(weeks[int(np.argmax(util))]) if len(util) else ""
    if count:
        finding = (
            f"{count} week(s) over {percent_text(max_utilization)} utilization after leveling, up to "
            f"{percent_text(peak)} ({peak_week}). Why the capacity checks still pass: leveling carries unused "
            f"capacity of earlier weeks forward without bound, so a week may load its own capacity plus that "
            f"carried slack ({slack_weeks} week(s)), and rounding the leveled releases to the plan's rounding "
            f"step adds up to half a step per finished good released ({rounding_weeks} week(s)). "
            f"Load left unplaced after the horizon: {unplaced_load:g} units.")
    else:
        finding = (f"no week over {percent_text(max_utilization)} utilization after leveling "
                   f"(peak {percent_text(peak)}{f' in {peak_week}' if peak_week else ''})")
    return warn_result(spec_, count > 0, finding, {
        "weeks_over_target": dg.MetadataValue.int(count),
        "weeks_over_capacity_by_slack": dg.MetadataValue.int(slack_weeks),
        "weeks_over_capacity_by_rounding": dg.MetadataValue.int(rounding_weeks),
        **percent("max_utilization", peak),
        "max_utilization_week": dg.MetadataValue.text(peak_week or "none"),
        **percent("threshold_utilization", max_utilization),
        **units("unplaced_load", unplaced_load),
        "weeks_over_target_table": table(table_frame, column_schema(table_frame, OVER_UTILIZATION_DESCRIPTIONS)),
    })
