"""Problem 1: a run killed at any point never blocks the runs after it.

kill -9 (here: SIGKILL at named points, and one external kill at an arbitrary moment) of
``materialize`` and ``backfill``; the next command recovers the dead run (marked failed with the
reason, pool claims freed, plan_jobs / plan_backfill_runs closed) and finishes in bounded time
with rows equal to a clean run's. Waits on the pool say what they wait for, give up after a
bounded time and obey Ctrl-C.
"""
from __future__ import annotations

import signal
import time

import dagster as dg
import pytest

from plan_pipeline_tests.conftest import require_reference
from plan_pipeline_tests.reliability.cli_process import Home, assert_same_plan, ok, plan_snapshot, refused
from plan_pipeline_tests.reliability.conftest import PLAN_FLAGS

pytestmark = pytest.mark.both_backends  # the store: DuckDB, or PostgreSQL with --store-backend=postgres

KILL_POINTS = [
    "stage.after_commit:aggregate",    # first level staged
    "stage.after_commit:det",          # two levels staged
    "stage.after_commit:mrp_final",    # inside the capacity multi-asset step
    "stage.after_commit:report_adjusted",  # every level staged, not published
    "publish.before_commit",           # the publication transaction is open
    "publish.after_commit",            # published, the run never finished
]


def _runs(home: Home, version: str):
    with dg.DagsterInstance.from_config(str(home.path / "dagster_home")) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": version}))
        return [(r.dagster_run.run_id, r.dagster_run.status) for r in records]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_materialize_killed_at_any_point_recovers_and_equals_a_clean_run(home500: Home, point: str):
    version = "k-" + point.split(".")[-1].replace(":", "-").replace("_", "-")
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", version, *PLAN_FLAGS))
    home500.crash(point, "materialize", version)
    store = home500.store
    if point != "publish.after_commit":
        # nothing of the dead run is visible: no plan at all, and exports refuse
        assert store.publication(version)["complete"] is False
        refused(home500.run("export", version, "--format", "csv", "--out", str(home500.path / f"x-{version}")),
                "has no complete plan to export")
    killed = [run_id for run_id, status in _runs(home500, version)]
    assert len(killed) == 1
    # the next run recovers the dead one and finishes within the bounded pool wait
    started = time.monotonic()
    again = ok(home500.run("materialize", version, timeout=240))
    assert time.monotonic() - started < 200
    assert f"recovered run {killed[0]}" in again.stderr
    statuses = dict(_runs(home500, version))
    assert statuses[killed[0]] == dg.DagsterRunStatus.FAILURE
    assert sum(s == dg.DagsterRunStatus.SUCCESS for s in statuses.values()) == 1
    jobs = store.list_jobs(version).set_index("job_id")
    assert jobs.loc[killed[0], "status"] == "failure"
    assert "is gone" in jobs.loc[killed[0], "error"]
    assert not store.open_jobs()
    assert_same_plan(store, version, home500.clean_plan)
    publication = store.publication(version)
    assert len(publication["runs"]) == 1 and publication["runs"][0] != killed[0]
    assert publication["staged_runs"] == []  # the dead run's staged rows are gone too


def test_materialize_killed_from_outside_at_an_arbitrary_moment(home500: Home):
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "ext", *PLAN_FLAGS))
    before = plan_snapshot(home500.store, "ext")
    process = home500.start("materialize", "ext")
    time.sleep(4.0)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    after = plan_snapshot(home500.store, "ext")
    # either nothing or the whole plan is visible, never a part
    assert after == {} or sorted(after) == sorted(home500.clean_plan), sorted(after)
    assert before == {}
    ok(home500.run("materialize", "ext", timeout=240))
    assert_same_plan(home500.store, "ext", home500.clean_plan)
    assert not home500.store.open_jobs()


@pytest.mark.duckdb_only("the single-writer 'duckdb' pool (limit 1) is DuckDB's: with a PostgreSQL store the pool "
                         "admits several store steps at once, so a run of another version never waits for it")
