"""The store maintenance domain's definitions."""
import dagster as dg

from plan_pipeline.orchestration.maintenance.jobs import MAINTENANCE_JOBS, MAINTENANCE_SCHEDULES

defs = dg.Definitions(jobs=MAINTENANCE_JOBS, schedules=MAINTENANCE_SCHEDULES)
