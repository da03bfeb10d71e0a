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
    assert jobs == domain_jobs == {"plan_job", "run_ledger_sync", "legacy_import", "plan_store_trim",
                                   "plan_store_backup", "dwh_export", "inbox_import", "plan_version_scan",
                                   "create_plan_version", "duplicate_plan_version"}
    assert {s.name for s in defs.schedules} == {"legacy_import_hourly", "plan_store_backup_daily",
                                               "plan_store_trim_daily", "dwh_export_weekly",
                                               "plan_version_scan_daily", "replan_stale_drafts"}
    assert {s.name for s in defs.sensors} == {"run_ledger_sensor", "orphaned_runs_sensor", "inbox_sensor",
                                             "plan_created_versions"}
