"""Dagster definitions: partitions, resources, IO managers, assets, checks, jobs, schedules, sensors.

Nothing in this package opens the plan store at import time or during sensor/schedule
evaluation; store access happens inside steps that run in the ``duckdb`` pool.
"""
