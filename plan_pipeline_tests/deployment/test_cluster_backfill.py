"""Issue 15's acceptance on the local multi-worker setup with the plan store on PostgreSQL: a Dagster
partition backfill of 12 plan versions (``plan-pipeline runs backfill``), launched by the daemon,
its steps executed by two Celery workers, one of which is SIGKILLed (with its pool process) while it
executes a step. Nothing is lost: the broker hands the dead worker's step to the other worker after
the visibility timeout (``$PLAN_PIPELINE_CELERY_VISIBILITY_TIMEOUT``, small here; then the killed
worker is started again), every run ends green, every run is in ``plan_jobs``, and every version's rows equal those of the same version
planned in-process on DuckDB. Nothing is left running afterwards."""
from __future__ import annotations

import itertools
import time

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from plan_pipeline.deployment.local_cluster import LocalCluster, start_local_cluster
from plan_pipeline.inputs.importer import import_input_dir
from plan_pipeline.orchestration.executor import CELERY_BROKER_ENV, CELERY_VISIBILITY_TIMEOUT_ENV
from plan_pipeline.orchestration.instance import DAGSTER_STORAGE_URL_ENV
from plan_pipeline.orchestration.plan.launch import materialize_version
from plan_pipeline.planning.types import PlanningParameters
from plan_pipeline.planning.vocabulary import ROUND_MODES
from plan_pipeline.store import PlanStore
from plan_pipeline.store.rules import STORE_URL_ENV
from plan_pipeline_tests.conftest import BUNDLED_SAMPLE, require_servers
from plan_pipeline_tests.deployment.test_local_cluster import _cli
from plan_pipeline_tests.orchestration.test_plan_on_postgres import planned_levels

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

#: 12 versions of the bundled sample, each with other parameters (4 round modes x 3 presets).
VERSIONS = tuple(f"bf{i:02d}" for i in range(1, 13))
PARAMETERS = {version: PlanningParameters(round_mode=round_mode, preset=preset)
              for version, (round_mode, preset) in zip(VERSIONS, itertools.product(ROUND_MODES, (None, "det_near", "blend")))}
#: Small, so that the killed worker's step comes back soon; above every step of the sample (a few seconds).
VISIBILITY_TIMEOUT_SECONDS = 30
BACKFILL_TIMEOUT_SECONDS = 900.0
KILL_AFTER_RUNS = 2  # runs finished before the kill: both workers have executed steps by then
DONE_STEP_EVENTS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def _step_attempts(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, bool]]:
    """(step key, worker name, finished) per Celery execution of a step, in order: dagster-celery
    reports "Executing steps ... in celery worker" (metadata ``Celery worker``) when a worker starts
    a step; a STEP_SUCCESS / STEP_FAILURE after it closes that attempt."""
    attempts: list[list] = []
    of_type = {dg.DagsterEventType.ENGINE_EVENT, *DONE_STEP_EVENTS}
    for record in instance.all_logs(run_id, of_type=of_type):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type in DONE_STEP_EVENTS:
            for attempt in reversed(attempts):
                if attempt[0] == record.step_key:
                    attempt[2] = True
                    break
            continue
        metadata = event.engine_event_data.metadata if event.engine_event_data else {}
        if "Celery worker" in metadata:
            attempts.append([record.step_key, str(metadata["Celery worker"].value).split("@")[0], False])
    return [(step, worker, done) for step, worker, done in attempts]


def _backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    return [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))]


