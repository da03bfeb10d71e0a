"""The plan's stage assets in one list, and the plan levels they write.

A published plan holds exactly these levels (a stage that does not apply to a version is
published as "not applicable"), so this list is what ``published_plan`` requires a run to have
staged before it switches the version over.
"""
from plan_pipeline.orchestration.assets.aggregate_plan import aggregate_plan
from plan_pipeline.orchestration.assets.anchor_branch import ANCHOR_ASSETS
from plan_pipeline.orchestration.assets.capacity_plan import capacity_plan
from plan_pipeline.orchestration.assets.detail_plan import detail_plan
from plan_pipeline.orchestration.assets.level_reconciliation import level_reconciliation
from plan_pipeline.orchestration.assets.mrp_plan import mrp_plan
from plan_pipeline.orchestration.assets.plan_report import plan_report
from plan_pipeline.orchestration.io_managers import PLAN_LEVEL

STAGE_ASSETS = [
    aggregate_plan,
    detail_plan,
    mrp_plan,
    capacity_plan,
    level_reconciliation,
    plan_report,
    *ANCHOR_ASSETS,
]


def stage_level_keys() -> dict[str, object]:
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
