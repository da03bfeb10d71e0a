"""The local multi-worker setup with the plan store on PostgreSQL (issue 15): runs of two versions
submitted to the queue execute their steps on the two Celery workers and write to the cluster's
PostgreSQL plan store (``$PLAN_STORE_URL``); every level's rows equal those of the same versions
planned on DuckDB, and every run is in ``plan_jobs``. Nothing is left running afterwards."""
from __future__ import annotations

import subprocess
import sys
import time

import dagster as dg
import pytest

from plan_pipeline.deployment.local_cluster import start_local_cluster
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.executor import CELERY_BROKER_ENV
from plan_pipeline.orchestration.instance import DAGSTER_STORAGE_URL_ENV
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.store import PlanStore
from plan_pipeline.store.rules import STORE_URL_ENV
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE, require_servers
from plan_pipeline_tests.deployment.test_local_cluster import QUEUE_RUNS, RUN_TIMEOUT_SECONDS, _celery_workers, _cli
from plan_pipeline_tests.orchestration.test_plan_on_postgres import planned_levels

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

VERSIONS = ("va", "vb")
PARAMETERS = {"va": PlanningParameters(), "vb": PlanningParameters(round_mode="none", preset="blend")}
FLAGS = {"va": [], "vb": ["--round", "none", "--preset", "blend"]}


def test_plan_runs_on_the_celery_workers_write_the_postgres_store_as_duckdb(tmp_path, monkeypatch, plan_env):
    require_servers("postgresql", "redis")
    cluster = start_local_cluster(tmp_path / "home", workers=("w1", "w2"), daemon=True, plan_store_on_postgres=True)
    try:
        env = cluster.env
        assert env[STORE_URL_ENV].startswith("postgresql://plan@127.0.0.1:")
        _cli(env, "inputs", "import", str(BUNDLED_SAMPLE), "--label", "sample")
        for version in VERSIONS:
            _cli(env, "version", "create", "--input-set", "sample", "--version-id", version, *FLAGS[version])
        queued = subprocess.run([sys.executable, "-c", QUEUE_RUNS, *VERSIONS], env=env, capture_output=True,
                                text=True, timeout=120)
        assert queued.returncode == 0, queued.stderr[-3000:]
        run_ids = queued.stdout.split()
        assert len(run_ids) == len(VERSIONS)
        with monkeypatch.context() as cluster_env:
            for name in (DAGSTER_STORAGE_URL_ENV, CELERY_BROKER_ENV, "DAGSTER_HOME"):
                cluster_env.setenv(name, env[name])
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
                while True:
                    runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))]
                    if len(runs) == len(run_ids) and all(run.is_finished for run in runs):
                        break
                    assert time.monotonic() < deadline, f"runs not finished: {[(r.run_id, r.status) for r in runs]}"
                    time.sleep(2)
                assert {r.run_id: r.status for r in runs} == dict.fromkeys(run_ids, dg.DagsterRunStatus.SUCCESS)
                by_step = {run_id: _celery_workers(instance, run_id) for run_id in run_ids}
        workers = {worker.split("@")[0] for steps in by_step.values() for worker in steps.values()}
        assert workers == {"w1", "w2"}, by_step
        pg = PlanStore.from_url(env[STORE_URL_ENV])
        jobs = pg.list_jobs()
        recorded = dict(zip(jobs["job_id"], jobs["status"]))
        assert {run_id: recorded.get(run_id) for run_id in run_ids} == dict.fromkeys(run_ids, "success")

        # the same versions planned in-process on DuckDB: every level's rows identical
        duck = plan_env.store
        import_input_dir(duck, BUNDLED_SAMPLE, "sample")
        for version in VERSIONS:
            duck.create_version(version, "sample", PARAMETERS[version])
            assert materialize_version(plan_env.instance(), duck, version).success
            want, got = planned_levels(duck, version), planned_levels(pg, version)
            assert len(want) >= 8 and got == want, version
    finally:
        cluster.stop()
    assert cluster.leftover_pids() == []
