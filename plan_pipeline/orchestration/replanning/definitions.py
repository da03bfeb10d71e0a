"""The replanning domain's definitions."""
import dagster as dg

from plan_pipeline.orchestration.replanning.stale_drafts import (
    plan_version_scan_job,
    plan_version_scan_schedule,
    replan_stale_drafts,
)

defs = dg.Definitions(jobs=[plan_version_scan_job], schedules=[plan_version_scan_schedule, replan_stale_drafts])