def test_pool_wait_says_what_it_waits_for_and_gives_up(home500: Home):
    """A live run holds the pool (paused inside a stage step): another version's run waits,
    says for whom, and gives up after the configured bound; the holder is unharmed."""
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "holder", *PLAN_FLAGS))
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "waiter", *PLAN_FLAGS))
    holder, release = home500.start_paused("stage.after_commit:det", "materialize", "holder")
    try:
        waited = home500.run("materialize", "waiter", timeout=120, PLAN_PIPELINE_POOL_WAIT_SECONDS="6")
        refused(waited, "gave up after")
        assert "waiting for the 'duckdb' pool held by run" in waited.stderr
        assert "keeps its previous plan" in waited.stderr
        # the same version: waits for the holder's run, then gives up
        same = home500.run("materialize", "holder", timeout=120, PLAN_PIPELINE_POOL_WAIT_SECONDS="4")
        refused(same, "is still in progress")
        # Ctrl-C while waiting: stops at once with exit 130, the run is closed as canceled
        interrupted = home500.start("materialize", "waiter")
        deadline = time.monotonic() + 120
        seen = ""
        while "waiting for the 'duckdb' pool" not in seen:
            assert time.monotonic() < deadline, seen
            seen += interrupted.stderr.readline()
        interrupted.send_signal(signal.SIGINT)
        _, err = interrupted.communicate(timeout=30)
        assert interrupted.returncode == 130, err
        assert "interrupted by the user" in err and "Traceback" not in err
    finally:
        release.write_text("go")
        _out, err = holder.communicate(timeout=240)
    assert holder.returncode == 0, err
    assert_same_plan(home500.store, "holder", home500.clean_plan)
    statuses = [s for _, s in _runs(home500, "waiter")]
    assert dg.DagsterRunStatus.CANCELED in statuses and dg.DagsterRunStatus.FAILURE in statuses
    assert home500.store.publication("waiter")["complete"] is False
    ok(home500.run("materialize", "waiter"))
    assert_same_plan(home500.store, "waiter", home500.clean_plan)


def test_a_second_run_of_a_version_waits_for_the_first_and_gives_up(home500: Home):
    """On either backend a run of a version whose run is live (paused inside a stage step) waits for
    it and gives up after the bound; the holder is unharmed. With a PostgreSQL store a run of
    another version meanwhile does not wait at all (on DuckDB it waits for the pool: above)."""
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "held", *PLAN_FLAGS))
    ok(home500.run("version", "create", "--input-set", "s500", "--version-id", "beside", *PLAN_FLAGS))
    holder, release = home500.start_paused("stage.after_commit:det", "materialize", "held")
    try:
        same = home500.run("materialize", "held", timeout=120, PLAN_PIPELINE_POOL_WAIT_SECONDS="4")
        refused(same, "is still in progress")
        if home500.store_url:
            ok(home500.run("materialize", "beside", timeout=120, PLAN_PIPELINE_POOL_WAIT_SECONDS="30"))
            assert_same_plan(home500.store, "beside", home500.clean_plan)
    finally:
        release.write_text("go")
        _out, err = holder.communicate(timeout=240)
    assert holder.returncode == 0, err
    assert_same_plan(home500.store, "held", home500.clean_plan)
    assert [s for _, s in _runs(home500, "held")].count(dg.DagsterRunStatus.SUCCESS) == 1


def test_backfill_killed_midway_recovers_and_equals_a_clean_import(tmp_path, homes, request):
    source = require_reference() / "legacy"
    clean = Home.of(homes.new(tmp_path / "clean", request.addfinalizer))
    ok(clean.run("backfill", "--source", str(source)))
    versions = [v.version_id for v in clean.store.list_versions()]
    assert len(versions) == 4
    home = Home.of(homes.new(tmp_path / "crashed", request.addfinalizer))
    home.crash("backfill.after_version", "backfill", "--source", str(source))
    runs = home.store  # the killed run left its plan_backfill_runs row 'running'
    from plan_pipeline.operations.legacy_backfill import list_backfill_runs

    assert list_backfill_runs(runs)["status"].tolist() == ["running"]
    started = time.monotonic()
    again = ok(home.run("backfill", "--source", str(source), timeout=240))
    assert time.monotonic() - started < 200
    assert "recovered run" in again.stderr
    history = list_backfill_runs(home.store).sort_values("started_at")
    assert history["status"].tolist() == ["failed", "success"]
    assert "is gone" in history["message"].iat[0] or "ended" in history["message"].iat[0]
    assert sorted(v.version_id for v in home.store.list_versions()) == sorted(versions)
    for version in versions:
        assert_same_plan(home.store, version, plan_snapshot(clean.store, version))
    # and a plan run after the killed backfill is not blocked either
    ok(home.run("sample-inputs", "--out", str(tmp_path / "small"), "--families", "1", "--skus-per-family", "3",
                "--months", "3"))
    ok(home.run("inputs", "import", str(tmp_path / "small"), "--label", "small"))
    ok(home.run("version", "create", "--input-set", "small", "--version-id", "after"))
    ok(home.run("materialize", "after", timeout=240))
