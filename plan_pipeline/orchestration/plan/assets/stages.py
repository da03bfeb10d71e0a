"""The plan's stage assets in one list (the plain chain is built here, the anchored one in
:mod:`.anchor_branch`, both by :func:`.chain.build_stage_chain`), and the plan levels they write.

A published plan holds exactly these levels (a stage that does not apply to a version is
published as "not applicable"), so this list is what ``published_plan`` requires a run to have
staged before it switches the version over.
"""
import dagster as dg

from plan_pipeline.orchestration.plan.assets.aggregate_plan import aggregate_plan
from plan_pipeline.orchestration.plan.assets.anchor_branch import ANCHOR_ASSETS
from plan_pipeline.orchestration.plan.assets.capacity_plan import CAPACITY_CHECKS
from plan_pipeline.orchestration.plan.assets.chain import Stage, StageChain, build_stage_chain
from plan_pipeline.orchestration.plan.assets.detail_plan import detail_plan
from plan_pipeline.orchestration.plan.assets.level_reconciliation import RECONCILED
from plan_pipeline.orchestration.plan.assets.mrp_plan import MRP_BALANCE
from plan_pipeline.orchestration.plan.assets.plan_report import REPORT_CONSISTENT
from plan_pipeline.orchestration.plan.assets.plan_scorecard import plan_scorecard
from plan_pipeline.orchestration.plan.io_managers import PLAN_LEVEL

PLAIN_CHAIN = StageChain(
    detail="detail_plan",
    reconciliation=Stage(
        "level_reconciliation", "level_reconciliation",
        "Aggregate vs rolled-up detail deltas per family x period, tolerance and boundary-month "
        "violations (plan_series level 'level_reconciliation')."),
    mrp=Stage(
        "mrp_plan", "mrp",
        "Item x week MRP: gross requirement, projected on hand, net requirement, planned order "
        "receipts and releases (plan_series level 'mrp')."),
    capacity=Stage("capacity_plan", "mrp_final", "MRP rows with capacity-adjusted FG releases and receipts "
                                                 "(plan_series level 'mrp_final')."),
    weekly=Stage("capacity_weekly_summary", "weekly_summary", "Per week: capacity, original and leveled "
                 "load, spill in/out, slack carry, cutover zone and window "
                 "(plan_series level 'weekly_summary')."),
    capacity_description="Stage 4: level FG release load on pooled weekly capacity (forward, DET_near, AGG_far, blend).",
    report=Stage(
        "plan_report", "report",
        "KPIs: weekly capacity/utilization/spill and FG service (fill rate) rows, plus plan fill rate, "
        "backlog, demand and supply per month and in total (plan_kpis level 'report')."),
    reconciliation_check=RECONCILED,
    mrp_check=MRP_BALANCE,
    capacity_checks=CAPACITY_CHECKS,
    report_check=REPORT_CONSISTENT,
)
level_reconciliation, mrp_plan, capacity_plan, plan_report = build_stage_chain(PLAIN_CHAIN)

STAGE_ASSETS = [
    aggregate_plan,
    detail_plan,
    mrp_plan,
    capacity_plan,
    level_reconciliation,
    plan_report,
    *ANCHOR_ASSETS,
    plan_scorecard,
]


def stage_level_keys() -> dict[str, dg.AssetKey]:
    """plan level -> the asset key that writes it."""
    keys = {}
    for assets_def in STAGE_ASSETS:
        for spec in assets_def.specs:
            level = (spec.metadata or {}).get(PLAN_LEVEL)
            if level:
                keys[str(level)] = spec.key
    return keys


PLAN_LEVELS = sorted(stage_level_keys())
STAGE_ASSET_KEYS = [key for assets_def in STAGE_ASSETS for key in assets_def.keys]
