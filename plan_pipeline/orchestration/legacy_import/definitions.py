"""The legacy import domain's definitions."""
import dagster as dg

from plan_pipeline.orchestration.legacy_import.jobs import LEGACY_IMPORT_JOBS, LEGACY_IMPORT_SCHEDULES

defs = dg.Definitions(jobs=LEGACY_IMPORT_JOBS, schedules=LEGACY_IMPORT_SCHEDULES)
