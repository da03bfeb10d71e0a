"""What the Dagster instance says about runs (read-only helpers for ops, sensors and schedules).

Nothing here opens the plan store.
"""
from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from plan_pipeline.orchestration.plan.run_ledger import error_text, version_from_tags

IN_PROGRESS = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def versions_in_progress(instance: dg.DagsterInstance, exclude_run_ids: Iterable[str] = ()) -> dict[str, str]:
    """``{plan version: run id}`` for every queued or running run tagged with a plan version.

    A run belongs to a version through its ``plan/version`` tag or, for runs launched from the
    UI or a backfill, its ``dagster/partition`` tag.
    """
    skip = set(exclude_run_ids)
    found: dict[str, str] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        run = record.dagster_run
        if run.run_id in skip:
            continue
        version = version_from_tags(dict(run.tags))
        if version:
            found.setdefault(version, run.run_id)
    return found


def run_failure_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """The step/run failure messages of a finished run, one per line (empty if none)."""
    messages = []
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        text = error_text(error) if error is not None else (event.message or "")
        if text:
            messages.append((f"[{event.step_key}] " if event.step_key else "") + text)
    return "\n".join(messages)
