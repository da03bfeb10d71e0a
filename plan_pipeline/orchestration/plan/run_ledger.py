"""The run ledger: Dagster runs of plan versions as rows of the store table ``plan_jobs``
(``job_id`` = Dagster run id). "Run ledger" is the concept; ``plan_jobs`` is only the table's
name (not to be confused with the Dagster job ``plan_job``).

The Dagster instance is the source of truth for run status; :func:`sync_run_ledger`
copies what it knows about the runs of plan versions into the store. It is called
by the IO manager (the running run, as ``started``), by the CLI after in-process
runs, and by the ``run_ledger_sync`` job that the ``run_ledger_sensor``
requests when runs finish (the sensor itself never opens the store).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from plan_pipeline.store import PlanStore

VERSION_TAG = "plan/version"
TRIGGER_TAG = "plan/trigger"
PARTITION_TAG = "dagster/partition"
LEDGER_SYNC_JOB_NAME = "run_ledger_sync"
# Set on runs whose launcher records the final status itself (in-process CLI runs).
LEDGER_TAG = "plan/ledger"
LEDGER_INLINE = "inline"

_STATUS = {
    dg.DagsterRunStatus.QUEUED: "queued",
    dg.DagsterRunStatus.NOT_STARTED: "queued",
    dg.DagsterRunStatus.STARTING: "queued",
    dg.DagsterRunStatus.STARTED: "started",
    dg.DagsterRunStatus.SUCCESS: "success",
    dg.DagsterRunStatus.FAILURE: "failure",
    dg.DagsterRunStatus.CANCELING: "canceled",
    dg.DagsterRunStatus.CANCELED: "canceled",
}
TERMINAL = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def trigger_from_tags(tags: dict[str, str]) -> str:
    """``plan/trigger`` if the launcher set it, else what Dagster's system tags say."""
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if tags.get("dagster/backfill"):
        return "backfill"
    if tags.get("dagster/schedule_name"):
        return "schedule"
    if tags.get("dagster/sensor_name"):
        return "sensor"
    return "manual"


def version_from_tags(tags: dict[str, str]) -> str | None:
    return tags.get(VERSION_TAG) or tags.get(PARTITION_TAG)


def _ts(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).replace(tzinfo=None)


def error_text(error) -> str:
    """The root cause of a serialised Dagster error, as ``ClassName: message``."""
    root = error
    while getattr(root, "cause", None) is not None:
        root = root.cause
    message = (root.message or "").strip()
    if root.cls_name and not message.startswith(root.cls_name):
        return f"{root.cls_name}: {message}"
    return message


def _run_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    messages = []
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        text = None
        data = getattr(event, "event_specific_data", None) if event else None
        error = getattr(data, "error", None)
        if error is not None:
            text = error_text(error)
        elif event is not None and event.message:
            text = event.message
        if text:
            step = f"[{event.step_key}] " if event is not None and event.step_key else ""
            messages.append(step + text)
    return "\n".join(messages) if messages else None


def ledger_row(instance: dg.DagsterInstance, record: Any) -> dict[str, Any] | None:
    run = record.dagster_run
    tags = dict(run.tags)
    version = version_from_tags(tags)
    if not version or run.job_name == LEDGER_SYNC_JOB_NAME:
        return None
    status = _STATUS.get(run.status, "queued")
    started = _ts(record.start_time)
    finished = _ts(record.end_time)
    duration = int((record.end_time - record.start_time) * 1000) if record.start_time and record.end_time else None
    return {
        "job_id": run.run_id,
        "version_id": version,
        "job_name": run.job_name,
        "status": status,
        "trigger": trigger_from_tags(tags),
        "submitted_at": _ts(record.create_timestamp.timestamp()),
        "started_at": started,
        "finished_at": finished,
        "duration_ms": duration,
        "error": _run_error(instance, run.run_id) if status in ("failure", "canceled") else None,
        "tags": {k: v for k, v in tags.items() if not k.startswith(".dagster")},
    }


def collect_ledger_rows(
    instance: dg.DagsterInstance, run_ids: Iterable[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    filters = dg.RunsFilter(run_ids=list(run_ids)) if run_ids is not None else None
    records = instance.get_run_records(filters=filters, limit=limit)
    rows = []
    for record in records:
        row = ledger_row(instance, record)
        if row is not None:
            rows.append(row)
    return rows


def sync_run_ledger(
    instance: dg.DagsterInstance, store: PlanStore, run_ids: Iterable[str] | None = None, limit: int = 500
) -> int:
    """Upsert the run ledger (``plan_jobs``) from the instance's run records; returns rows written."""
    return store.upsert_jobs(collect_ledger_rows(instance, run_ids, limit))
