"""The inbox domain's definitions."""
import dagster as dg

from plan_pipeline.orchestration.inbox.sensor import inbox_import_job, inbox_sensor

defs = dg.Definitions(jobs=[inbox_import_job], sensors=[inbox_sensor])
