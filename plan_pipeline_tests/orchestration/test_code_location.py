"""The code location ``dagster dev`` loads: the root merges every domain's definitions."""
from __future__ import annotations

import importlib

import dagster as dg


def test_the_root_module_holds_exactly_one_definitions_object():
    """Dagster's code server refuses a module with more than one ``Definitions`` at module scope."""
    module = importlib.import_module("plan_pipeline.definitions")
    found = [name for name, value in vars(module).items() if isinstance(value, dg.Definitions)]
    assert found == ["defs"]


def test_every_domain_is_merged_into_the_code_location():
    from plan_pipeline.definitions import DOMAIN_DEFINITIONS, defs

    dg.Definitions.validate_loadable(defs)
    jobs = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    domain_jobs = {job.name for domain in DOMAIN_DEFINITIONS for job in (domain.jobs or [])}
    assert jobs == domain_jobs == {"plan_job", "run_ledger_repair", "legacy_import", "plan_store_trim",
                                   "plan_store_backup", "dwh_export", "inbox_import", "plan_version_scan",
                                   "create_plan_version", "duplicate_plan_version"}
    assert {s.name for s in defs.schedules} == {"legacy_import_hourly", "plan_store_backup_daily",
                                               "plan_store_trim_daily", "dwh_export_weekly",
                                               "plan_version_scan_daily", "replan_stale_drafts"}
    assert {s.name for s in defs.sensors} == {"run_ledger_repair_sensor", "orphaned_runs_sensor", "inbox_sensor",
                                             "plan_created_versions"}


def _longest_chain(keys: set, parents: dict) -> int:
    """Assets on the longest dependency path that stays inside ``keys``."""
    depth: dict = {}

    def walk(key) -> int:
        if key not in depth:
            depth[key] = 1 + max((walk(p) for p in parents[key] if p in keys), default=0)
        return depth[key]

    return max(walk(key) for key in keys)


def test_plan_assets_split_into_groups_that_plan_job_selects_whole():
    """Each plan asset group draws its lineage with full-size nodes at 1600x1000 (docs/architecture.md,
    "The Dagster layer by domain"): measured with Dagster 1.13's UI, a group whose inner chain is at most 4 assets long
    (plus the linked assets of the other groups on either side) fits the UI's zoom-to-fit-width at
    scale >= 0.6; the single 16-asset group (8 ranks) was drawn at 0.43 with cut labels. plan_job
    still materializes every plan asset."""
    from plan_pipeline.definitions import PLAN_ASSETS, defs
    from plan_pipeline.orchestration.plan.partitions import PLAN_GROUPS

    graph = defs.resolve_asset_graph()
    plan_keys = {key for assets_def in PLAN_ASSETS for key in assets_def.keys}
    groups: dict[str, set] = {}
    for key in plan_keys:
        groups.setdefault(graph.get(key).group_name, set()).add(key)
    assert set(groups) == set(PLAN_GROUPS) == {"plan_basis", "plan", "anchored_plan", "plan_review"}
    assert {k.to_user_string() for k in groups["plan_basis"]} == {"planning_inputs", "aggregate_plan", "detail_plan"}
    assert "published_plan" in {k.to_user_string() for k in groups["plan"]}
    assert {k.to_user_string() for k in groups["plan_review"]} == {"baseline_comparison", "plan_review_report"}
    assert all(k.to_user_string().startswith(("anchor", "adjusted_")) for k in groups["anchored_plan"])

    parents = {key: set(graph.get(key).parent_keys) for key in plan_keys}
    chains = {group: _longest_chain(keys, parents) for group, keys in groups.items()}
    # plan: mrp_plan -> capacity_plan -> plan_scorecard -> published_plan; the review after the publication
    # (baseline_comparison -> plan_review_report) is its own group, so no group is deeper than the measured 4
    assert chains == {"plan_basis": 3, "plan": 4, "anchored_plan": 4, "plan_review": 2}
    assert _longest_chain(plan_keys, parents) == 10  # why one group did not fit

    assert set(defs.resolve_job_def("plan_job").asset_layer.selected_asset_keys) == plan_keys
