"""Sensors. They read the Dagster instance only and never open the plan store."""

import json
from datetime import UTC, datetime

import dagster as dg

from plan_pipeline.orchestration.plan.jobs import repair_run_ledger_op, run_ledger_repair_job
from plan_pipeline.orchestration.plan.run_ledger import (
    LEDGER_REPAIR_JOB_NAME,
    TERMINAL,
    needs_recording,
)
from plan_pipeline.orchestration.plan.run_recovery import (
    close_orphaned_runs,
    find_orphaned_runs,
    free_slots_of_finished_runs,
)

# Runs are read again for this long after the cursor, so a run whose update was committed a
# moment after a later one is not missed; run ids already judged in that window are remembered.
LEDGER_CURSOR_OVERLAP_SECONDS = 60.0
LEDGER_SENSOR_BATCH = 500


def ledger_mismatches(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[str], str]:
    """Finished runs whose ``plan_jobs`` row may not hold their final status, and the next cursor.

    Reads the instance only: each run updated since the cursor is judged by
    :func:`~plan_pipeline.orchestration.plan.run_ledger.needs_recording`. Runs of the repair job
    are never requested again (they record themselves; ``plan-pipeline runs sync`` repairs the
    rest), so a repair can never feed itself.
    """
    state = json.loads(cursor) if cursor else {}
    after = float(state.get("after", 0.0))
    judged = dict(state.get("judged", {}))
    since = datetime.fromtimestamp(max(after - LEDGER_CURSOR_OVERLAP_SECONDS, 0.0), tz=UTC)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=list(TERMINAL), updated_after=since),
        limit=LEDGER_SENSOR_BATCH, order_by="update_timestamp", ascending=True,
    )
    newest = after
    found = []
    for record in records:
        stamp = record.update_timestamp.timestamp()
        run = record.dagster_run
        if judged.get(run.run_id) == stamp:
            continue
        newest = max(newest, stamp)
        judged[run.run_id] = stamp
        if run.job_name != LEDGER_REPAIR_JOB_NAME and needs_recording(instance, record):
            found.append(run.run_id)
    judged = {run_id: stamp for run_id, stamp in judged.items() if stamp > newest - LEDGER_CURSOR_OVERLAP_SECONDS}
    return sorted(found), json.dumps({"after": newest, "judged": judged}, sort_keys=True)


@dg.sensor(
    job=run_ledger_repair_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs record themselves in the run ledger (table plan_jobs). For the few that cannot (canceled "
    "before they started, crashed, failed before any step) this sensor requests one run_ledger_repair run per "
    "batch; it compares each finished run's status with its plan/ledger tag and reads the Dagster instance only.",
)
def run_ledger_repair_sensor(context: dg.SensorEvaluationContext):
    found, cursor = ledger_mismatches(context.instance, context.cursor)
    context.update_cursor(cursor)
    if not found:
        return dg.SkipReason("every finished run is recorded in the run ledger (plan_jobs)")
    return dg.RunRequest(
        run_key=f"ledger-{found[0]}-{len(found)}-{json.loads(cursor)['after']}",
        run_config={"ops": {repair_run_ledger_op.name: {"config": {"run_ids": found}}}},
    )


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Crash recovery: a run whose process is gone (killed, crashed, OOM) is marked failed with the "
    "reason and its 'duckdb' pool claims are freed, so it never blocks the runs after it. Reads and updates "
    "the Dagster instance only; the run ledger (plan_jobs) follows through run_ledger_repair_sensor.",
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
