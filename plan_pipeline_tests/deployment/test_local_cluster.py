"""The local multi-worker setup really runs plan runs: PostgreSQL (Dagster's storage) and Redis (the
Celery broker) on loopback, the Dagster daemon and webserver, two Celery workers. Runs submitted
to the instance's queue are launched by the daemon, their steps execute on both workers, every
run records itself in ``plan_jobs``, and stopping the setup leaves no process behind."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from plan_pipeline.deployment.local_cluster import start_local_cluster
from plan_pipeline.deployment.local_services import pid_is_running
from plan_pipeline.orchestration.executor import CELERY_BROKER_ENV
from plan_pipeline.orchestration.instance import DAGSTER_STORAGE_URL_ENV
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE, require_servers

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

VERSIONS = ("va", "vb")
RUN_TIMEOUT_SECONDS = 240.0
QUEUE_RUNS = """
import sys
from plan_pipeline.orchestration.plan.launch import get_instance, queue_version_run
from plan_pipeline.store import PlanStore
instance, store = get_instance(), PlanStore()
print(" ".join(queue_version_run(instance, store, v, trigger="cli") for v in sys.argv[1:]))
"""


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(Path(sys.executable).parent / "plan-pipeline"), *args], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"plan-pipeline {' '.join(args)}: {result.stderr[-3000:]}"
    return result.stdout


def _celery_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker that executed it (dagster-celery's engine event per step)."""
    found = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        metadata = event.engine_event_data.metadata if event is not None and event.engine_event_data else {}
        if "Celery worker" in metadata:
            found[record.step_key] = str(metadata["Celery worker"].value)
    return found


def test_plan_runs_execute_on_two_celery_workers_and_nothing_is_left(tmp_path, monkeypatch):
    require_servers("postgresql", "redis")
    cluster = start_local_cluster(tmp_path / "home", workers=("w1", "w2"), daemon=True, webserver=True)
    pids: list[int] = []
    try:
        env = cluster.env
        assert env[DAGSTER_STORAGE_URL_ENV].startswith("postgresql://plan@127.0.0.1:")
        assert env[CELERY_BROKER_ENV] == cluster.redis.url
        dagster_yaml = (Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_text()
        assert f"env: {DAGSTER_STORAGE_URL_ENV}" in dagster_yaml and "default_limit: 1" in dagster_yaml
        with urllib.request.urlopen(f"{cluster.webserver_url}/server_info", timeout=30) as response:
            assert "dagster_webserver_version" in json.loads(response.read())

        _cli(env, "inputs", "import", str(BUNDLED_SAMPLE), "--label", "sample")
        for version in VERSIONS:
            _cli(env, "version", "create", "--input-set", "sample", "--version-id", version)
        queued = subprocess.run([sys.executable, "-c", QUEUE_RUNS, *VERSIONS], env=env, capture_output=True,
                                text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr[-3000:]
        run_ids = queued.stdout.split()
        assert len(run_ids) == len(VERSIONS)

        for name in (DAGSTER_STORAGE_URL_ENV, CELERY_BROKER_ENV, "DAGSTER_HOME"):
            monkeypatch.setenv(name, env[name])
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            while True:
                runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))]
                if all(run.is_finished for run in runs) and len(runs) == len(run_ids):
                    break
                assert time.monotonic() < deadline, f"runs not finished: {[(r.run_id, r.status) for r in runs]}"
                pids = sorted(set(pids) | set(cluster.leftover_pids()))
                time.sleep(2)
            assert {run.run_id: run.status for run in runs} == dict.fromkeys(run_ids, dg.DagsterRunStatus.SUCCESS)
            assert {run.tags["dagster/partition"] for run in runs} == set(VERSIONS)
            by_step = {run_id: _celery_workers(instance, run_id) for run_id in run_ids}

        for run_id, steps in by_step.items():
            # every step of the plan job went through Celery (planning_inputs ... plan_review_report)
            assert {"planning_inputs", "published_plan", "plan_review_report"} <= set(steps), (run_id, steps)
        workers = {worker.split("@")[0] for steps in by_step.values() for worker in steps.values()}
        assert workers == {"w1", "w2"}, by_step
        pids = sorted(set(pids) | set(cluster.leftover_pids()))
        assert cluster.postgres.pid in pids and cluster.redis.pid in pids
        assert len(pids) >= 2 + 1 + 1 + 2 * 2  # servers, daemon, webserver, two workers (main + pool process)
    finally:
        cluster.stop()
    assert cluster.leftover_pids() == []
    assert [pid for pid in pids if pid_is_running(pid)] == []

    # every run recorded itself in the run ledger, as a success (the store is free again)
    from plan_pipeline.store import PlanStore

    jobs = PlanStore(env["PLAN_PIPELINE_DB"]).list_jobs()
    recorded = dict(zip(jobs["job_id"], jobs["status"]))
    assert {run_id: recorded.get(run_id) for run_id in run_ids} == dict.fromkeys(run_ids, "success")
