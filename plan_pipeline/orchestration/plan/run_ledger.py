"""The run ledger: every Dagster run of the code location as one row of the store table
``plan_jobs`` (``job_id`` = Dagster run id). "Run ledger" is the concept; ``plan_jobs`` is only
the table's name (not to be confused with the Dagster job ``plan_job``).

The Dagster instance is the source of truth for run status; this module turns what it knows
about a run into the run's row. Who writes the rows:

* the run itself: the run ledger hooks (:mod:`.run_ledger_hooks`, put on every asset and job of
  the code location at its root) record ``started`` after the first step, ``failure`` (with the
  error text) when a step fails and ``success`` when the run's last step is done, each in a short
  store transaction while the hook holds a slot of the ``duckdb`` pool;
* the ``run_ledger_repair_sensor`` (instance only) for what a run cannot record itself (canceled
  before it started, its process died, it failed before any step): it compares each finished
  run's status with the ``plan/ledger`` tag the recorder sets and requests one batched
  ``run_ledger_repair`` run for the mismatches only;
* the CLI: after its in-process runs, in crash recovery, and ``plan-pipeline runs sync``.
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
PARENT_RUN_TAG = "dagster/parent_run_id"
# What the run ledger holds for the run: the status last written to its plan_jobs row. The
# repair sensor compares it with the run's status (Dagster instance only, no store access).
LEDGER_TAG = "plan/ledger"
# Set at launch on runs the CLI executes in its own process (it records them again when they end).
LEDGER_INLINE = "inline"
# No plan store file existed when the run ended: nothing to record into (the CLI's
# ``runs sync`` records the run once a store exists).
LEDGER_NO_STORE = "no-store"
LEDGER_REPAIR_JOB_NAME = "run_ledger_repair"

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


PARENT_RUN_TAG = "dagster/parent_run_id"
REEXECUTION_TRIGGER = "reexecution"


def trigger_from_tags(tags: dict[str, str]) -> str:
    """``plan/trigger`` if the launcher set it, else what Dagster's system tags say; a run with
    none of them was launched by a person in the UI (launchpad, "Materialize"). A re-execution
    (UI "Re-execute", Dagster retries) is ``reexecution``: Dagster copies the parent's tags, so
    the parent's ``plan/trigger`` (e.g. ``cli``) would otherwise claim the new run."""
    if tags.get(PARENT_RUN_TAG):
        return REEXECUTION_TRIGGER
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if tags.get("dagster/backfill"):
        return "backfill"
    if tags.get("dagster/schedule_name"):
        return "schedule"
    if tags.get("dagster/sensor_name"):
        return "sensor"
    return "ui"


def version_from_tags(tags: dict[str, str]) -> str | None:
    return tags.get(VERSION_TAG) or tags.get(PARTITION_TAG) or None


def run_status(run: dg.DagsterRun) -> str:
    """The run ledger status of a Dagster run status."""
    return _STATUS.get(run.status, "queued")


def missing_run_tags(tags: dict[str, str]) -> dict[str, str]:
    """``plan/version`` (runs of a partition) and ``plan/trigger`` where the run lacks them."""
    missing = {}
    version = version_from_tags(tags)
    if version and not tags.get(VERSION_TAG):
        missing[VERSION_TAG] = version
    if not tags.get(TRIGGER_TAG) or tags[TRIGGER_TAG] != trigger_from_tags(tags):
        missing[TRIGGER_TAG] = trigger_from_tags(tags)  # a re-execution's copied trigger is replaced
    return missing


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
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE,
                         dg.DagsterEventType.RUN_CANCELED}
    ).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        text = None
        data = getattr(event, "event_specific_data", None) if event else None
        error = getattr(data, "error", None)
        failure = getattr(data, "user_failure_data", None)
        if failure is not None and failure.description:
            text = failure.description  # dg.Failure: the description is the message meant for people
        elif error is not None:
            text = error_text(error)
        elif event is not None and event.message:
            text = event.message
        if text:
            step = f"[{event.step_key}] " if event is not None and event.step_key else ""
            line = step + text
            if line not in messages:
                messages.append(line)
    return "\n".join(messages) if messages else None


