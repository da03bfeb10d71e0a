"""``PlanTargets``: the business thresholds of the WARN-severity plan checks, in one place.

Bound as the ``plan_targets`` resource (``build_resources``), so a user changes a threshold in the
launchpad (``resources: plan_targets: config: ...``) for one run, or in the code location's
resources for every run. The checks never block a run and never change a number: they only say
whether the plan meets the targets (passed = the plan is fine; a WARN when it is not).
"""
from __future__ import annotations

import dagster as dg
from pydantic import Field

PLAN_TARGETS_KEY = "plan_targets"


class PlanTargets(dg.ConfigurableResource):
    """Targets a plan is judged against by the WARN checks (``fill_rate_meets_target``,
    ``backlog_not_growing``, ``leveled_utilization_within_capacity``)."""

    fill_rate_target: float = Field(
        default=0.95, ge=0.0, le=1.0,
        description="Plan fill rate target as a fraction (0.95 = 95 %): the fill_rate_meets_target check of "
        "aggregate_plan warns when the plan's fill rate (total supply / total demand) is below it.",
    )
    max_utilization: float = Field(
        default=1.0, gt=0.0,
        description="Highest acceptable weekly utilization after leveling, as a fraction of the week's own "
        "capacity (1.0 = 100 %): the leveled_utilization_within_capacity check of the weekly capacity summaries "
        "warns for every week above it, with the reason (slack carried from earlier weeks, rounding).",
    )
    backlog_growth_periods: int = Field(
        default=3, ge=1,
        description="The backlog_not_growing check of aggregate_plan warns when the plan's total backlog rises "
        "in at least this many consecutive periods (3 monthly periods = a quarter of growing backlog).",
    )
