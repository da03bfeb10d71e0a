"""``plan_created_versions``: the plan run follows a version created or duplicated in the UI.

A run-status sensor on the successful runs of ``create_plan_version`` and ``duplicate_plan_version``:
it reads the new version from the finished run's ``plan/version`` tag (the op sets it; the sensor
never opens the plan store) and requests ``plan_job`` for that partition, once per source run.
"""

import dagster as dg

from plan_pipeline.orchestration.plan.assets.planning_inputs import CREATE_VERSION_JOB
from plan_pipeline.orchestration.plan.jobs import plan_job
from plan_pipeline.orchestration.plan.run_ledger import TRIGGER_TAG, VERSION_TAG
from plan_pipeline.orchestration.versions.jobs import create_plan_version_job, duplicate_plan_version_job

#: ``plan/trigger`` of a plan run requested after a version was created or duplicated in the UI.
CREATED_TRIGGER = CREATE_VERSION_JOB


def plan_run_request(run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """The plan run of the version a finished create/duplicate run recorded."""
    version = run.tags.get(VERSION_TAG)
    if not version:
        return dg.SkipReason(f"run {run.run_id} ({run.job_name}) recorded no plan version (no {VERSION_TAG} tag)")
    return dg.RunRequest(
        run_key=f"{CREATED_TRIGGER}:{run.run_id}",
        partition_key=version,
        tags={VERSION_TAG: version, TRIGGER_TAG: CREATED_TRIGGER},
    )


@dg.run_status_sensor(
    name="plan_created_versions",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[create_plan_version_job, duplicate_plan_version_job],
    request_job=plan_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When create_plan_version or duplicate_plan_version succeeds, request plan_job for the new "
    "plan_version partition (read from the run's plan/version tag; the sensor never opens the plan store).",
)
def plan_created_versions(context: dg.RunStatusSensorContext):
    return plan_run_request(context.dagster_run)