def _kill_worker_mid_step(cluster: LocalCluster, instance: dg.DagsterInstance, backfill_id: str, worker: str,
                          deadline: float) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Once ``KILL_AFTER_RUNS`` runs are done, SIGKILL ``worker``'s session (main and pool process)
    the moment it executes a step. Returns (lost, in flight): the (run id, step key) pairs it was
    still executing after the kill, and every pair it was executing just before a kill. A step
    that finished between the look and the kill (its task maybe not yet acknowledged, so it may be
    delivered again) does not count: the worker is started again and killed at its next step."""
    in_flight: list[tuple[str, str]] = []
    while True:
        assert time.monotonic() < deadline, "no step on the worker to kill it during"
        runs = _backfill_runs(instance, backfill_id)
        if sum(run.status == dg.DagsterRunStatus.SUCCESS for run in runs) >= KILL_AFTER_RUNS:
            busy = [(run.run_id, step) for run in runs if run.status == dg.DagsterRunStatus.STARTED
                    for step, w, done in _step_attempts(instance, run.run_id) if w == worker and not done]
            if busy:
                cluster.stop_process(f"worker-{worker}", kill=True)
                in_flight += busy
                lost = [(run_id, step) for run_id, step in busy
                        if any(key == step and w == worker and not done
                               for key, w, done in _step_attempts(instance, run_id))]
                if lost:
                    return lost, in_flight
                cluster.start_worker(worker)
        time.sleep(0.3)


def test_a_backfill_of_12_versions_survives_a_killed_worker(tmp_path, monkeypatch, plan_env):
    require_servers("postgresql", "redis")
    started = time.monotonic()
    cluster = start_local_cluster(tmp_path / "home", workers=("w1", "w2"), daemon=True, plan_store_on_postgres=True,
                                  settings={CELERY_VISIBILITY_TIMEOUT_ENV: str(VISIBILITY_TIMEOUT_SECONDS)})
    try:
        env = cluster.env
        pg = PlanStore.from_url(env[STORE_URL_ENV])
        import_input_dir(pg, BUNDLED_SAMPLE, "sample")
        for version in VERSIONS:
            pg.create_version(version, "sample", PARAMETERS[version])
        backfill_id = _cli(env, "runs", "backfill", *VERSIONS, "--title", "twelve versions").strip()

        with monkeypatch.context() as cluster_env:
            for name in (DAGSTER_STORAGE_URL_ENV, CELERY_BROKER_ENV, "DAGSTER_HOME"):
                cluster_env.setenv(name, env[name])
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                deadline = time.monotonic() + BACKFILL_TIMEOUT_SECONDS
                lost, in_flight = _kill_worker_mid_step(cluster, instance, backfill_id, "w1", deadline)
                killed_at = time.monotonic()
                assert lost, "the worker was killed while it executed a step"
                # the killed worker's step comes back (to w2) once the visibility timeout has passed;
                # then w1 is started again, as an operator would, and takes steps again
                while not all(any(key == step and done for key, _, done in _step_attempts(instance, run_id))
                              for run_id, step in lost):
                    assert time.monotonic() < deadline, f"the killed worker's steps {lost} never came back"
                    time.sleep(1)
                redelivered_at = time.monotonic()
                cluster.start_worker("w1")
                while True:
                    backfill = instance.get_backfill(backfill_id)
                    runs = _backfill_runs(instance, backfill_id)
                    if backfill is not None and backfill.status != BulkActionStatus.REQUESTED \
                            and all(run.is_finished for run in runs):
                        break
                    assert time.monotonic() < deadline, \
                        f"backfill {backfill and backfill.status}; runs {[(r.run_id, r.status) for r in runs]}"
                    time.sleep(2)
                finished_at = time.monotonic()
                attempts = {run.run_id: _step_attempts(instance, run.run_id) for run in runs}

        # one green run per version, the backfill complete
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
        assert sorted(run.tags["dagster/partition"] for run in runs) == sorted(VERSIONS)
        assert {run.run_id: run.status for run in runs} == {run.run_id: dg.DagsterRunStatus.SUCCESS for run in runs}
        # steps on both workers; the killed worker's step(s) executed again, on the other worker, and
        # no other step twice (the visibility timeout is above every step: no duplicate delivery)
        assert {worker for steps in attempts.values() for _, worker, _ in steps} == {"w1", "w2"}
        for run_id, steps in attempts.items():
            for step in {step for step, _, _ in steps}:
                tries = [(worker, done) for key, worker, done in steps if key == step]
                if (run_id, step) in lost:
                    assert tries == [("w1", False), ("w2", True)], (run_id, step, tries)
                elif (run_id, step) in in_flight:  # finished just before a kill: maybe delivered again
                    assert len(tries) <= 2 and all(done for _, done in tries), (run_id, step, tries)
                else:
                    assert len(tries) == 1 and tries[0][1], (run_id, step, tries)
        # every run recorded itself in the run ledger as a success
        jobs = pg.list_jobs()
        recorded = dict(zip(jobs["job_id"], jobs["status"]))
        assert {run.run_id: recorded.get(run.run_id) for run in runs} == {run.run_id: "success" for run in runs}
        assert set(jobs.loc[jobs["job_id"].isin([run.run_id for run in runs]), "trigger"]) == {"backfill"}
        print(f"\nbackfill of {len(VERSIONS)} versions: killed w1 at {killed_at - started:.0f}s during {lost}, "
              f"redelivered and done {redelivered_at - killed_at:.0f}s later, all finished at "
              f"{finished_at - started:.0f}s")
        on_postgres = {version: planned_levels(pg, version) for version in VERSIONS}
    finally:
        cluster.stop()
    assert cluster.leftover_pids() == []

    # the same versions planned in-process on DuckDB (the cluster stopped): every level's rows identical
    duck = plan_env.store
    import_input_dir(duck, BUNDLED_SAMPLE, "sample")
    for version in VERSIONS:
        duck.create_version(version, "sample", PARAMETERS[version])
        assert materialize_version(plan_env.instance(), duck, version).success
        want = planned_levels(duck, version)
        assert len(want) >= 8 and on_postgres[version] == want, version