def ledger_row(instance: dg.DagsterInstance, record: Any, *, status: str | None = None) -> dict[str, Any]:
    """The ``plan_jobs`` row of a run. ``status``: what the run itself records while it is still
    running in the instance (``started``, or its final ``success`` / ``failure`` from its last or
    failed step, ended now); default the instance's status."""
    run = record.dagster_run
    tags = dict(run.tags)
    status = status or run_status(run)
    started = record.start_time
    ended = record.end_time
    if ended is None and status in ("success", "failure", "canceled"):
        ended = datetime.now(tz=UTC).timestamp()
    duration = int((ended - started) * 1000) if started and ended else None
    return {
        "job_id": run.run_id,
        "version_id": version_from_tags(tags),
        "job_name": run.job_name,
        "status": status,
        "trigger": trigger_from_tags(tags),
        "submitted_at": _ts(record.create_timestamp.timestamp()),
        "started_at": _ts(started),
        "finished_at": _ts(ended),
        "duration_ms": duration,
        "error": _run_error(instance, run.run_id) if status in ("failure", "canceled") else None,
        "tags": {k: v for k, v in tags.items() if not k.startswith(".dagster") and k != LEDGER_TAG},
    }


def mark_recorded(instance: dg.DagsterInstance, run_ids: Iterable[str], value: str) -> None:
    """Tag runs with what the run ledger now holds for them (``plan/ledger``)."""
    for run_id in run_ids:
        instance.add_run_tags(run_id, {LEDGER_TAG: value})


def record_run(instance: dg.DagsterInstance, store: PlanStore, record: Any, status: str | None = None) -> str:
    """Write one run's row (one short transaction) and tag the run with the status written.
    Without a store file nothing is written (the run is tagged ``no-store``). Returns the tag."""
    if not store.exists():
        mark_recorded(instance, [record.dagster_run.run_id], LEDGER_NO_STORE)
        return LEDGER_NO_STORE
    row = ledger_row(instance, record, status=status)
    store.upsert_jobs([row])
    mark_recorded(instance, [row["job_id"]], row["status"])
    return row["status"]


def collect_ledger_rows(
    instance: dg.DagsterInstance, run_ids: Iterable[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    filters = dg.RunsFilter(run_ids=list(run_ids)) if run_ids is not None else None
    records = instance.get_run_records(filters=filters, limit=limit)
    return [ledger_row(instance, record) for record in records]


def sync_run_ledger(
    instance: dg.DagsterInstance, store: PlanStore, run_ids: Iterable[str] | None = None, limit: int = 500
) -> int:
    """Upsert the run ledger (``plan_jobs``) from the instance's run records (one transaction) and
    tag each run with the status written; returns rows written."""
    rows = collect_ledger_rows(instance, run_ids, limit)
    written = store.upsert_jobs(rows)
    for row in rows:
        mark_recorded(instance, [row["job_id"]], row["status"])
    return written


def needs_recording(instance: dg.DagsterInstance, record: Any) -> bool:
    """Whether a finished run's ``plan_jobs`` row may not hold its final status (instance only).

    The recorder tags the run with the status it wrote; a tag that differs from the run's status
    (canceled, crashed, failed before any step, an unfinished last step) needs recording. A
    re-executed run may carry its parent's tag (the UI copies the parent's tags): there the tag
    counts only if a step of this run ran (the recorder writes from hooks after steps).
    """
    run = record.dagster_run
    if run.status not in TERMINAL:
        return False
    tags = dict(run.tags)
    recorded = tags.get(LEDGER_TAG)
    if recorded == LEDGER_NO_STORE:
        return False
    if recorded != run_status(run):
        return True
    if tags.get(PARENT_RUN_TAG):
        stats = instance.get_run_stats(run.run_id)
        return (stats.steps_succeeded or 0) + (stats.steps_failed or 0) == 0
    return False
