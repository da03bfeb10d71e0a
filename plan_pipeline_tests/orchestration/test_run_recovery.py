"""Crash recovery must judge a run by its own worker, never by launcher tags a re-execution copied."""
from __future__ import annotations

import subprocess
import sys

import dagster as dg

from plan_pipeline.orchestration.plan.run_recovery import HOST_TAG, PID_START_TAG, PID_TAG, orphan_reason, this_host


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.RunRecord:
    run = instance.create_run_for_job(job_def=dg.GraphDefinition("g", node_defs=[]).to_job(), tags=tags)
    instance.handle_new_event(dg.EventLogEntry(
        error_info=None, level="DEBUG", user_message="", run_id=run.run_id, timestamp=0.0,
        dagster_event=dg.DagsterEvent(dg.DagsterEventType.PIPELINE_START.value, job_name="g")))
    return instance.get_run_record_by_id(run.run_id)


def test_a_cli_run_whose_process_is_gone_is_an_orphan_but_its_ui_reexecution_is_not():
    with dg.instance_for_test() as instance:
        launcher = {PID_TAG: str(_dead_pid()), PID_START_TAG: "", HOST_TAG: this_host(), "plan/trigger": "cli"}
        parent = _started_run(instance, launcher)
        assert parent.dagster_run.status == dg.DagsterRunStatus.STARTED
        assert "is gone" in (orphan_reason(instance, parent) or "")
        # the UI's "Re-execute" copies every tag of the parent, the dead launcher's pid included
        child = _started_run(instance, {**launcher, "dagster/parent_run_id": parent.dagster_run.run_id})
        assert orphan_reason(instance, child) is None
        # a re-execution launched by a CLI process of its own names that process: judged by it
        own = _started_run(instance, {**launcher, PID_TAG: str(_dead_pid()),
                                      "dagster/parent_run_id": parent.dagster_run.run_id})
        assert "is gone" in (orphan_reason(instance, own) or "")
