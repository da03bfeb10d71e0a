"""Sensors. They read the Dagster instance only and never open the plan store."""

import json

import dagster as dg

from plan_pipeline.orchestration.plan.jobs import run_ledger_sync_job, sync_run_ledger_op
from plan_pipeline.orchestration.plan.run_ledger import (
    LEDGER_INLINE,
    LEDGER_SYNC_JOB_NAME,
    LEDGER_TAG,
    TERMINAL,
    version_from_tags,
)
from plan_pipeline.orchestration.plan.run_recovery import (
    close_orphaned_runs,
    find_orphaned_runs,
    free_slots_of_finished_runs,
)


@dg.sensor(
    job=run_ledger_sync_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When plan-version runs finish (success, failure, canceled), request one run_ledger_sync run "
    "that records them in the run ledger (table plan_jobs).",
)
def run_ledger_sensor(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {"after": 0.0}
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=list(TERMINAL), updated_after=None), limit=200
    )
    newest = cursor["after"]
    finished = []
    for record in records:
        stamp = record.update_timestamp.timestamp()
        if stamp <= cursor["after"]:
            continue
        run = record.dagster_run
        newest = max(newest, stamp)
        tags = dict(run.tags)
        if run.job_name == LEDGER_SYNC_JOB_NAME or not version_from_tags(tags):
            continue
        # the CLI records its own runs, unless it died: a run that ended without success may
        # have been closed by crash recovery, with no CLI left to record it
        if tags.get(LEDGER_TAG) == LEDGER_INLINE and run.status == dg.DagsterRunStatus.SUCCESS:
            continue
        finished.append(run.run_id)
    context.update_cursor(json.dumps({"after": newest}))
    if not finished:
        return dg.SkipReason("no finished plan-version runs to record since the last evaluation")
    return dg.RunRequest(
        run_key=f"ledger-{newest}",
        run_config={"ops": {sync_run_ledger_op.name: {"config": {"run_ids": sorted(finished)}}}},
        tags={"plan/trigger": "sensor"},
    )


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Crash recovery: a run whose process is gone (killed, crashed, OOM) is marked failed with the "
    "reason and its 'duckdb' pool claims are freed, so it never blocks the runs after it. Reads and updates "
    "the Dagster instance only; the run ledger (plan_jobs) follows through run_ledger_sensor.",
)
def orphaned_runs_sensor(context: dg.SensorEvaluationContext):
    recovered = close_orphaned_runs(context.instance, find_orphaned_runs(context.instance))
    freed = free_slots_of_finished_runs(context.instance)
    for item in recovered:
        context.log.warning(item.line())
    if not recovered and not freed:
        return dg.SkipReason("no run with a dead process, no pool claim of a finished run")
    return dg.SkipReason(
        f"recovered {len(recovered)} run(s) whose process is gone"
        + (f": {', '.join(r.run_id for r in recovered)}" if recovered else "")
        + (f"; freed pool claims of finished run(s) {', '.join(freed)}" if freed else "")
    )
