"""The versions domain's definitions: create / duplicate a plan version from the UI, then plan it."""
import dagster as dg

from plan_pipeline.orchestration.versions.jobs import create_plan_version_job, duplicate_plan_version_job
from plan_pipeline.orchestration.versions.sensors import plan_created_versions

defs = dg.Definitions(jobs=[create_plan_version_job, duplicate_plan_version_job], sensors=[plan_created_versions])
